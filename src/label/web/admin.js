/*
 * rlhf label: the admin page script (issue 17). Served verbatim at /admin.js.
 * Reads the admin token from the URL fragment (#token=...), keeps it in sessionStorage
 * (key rlhf_admin_token, separate from the rater app's rlhf_token), and shows
 * GET /api/admin/status, refreshed every few seconds. All values reach the page via textContent.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'rlhf_admin_token';
  const REFRESH_MS = 4000;
  const NA = 'not enough data';
  const $ = (id) => document.getElementById(id);
  let token = null;
  let timer = null;

  const el = window.rlhfCommon.el;

  const readToken = () => window.rlhfCommon.readToken(TOKEN_KEY);

  function isNumber(x) {
    return typeof x === 'number' && Number.isFinite(x);
  }

  function fmt(x, digits) {
    return isNumber(x) ? x.toFixed(digits) : null;
  }

  // A table cell with a number, or "not enough data" in grey when the value is null.
  function numCell(value, digits) {
    const text = isNumber(value) ? (digits === undefined ? String(value) : fmt(value, digits)) : null;
    const td = el('td', 'num' + (text === null ? ' na' : ''), text === null ? NA : text);
    return td;
  }

  function renderStats(s) {
    const stats = [
      ['Items', s.items],
      ['Raters per item', s.overlap],
      ['Labels', s.labels],
      ['Complete items', s.complete_items],
    ];
    const box = $('stats');
    box.replaceChildren();
    for (const [label, value] of stats) {
      const div = el('div', 'stat');
      div.append(el('div', 'stat-value', isNumber(value) ? value : '–'), el('div', 'stat-label', label));
      box.append(div);
    }
  }

  function renderAgreement(a) {
    a = a || {};
    const rows = [
      ['Pairwise agreement', a.pairwise, 3, isNumber(a.pairs) ? a.pairs + ' pairs' : ''],
      ["Kendall's tau", a.kendall_tau, 3, ''],
      ["Krippendorff's alpha (ordinal)", a.krippendorff_alpha, 3, ''],
      ["Kendall's W", a.kendall_w, 3, ''],
      ['Items with overlap', a.items_with_overlap, undefined, ''],
    ];
    const body = $('agreement-body');
    body.replaceChildren();
    for (const [label, value, digits, note] of rows) {
      const tr = el('tr');
      const th = el('th', null, label);
      th.scope = 'row';
      tr.append(th, numCell(value, digits), el('td', 'muted small', note));
      body.append(tr);
    }
  }

  function renderRaters(raters, minOverlap) {
    const body = $('raters-body');
    body.replaceChildren();
    for (const r of raters || []) {
      const tr = el('tr');
      tr.dataset.rater = String(r.name);
      const th = el('th', null, r.name);
      th.scope = 'row';
      tr.append(th, el('td', null, r.active === false ? 'revoked' : 'active'));
      tr.append(numCell(r.done), numCell(r.skipped), numCell(r.leased));
      tr.append(numCell(r.median_seconds, 1), numCell(r.agreement, 3), numCell(r.overlapping));
      body.append(tr);
    }
    $('min-overlap-note').textContent = isNumber(minOverlap)
      ? 'A rater\'s agreement is shown once they share at least ' + minOverlap + ' items with others.'
      : '';
  }

  async function refresh() {
    let res;
    try {
      res = await fetch('/api/admin/status', {
        headers: { Authorization: 'Bearer ' + token }, cache: 'no-store', credentials: 'omit',
      });
    } catch (e) {
      $('error').textContent = 'Cannot reach the server; retrying.';
      return;
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const detail = data && typeof data.error === 'string' ? data.error : 'HTTP ' + res.status;
      $('error').textContent = 'Status not available: ' + detail;
      if (res.status === 401 || res.status === 403) stop();
      return;
    }
    $('error').textContent = '';
    $('loading').hidden = true;
    for (const id of ['overview', 'agreement-section', 'raters-section']) $(id).hidden = false;
    renderStats(data);
    renderAgreement(data.agreement);
    renderRaters(data.raters, data.min_overlap);
    $('updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
  }

  function stop() {
    if (timer) window.clearInterval(timer);
    timer = null;
  }

  function start() {
    // A new #token=... link opened in this tab: start over with it.
    window.addEventListener('hashchange', () => { if (/token=/.test(location.hash)) location.reload(); });
    token = readToken();
    if (!token) {
      $('loading').hidden = true;
      $('error').textContent = 'No admin token. Open /admin#token=YOUR_ADMIN_TOKEN.';
      return;
    }
    refresh();
    timer = window.setInterval(refresh, REFRESH_MS);
  }

  document.addEventListener('DOMContentLoaded', start);
})();
