/*
 * rlhf label: the rater app (issue 17). Served verbatim at /app.js by `rlhf label serve`.
 *
 * Plain JavaScript, no dependencies, no build step. The API is described in dev/LABEL_API.md.
 * Security: everything that comes from the task (prompts, responses, guidelines, flags, reasons) is
 * untrusted text and only ever reaches the page through textContent / createTextNode; this file never
 * assigns innerHTML. The strict CSP forbids inline styles in markup, so styles are classes, or set via
 * element.style (CSSOM), which the CSP allows.
 *
 * Rank mode: `state.groups` is the ranking, best first, as a list of groups of response indices
 * (a group of two or more is a tie), e.g. [[2], [0, 3], [1]]. The response cards are created once per
 * item and moved between group containers, so their inner state (expanded, radio buttons) survives.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'rlhf_token';
  const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const DRAFT_DELAY_MS = 1000;
  const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
  const DRAG_THRESHOLD_PX = 6;
  const LIKERT_MAX = 7;
  const SCALE = [
    { value: -2, label: 'A much better' },
    { value: -1, label: 'A better' },
    { value: 0, label: 'About the same' },
    { value: 1, label: 'B better' },
    { value: 2, label: 'B much better' },
  ];

  const state = {
    token: null,
    task: null,
    item: null,          // the item as the server sent it
    editing: false,      // true when the item was opened from the history
    cards: [],           // card element per response index
    groups: [],          // rank mode: the ranking (see the top of this file)
    selected: null,      // rank mode: selected response index
    choice: null,        // pairs mode: -2..2 or null
    likert: [],
    flags: [],
    comment: '',
    allUnacceptable: false,
    partial: false,
    partialN: 1,
    shownMs: 0,          // time the item has been visible so far (ms), not counting visibleSince
    visibleSince: null,
    draftTimer: null,
    draftDirty: false,
    busy: false,         // a submit or skip is in flight
    drag: null,
  };

  const $ = (id) => document.getElementById(id);

  /* ---------- small DOM helpers ---------- */

  const el = window.rlhfCommon.el;

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function showView(name) {
    for (const v of ['loading', 'fatal', 'done', 'item']) show('view-' + v, v === name);
  }

  function announce(text) {
    const node = $('announce');
    node.textContent = '';
    window.setTimeout(() => { node.textContent = text; }, 30);
  }

  function letter(i) {
    return LETTERS[i] || String(i + 1);
  }

  function sleep(ms) {
    return new Promise((resolve) => window.setTimeout(resolve, ms));
  }

  function randomId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /* ---------- token and API ---------- */

  const readToken = () => window.rlhfCommon.readToken(TOKEN_KEY);

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // One request. Resolves to {status, data}; rejects only on a network failure.
  async function api(method, path, body, keepalive) {
    const headers = { Authorization: 'Bearer ' + state.token };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (keepalive) init.keepalive = true;
    const res = await fetch(path, init);
    let data = null;
    if (res.status !== 204) {
      const text = await res.text();
      if (text) {
        try { data = JSON.parse(text); } catch (e) { data = null; }
      }
    }
    return { status: res.status, data };
  }

  function errorText(res) {
    const detail = res.data && typeof res.data.error === 'string' ? res.data.error : 'HTTP ' + res.status;
    if (res.status === 401) return 'Your access link is not valid or has been revoked (' + detail + ').';
    return detail;
  }

  // GET that throws ApiError on any non-2xx answer; a 401 also ends the session on the page.
  async function getJSON(path) {
    let res;
    try {
      res = await api('GET', path);
    } catch (e) {
      throw new ApiError(0, 'Cannot reach the server. Check your connection and try again.');
    }
    if (res.status === 401) {
      fatal(errorText(res));
      throw new ApiError(401, errorText(res));
    }
    if (res.status < 200 || res.status >= 300) throw new ApiError(res.status, errorText(res));
    return res;
  }

  // POST with retries on network failures and 5xx, with backoff; the body (and so its
  // submission_id) stays the same, so the server stores it once.
  async function postWithRetry(path, body, onRetry) {
    for (let attempt = 0; ; attempt++) {
      let res = null;
      try { res = await api('POST', path, body); } catch (e) { res = null; }
      if (res && res.status >= 200 && res.status < 300) return { ok: true, data: res.data };
      if (res && res.status >= 400 && res.status < 500) {
        return { ok: false, status: res.status, message: errorText(res) };
      }
      if (attempt >= RETRY_DELAYS_MS.length) {
        return { ok: false, status: res ? res.status : 0,
          message: 'Could not reach the server. Your answer is still here: press Submit to try again.' };
      }
      onRetry(attempt + 1);
      await sleep(RETRY_DELAYS_MS[attempt] * (0.75 + Math.random() * 0.5));
    }
  }

  function fatal(message) {
    $('fatal-text').textContent = message;
    showView('fatal');
  }

  /* ---------- progress ---------- */

  async function refreshProgress() {
    let p;
    try { p = (await getJSON('/api/progress')).data; } catch (e) { return; }
    const done = Number(p.done) || 0;
    const skipped = Number(p.skipped) || 0;
    const total = Number(p.total) || 0;
    const finished = done + skipped;
    const bar = $('progress');
    bar.setAttribute('aria-valuemax', String(total));
    bar.setAttribute('aria-valuenow', String(finished));
    const text = finished + ' of ' + total + (skipped ? ' (' + skipped + ' skipped)' : '');
    bar.setAttribute('aria-valuetext', text);
    $('progress-bar').style.width = (total ? Math.min(100, (100 * finished) / total) : 0) + '%';
    $('progress-text').textContent = text;
  }

  /* ---------- timing ---------- */

  function startClock(baseSeconds) {
    state.shownMs = Math.max(0, Number(baseSeconds) || 0) * 1000;
    state.visibleSince = document.visibilityState === 'visible' ? performance.now() : null;
  }

  function elapsedSeconds() {
    const running = state.visibleSince === null ? 0 : performance.now() - state.visibleSince;
    return Math.round((state.shownMs + running) / 100) / 10;
  }

  function onVisibility() {
    if (document.visibilityState === 'hidden') {
      if (state.visibleSince !== null) state.shownMs += performance.now() - state.visibleSince;
      state.visibleSince = null;
      flushDraft(true);
    } else if (state.visibleSince === null) {
      state.visibleSince = performance.now();
    }
  }

  /* ---------- drafts ---------- */

  function draftBody() {
    return {
      v: 1,
      groups: state.groups.map((g) => g.slice()),
      choice: state.choice,
      likert: state.likert.slice(),
      flags: state.flags.map((f) => f.slice()),
      comment: state.comment,
      all_unacceptable: state.allUnacceptable,
      partial: state.partial,
      partial_n: state.partialN,
      seconds: elapsedSeconds(),
    };
  }

  function changed() {
    state.draftDirty = true;
    if (state.draftTimer) window.clearTimeout(state.draftTimer);
    state.draftTimer = window.setTimeout(() => saveDraft(false), DRAFT_DELAY_MS);
    $('draft-status').textContent = '';
  }

  function cancelDraft() {
    if (state.draftTimer) window.clearTimeout(state.draftTimer);
    state.draftTimer = null;
    state.draftDirty = false;
  }

  async function saveDraft(keepalive) {
    state.draftTimer = null;
    if (!state.item || !state.draftDirty) return;
    state.draftDirty = false;
    const body = { item_id: state.item.item_id, draft: draftBody() };
    try {
      const res = await api('POST', '/api/draft', body, keepalive);
      if (res.status >= 200 && res.status < 300) {
        $('draft-status').textContent = 'Draft saved';
      } else {
        $('draft-status').textContent = 'Draft not saved';
      }
    } catch (e) {
      $('draft-status').textContent = 'Draft not saved (offline)';
    }
  }

  function flushDraft(keepalive) {
    if (state.draftTimer) {
      window.clearTimeout(state.draftTimer);
      saveDraft(keepalive);
    }
  }

  /* ---------- restoring a label or a draft ---------- */

  function isIndex(x, k) {
    return Number.isInteger(x) && x >= 0 && x < k;
  }

  // Groups from a ranking or a draft, or null when it is not a permutation of 0..k-1.
  function validGroups(list, k) {
    if (!Array.isArray(list)) return null;
    const seen = new Set();
    const groups = [];
    for (const entry of list) {
      const g = Array.isArray(entry) ? entry.slice() : [entry];
      if (g.length === 0) return null;
      for (const x of g) {
        if (!isIndex(x, k) || seen.has(x)) return null;
        seen.add(x);
      }
      groups.push(g);
    }
    return seen.size === k ? groups : null;
  }

  function validLikert(list, k) {
    if (!Array.isArray(list) || list.length !== k) return null;
    const ok = list.every((v) => v === null || (Number.isInteger(v) && v >= 1 && v <= LIKERT_MAX));
    return ok ? list.slice() : null;
  }

  function validFlags(list, k) {
    const allowed = new Set(state.task.flags || []);
    if (!Array.isArray(list) || list.length !== k) return null;
    const ok = list.every((f) => Array.isArray(f) && f.every((x) => allowed.has(x)));
    return ok ? list.map((f) => f.slice()) : null;
  }

  function resetAnswer(k) {
    state.groups = Array.from({ length: k }, (_, i) => [i]);
    state.selected = null;
    state.choice = null;
    state.likert = Array(k).fill(null);
    state.flags = Array.from({ length: k }, () => []);
    state.comment = '';
    state.allUnacceptable = false;
    state.partial = false;
    state.partialN = Math.min(2, Math.max(1, k - 1));
  }

  // Applies a stored label or a draft (both use the same optional fields). Returns true if used.
  function applySaved(saved, k, isDraft) {
    if (!saved || typeof saved !== 'object') return false;
    if (state.task.mode === 'pairs') {
      if (Number.isInteger(saved.choice) && saved.choice >= -2 && saved.choice <= 2) state.choice = saved.choice;
      else if (!isDraft) return false;
    } else {
      const groups = validGroups(isDraft ? saved.groups : saved.ranking, k);
      if (!groups) return false;
      state.groups = groups;
      if (saved.partial === true) {
        state.partial = true;
        state.partialN = isDraft && Number.isInteger(saved.partial_n)
          ? saved.partial_n
          : k - groups[groups.length - 1].length;
        state.partialN = Math.min(Math.max(1, state.partialN), Math.max(1, k - 1));
      }
    }
    const likert = validLikert(saved.likert, k);
    if (likert) state.likert = likert;
    const flags = validFlags(saved.flags, k);
    if (flags) state.flags = flags;
    if (typeof saved.comment === 'string') state.comment = saved.comment;
    state.allUnacceptable = saved.all_unacceptable === true;
    return true;
  }

  /* ---------- loading items ---------- */

  async function loadNext() {
    flushDraft(false);
    let res;
    try {
      res = await getJSON('/api/next');
    } catch (e) {
      if (e.status !== 401) fatal(e.message);
      return;
    }
    if (res.status === 204 || !res.data) {
      state.item = null;
      showView('done');
      $('done-title').focus();
      return;
    }
    showItem(res.data, false);
  }

  async function loadItem(itemId) {
    flushDraft(false);
    let res;
    try {
      res = await getJSON('/api/items/' + encodeURIComponent(itemId));
    } catch (e) {
      if (e.status !== 401) showSubmitError('Could not open item ' + itemId + ': ' + e.message);
      return;
    }
    showItem(res.data, true);
  }

  function showItem(item, fromHistory) {
    const k = Array.isArray(item.responses) ? item.responses.length : 0;
    state.item = item;
    state.editing = fromHistory;
    cancelDraft();
    resetAnswer(k);
    // A stored label wins over a draft when the item was labelled before (an edit starts from it).
    let restored = item.label ? applySaved(item.label, k, false) : false;
    let baseSeconds = 0;
    if (!restored && item.draft && applySaved(item.draft, k, true)) {
      restored = true;
      baseSeconds = item.draft.seconds;
    }
    $('item-id').textContent = String(item.item_id);
    $('view-item').dataset.itemId = String(item.item_id);
    renderBanner(item, fromHistory);
    renderPrompt(item.prompt);
    buildCards(item.responses || []);
    renderAnswerControls();
    renderMode();
    showSubmitError('');
    setSubmitStatus('');
    $('draft-status').textContent = restored && !item.label ? 'Draft restored' : '';
    showView('item');
    window.scrollTo(0, 0);
    $('item-title').focus({ preventScroll: true });
    window.requestAnimationFrame(updateCollapsibles);
    startClock(baseSeconds);
  }

  function renderBanner(item, fromHistory) {
    let text = '';
    if (item.skipped && typeof item.skipped.reason === 'string') {
      text = 'You skipped this item (reason: ' + item.skipped.reason + '). Submitting an answer replaces the skip.';
    } else if (item.label) {
      text = 'You are changing your earlier answer for this item. Submitting replaces it.';
    } else if (fromHistory) {
      text = 'This is an earlier item.';
    }
    $('edit-text').textContent = text;
    show('edit-banner', fromHistory || Boolean(item.label) || Boolean(item.skipped));
  }

  /* ---------- prompt and response text ---------- */

  function textBlock(text, className) {
    const body = el('div', 'text-body clamped');
    const inner = el('div', className || 'text', typeof text === 'string' ? text : JSON.stringify(text));
    body.append(inner);
    const toggle = el('button', 'btn btn-link toggle-more', 'Show all');
    toggle.type = 'button';
    toggle.hidden = true;
    toggle.setAttribute('aria-expanded', 'false');
    toggle.addEventListener('click', () => {
      const expanded = body.classList.toggle('expanded');
      toggle.textContent = expanded ? 'Show less' : 'Show all';
      toggle.setAttribute('aria-expanded', String(expanded));
    });
    const wrap = el('div', 'text-wrap');
    wrap.append(body, toggle);
    return wrap;
  }

  // Shows "Show all" only where the clamp actually hides something.
  function updateCollapsibles() {
    for (const wrap of document.querySelectorAll('#view-item .text-wrap')) {
      const body = wrap.firstChild;
      const toggle = wrap.lastChild;
      if (body.classList.contains('expanded')) continue;
      const overflowing = body.scrollHeight > body.clientHeight + 2;
      body.classList.toggle('overflowing', overflowing);
      toggle.hidden = !overflowing;
    }
  }

  const ROLES = new Set(['system', 'user', 'assistant']);

  function renderPrompt(prompt) {
    const box = $('prompt');
    box.replaceChildren();
    if (Array.isArray(prompt)) {
      for (const turn of prompt) {
        const role = turn && typeof turn.role === 'string' ? turn.role : 'unknown';
        const div = el('div', 'turn turn-' + (ROLES.has(role) ? role : 'other'));
        div.append(el('div', 'turn-role', role));
        div.append(textBlock(turn && typeof turn.content === 'string' ? turn.content : '', 'text prompt-text'));
        box.append(div);
      }
    } else {
      box.append(textBlock(typeof prompt === 'string' ? prompt : '', 'text prompt-text'));
    }
  }

  /* ---------- response cards ---------- */

  function iconButton(className, text, label) {
    const b = el('button', 'btn btn-icon ' + className, text);
    b.type = 'button';
    b.setAttribute('aria-label', label);
    b.title = label;
    return b;
  }

  function buildLikert(i) {
    const fs = el('fieldset', 'likert');
    fs.append(el('legend', 'mini-label', 'Rating (1 = very bad, 7 = excellent)'));
    const row = el('div', 'seg-row');
    for (let v = 1; v <= LIKERT_MAX; v++) {
      const label = el('label', 'seg');
      const input = el('input');
      input.type = 'radio';
      input.name = 'likert-' + i;
      input.value = String(v);
      input.checked = state.likert[i] === v;
      input.setAttribute('aria-label', 'Rating ' + v + ' of ' + LIKERT_MAX + ' for response ' + letter(i));
      input.addEventListener('change', () => { state.likert[i] = v; changed(); });
      label.append(input, el('span', 'seg-face', v));
      row.append(label);
    }
    const clear = el('button', 'btn btn-link likert-clear', 'clear');
    clear.type = 'button';
    clear.setAttribute('aria-label', 'Clear the rating of response ' + letter(i));
    clear.addEventListener('click', () => {
      state.likert[i] = null;
      for (const input of row.querySelectorAll('input')) input.checked = false;
      changed();
    });
    row.append(clear);
    fs.append(row);
    return fs;
  }

  function buildFlags(i) {
    const details = el('details', 'flags');
    const summary = el('summary', 'mini-label');
    const updateSummary = () => {
      const n = state.flags[i].length;
      summary.textContent = n ? 'Problems (' + n + ' flagged)' : 'Flag problems';
    };
    details.append(summary);
    const list = el('div', 'flag-list');
    for (const flag of state.task.flags) {
      const label = el('label', 'check-row');
      const input = el('input');
      input.type = 'checkbox';
      input.checked = state.flags[i].includes(flag);
      input.addEventListener('change', () => {
        const set = state.flags[i].filter((x) => x !== flag);
        if (input.checked) set.push(flag);
        state.flags[i] = state.task.flags.filter((x) => set.includes(x));
        updateSummary();
        changed();
      });
      label.append(input, el('span', null, flag));
      list.append(label);
    }
    details.append(list);
    if (state.flags[i].length) details.open = true;
    updateSummary();
    return details;
  }

  function buildCard(i, text, isPairs) {
    const card = el(isPairs ? 'article' : 'li', 'card');
    card.dataset.response = String(i);
    const titleId = 'card-title-' + i;
    card.setAttribute('aria-labelledby', titleId);
    const head = el('div', 'card-head');
    if (!isPairs) {
      card.tabIndex = 0;
      const handle = iconButton('handle', '⠿', 'Drag to move response ' + letter(i));
      handle.addEventListener('pointerdown', onHandleDown);
      handle.addEventListener('pointermove', onHandleMove);
      handle.addEventListener('pointerup', onHandleUp);
      handle.addEventListener('pointercancel', onHandleUp);
      handle.addEventListener('click', () => select(i, true));
      head.append(handle, el('span', 'pos-key'));
    }
    const title = el('h3', 'card-title');
    title.append(el('span', isPairs ? 'visually-hidden' : 'title-word', 'Response '), letter(i));
    title.id = titleId;
    head.append(title);
    if (!isPairs) {
      head.append(el('span', 'rank-badge'));
      const tools = el('div', 'card-tools');
      const up = iconButton('mv-up', '↑', 'Move response ' + letter(i) + ' up');
      const down = iconButton('mv-down', '↓', 'Move response ' + letter(i) + ' down');
      const tie = iconButton('tie-btn', '=', 'Tie response ' + letter(i) + ' with the one above');
      up.addEventListener('click', () => act(i, moveUp));
      down.addEventListener('click', () => act(i, moveDown));
      tie.addEventListener('click', () => act(i, toggleTie));
      tools.append(up, down, tie);
      head.append(tools);
    }
    card.append(head, textBlock(text, 'text response-text'));
    const extras = el('div', 'card-extras');
    if (state.task.likert) extras.append(buildLikert(i));
    if (state.task.flags && state.task.flags.length) extras.append(buildFlags(i));
    if (extras.childNodes.length) card.append(extras);
    if (!isPairs) {
      card.addEventListener('focus', (ev) => { if (ev.target === card) select(i, false); });
      card.addEventListener('click', (ev) => {
        if (!ev.target.closest('button, input, label, summary, select, textarea, a')) select(i, false);
      });
    }
    return card;
  }

  function buildCards(responses) {
    const isPairs = state.task.mode === 'pairs';
    state.cards = responses.map((text, i) => buildCard(i, text, isPairs));
  }

  /* ---------- rank mode: operations on state.groups ---------- */

  function flatOrder() {
    return state.groups.flat();
  }

  function findPos(r) {
    for (let g = 0; g < state.groups.length; g++) {
      const k = state.groups[g].indexOf(r);
      if (k >= 0) return { g, k };
    }
    return null;
  }

  // A tied response leaves its group upwards; a lone one swaps with the group above.
  function moveUp(r) {
    const { g, k } = findPos(r);
    const group = state.groups[g];
    if (group.length > 1) {
      group.splice(k, 1);
      state.groups.splice(g, 0, [r]);
    } else if (g > 0) {
      [state.groups[g - 1], state.groups[g]] = [state.groups[g], state.groups[g - 1]];
    } else {
      return 'Response ' + letter(r) + ' is already at the top.';
    }
    return 'Response ' + letter(r) + ' moved to rank ' + (findPos(r).g + 1) + '.';
  }

  function moveDown(r) {
    const { g, k } = findPos(r);
    const group = state.groups[g];
    if (group.length > 1) {
      group.splice(k, 1);
      state.groups.splice(g + 1, 0, [r]);
    } else if (g < state.groups.length - 1) {
      [state.groups[g], state.groups[g + 1]] = [state.groups[g + 1], state.groups[g]];
    } else {
      return 'Response ' + letter(r) + ' is already at the bottom.';
    }
    return 'Response ' + letter(r) + ' moved to rank ' + (findPos(r).g + 1) + '.';
  }

  function tieWithAbove(r) {
    const { g } = findPos(r);
    if (g === 0) return 'Response ' + letter(r) + ' is at the top: there is nothing above to tie with.';
    state.groups[g - 1].push(r);
    state.groups[g].splice(state.groups[g].indexOf(r), 1);
    if (state.groups[g].length === 0) state.groups.splice(g, 1);
    return 'Response ' + letter(r) + ' tied at rank ' + g + '.';
  }

  // Untie: the first of a group stays above the rest; any other member goes just below the group.
  function untie(r) {
    const { g, k } = findPos(r);
    const group = state.groups[g];
    if (group.length < 2) return 'Response ' + letter(r) + ' is not tied.';
    group.splice(k, 1);
    state.groups.splice(k === 0 ? g : g + 1, 0, [r]);
    return 'Response ' + letter(r) + ' untied, now rank ' + (findPos(r).g + 1) + '.';
  }

  function toggleTie(r) {
    const { g } = findPos(r);
    return state.groups[g].length > 1 ? untie(r) : tieWithAbove(r);
  }

  // Puts r at position `index` of the order without r, as a group of its own; inside a tie it
  // goes right after the tied group.
  function dropAt(r, index) {
    if (flatOrder().indexOf(r) === index) return null;
    const { g, k } = findPos(r);
    state.groups[g].splice(k, 1);
    if (state.groups[g].length === 0) state.groups.splice(g, 1);
    let covered = 0;
    let at = state.groups.length;
    for (let i = 0; i < state.groups.length; i++) {
      if (covered >= index) { at = i; break; }
      covered += state.groups[i].length;
      if (covered > index) { at = i + 1; break; }
    }
    state.groups.splice(at, 0, [r]);
    return 'Response ' + letter(r) + ' moved to rank ' + (findPos(r).g + 1) + '.';
  }

  // Runs an operation on response r, re-renders, and keeps r selected and focused.
  function act(r, op) {
    if (state.busy) return;
    const message = op(r);
    state.selected = r;
    renderRanking();
    focusCard(r);
    if (message) announce(message);
    changed();
  }

  function focusCard(r) {
    const card = state.cards[r];
    if (!card) return;
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: 'nearest' });
  }

  function select(r, focus) {
    if (state.selected !== r) {
      state.selected = r;
      renderSelection();
      const pos = flatOrder().indexOf(r) + 1;
      announce('Response ' + letter(r) + ' selected, position ' + pos + '.');
    }
    if (focus) focusCard(r);
  }

  function renderSelection() {
    state.cards.forEach((card, i) => {
      const on = i === state.selected;
      card.classList.toggle('selected', on);
      card.setAttribute('aria-current', on ? 'true' : 'false');
    });
  }

  // Number of leading responses that are ranked when "rank only the top N" is on (whole groups).
  function rankedCount() {
    if (!state.partial) return state.cards.length;
    let covered = 0;
    for (const g of state.groups) {
      if (covered >= state.partialN) break;
      covered += g.length;
    }
    return covered;
  }

  function renderRanking() {
    const list = $('rank-list');
    const hadFocus = state.cards.includes(document.activeElement) ? document.activeElement : null;
    list.replaceChildren();
    const ranked = rankedCount();
    let pos = 0;
    let cutShown = false;
    state.groups.forEach((group, gi) => {
      if (pos >= ranked && !cutShown) {
        cutShown = true;
        list.append(el('li', 'cut-line', 'Not ranked below this line'));
      }
      const unranked = pos >= ranked;
      const tie = group.length > 1;
      const li = el('li', 'group' + (tie ? ' tie' : '') + (unranked ? ' unranked' : ''));
      li.setAttribute('aria-label', unranked ? 'Unranked'
        : 'Rank ' + (gi + 1) + (tie ? ', ' + group.length + ' responses tied' : ''));
      const inner = el('ul', 'group-cards');
      for (const r of group) {
        pos++;
        const card = state.cards[r];
        card.querySelector('.pos-key').textContent = String(pos);
        card.querySelector('.rank-badge').textContent = unranked ? 'unranked'
          : 'Rank ' + (gi + 1) + (tie ? ' =' : '');
        card.classList.toggle('tied', tie);
        const tieBtn = card.querySelector('.tie-btn');
        tieBtn.setAttribute('aria-pressed', String(tie));
        tieBtn.setAttribute('aria-label', (tie ? 'Untie response ' : 'Tie response ') + letter(r)
          + (tie ? '' : ' with the one above'));
        tieBtn.title = tieBtn.getAttribute('aria-label');
        card.querySelector('.mv-up').disabled = pos === 1 && group.length === 1;
        card.querySelector('.mv-down').disabled = gi === state.groups.length - 1 && group.length === 1;
        inner.append(card);
      }
      li.append(inner);
      list.append(li);
    });
    renderSelection();
    if (hadFocus) hadFocus.focus({ preventScroll: true });
  }

  /* ---------- pairs mode ---------- */

  function renderPairs() {
    const box = $('pairs');
    box.replaceChildren(...state.cards);
    const options = $('pair-scale-options');
    options.replaceChildren();
    SCALE.forEach((opt, n) => {
      const label = el('label', 'scale-option');
      const input = el('input');
      input.type = 'radio';
      input.name = 'pair-choice';
      input.value = String(opt.value);
      input.checked = state.choice === opt.value;
      input.addEventListener('change', () => setChoice(opt.value, false));
      const face = el('span', 'scale-face');
      face.append(el('kbd', null, n + 1), el('span', null, opt.label));
      label.append(input, face);
      options.append(label);
    });
  }

  function setChoice(value, announceIt) {
    state.choice = value;
    for (const input of document.querySelectorAll('input[name="pair-choice"]')) {
      input.checked = Number(input.value) === value;
    }
    if (announceIt) announce(SCALE.find((o) => o.value === value).label + ' selected.');
    showSubmitError('');
    changed();
  }

  /* ---------- mode and extra controls ---------- */

  function renderMode() {
    const pairs = state.task.mode === 'pairs';
    document.body.classList.toggle('mode-pairs', pairs);
    document.body.classList.toggle('mode-rank', !pairs);
    show('rank-list', !pairs);
    show('pairs', pairs);
    show('pair-scale', pairs);
    show('keyhelp-rank', !pairs);
    show('keyhelp-pairs', pairs);
    $('responses-hint').textContent = pairs
      ? 'Read both responses, then choose on the scale below.'
      : 'Put the best response at the top. Drag a card by its handle ⠿, use the arrow buttons, or the keyboard.';
    if (pairs) renderPairs(); else renderRanking();
  }

  function renderAnswerControls() {
    const pairs = state.task.mode === 'pairs';
    const k = state.cards.length;
    const partialAllowed = !pairs && state.task.partial !== false && k > 2;
    show('partial-row', partialAllowed);
    const select = $('partial-n');
    select.replaceChildren();
    for (let n = 1; n < k; n++) {
      const opt = el('option', null, n);
      opt.value = String(n);
      select.append(opt);
    }
    select.value = String(state.partialN);
    $('partial').checked = state.partial;
    $('all-unacceptable').checked = state.allUnacceptable;
    $('comment').value = state.comment;
  }

  function bindExtras() {
    $('partial').addEventListener('change', (ev) => {
      state.partial = ev.target.checked;
      renderRanking();
      changed();
    });
    $('partial-n').addEventListener('change', (ev) => {
      state.partialN = Number(ev.target.value) || 1;
      if (!state.partial) { state.partial = true; $('partial').checked = true; }
      renderRanking();
      changed();
    });
    $('all-unacceptable').addEventListener('change', (ev) => {
      state.allUnacceptable = ev.target.checked;
      changed();
    });
    $('comment').addEventListener('input', (ev) => {
      state.comment = ev.target.value;
      changed();
    });
  }

  /* ---------- drag and drop (pointer events on the handle: mouse, pen and touch) ---------- */

  function onHandleDown(ev) {
    if (state.busy || (ev.pointerType === 'mouse' && ev.button !== 0)) return;
    const handle = ev.currentTarget;
    const card = handle.closest('.card');
    const r = Number(card.dataset.response);
    ev.preventDefault();
    handle.setPointerCapture(ev.pointerId);
    state.drag = { r, card, pointerId: ev.pointerId, startY: ev.clientY, startScroll: window.scrollY,
      moved: false, index: null };
    select(r, false);
  }

  function clearDropMarks() {
    for (const c of state.cards) c.classList.remove('drop-before', 'drop-after');
  }

  function onHandleMove(ev) {
    const drag = state.drag;
    if (!drag || ev.pointerId !== drag.pointerId) return;
    const dy = ev.clientY - drag.startY + (window.scrollY - drag.startScroll);
    if (!drag.moved && Math.abs(dy) < DRAG_THRESHOLD_PX) return;
    if (!drag.moved) {
      drag.moved = true;
      drag.card.classList.add('dragging');
    }
    drag.card.style.transform = 'translateY(' + dy + 'px)';
    const others = flatOrder().filter((x) => x !== drag.r);
    let index = 0;
    others.forEach((o, n) => {
      const rect = state.cards[o].getBoundingClientRect();
      if (ev.clientY > rect.top + rect.height / 2) index = n + 1;
    });
    drag.index = index;
    clearDropMarks();
    if (index < others.length) state.cards[others[index]].classList.add('drop-before');
    else if (others.length) state.cards[others[others.length - 1]].classList.add('drop-after');
    if (ev.clientY < 48) window.scrollBy(0, -12);
    else if (ev.clientY > window.innerHeight - 48) window.scrollBy(0, 12);
  }

  function onHandleUp(ev) {
    const drag = state.drag;
    if (!drag || ev.pointerId !== drag.pointerId) return;
    state.drag = null;
    drag.card.classList.remove('dragging');
    drag.card.style.transform = '';
    clearDropMarks();
    if (ev.type === 'pointerup' && drag.moved && drag.index !== null) {
      act(drag.r, (r) => dropAt(r, drag.index));
    }
  }

  /* ---------- keyboard ---------- */

  function isTyping(target) {
    const tag = target.tagName;
    if (tag === 'TEXTAREA' || tag === 'SELECT' || target.isContentEditable) return true;
    return tag === 'INPUT' && !['checkbox', 'radio', 'button'].includes(target.type);
  }

  function onKey(ev) {
    if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    if (!state.item || $('view-item').hidden || document.querySelector('dialog[open]')) return;
    const target = ev.target;
    if (isTyping(target)) return;
    const key = ev.key;
    if (key === 'Enter') {
      if (['BUTTON', 'A', 'SUMMARY'].includes(target.tagName)) return;
      ev.preventDefault();
      submit();
      return;
    }
    if (state.busy) return;
    if (state.task.mode === 'pairs') {
      if (/^[1-5]$/.test(key)) {
        ev.preventDefault();
        setChoice(SCALE[Number(key) - 1].value, true);
      }
      return;
    }
    onRankKey(ev, key, target);
  }

  function onRankKey(ev, key, target) {
    if (/^[1-9]$/.test(key)) {
      const r = flatOrder()[Number(key) - 1];
      if (r !== undefined) {
        ev.preventDefault();
        select(r, true);
      }
      return;
    }
    if (target.tagName === 'INPUT' && target.type === 'radio' && key.startsWith('Arrow')) return;
    const r = state.selected;
    if (key === 'Escape' && r !== null) {
      state.selected = null;
      renderSelection();
      return;
    }
    if (r === null) return;
    const ops = { ArrowUp: moveUp, ArrowDown: moveDown, t: toggleTie, T: toggleTie, u: untie, U: untie };
    if (ops[key]) {
      ev.preventDefault();
      act(r, ops[key]);
    }
  }

  /* ---------- submit and skip ---------- */

  function setSubmitStatus(text) {
    $('submit-status').textContent = text;
  }

  function showSubmitError(text) {
    $('submit-error').textContent = text;
  }

  function setBusy(busy) {
    state.busy = busy;
    $('btn-submit').disabled = busy;
    $('btn-skip').disabled = busy;
    $('btn-skip-confirm').disabled = busy;
  }

  function rankingBody() {
    const ranked = rankedCount();
    const out = [];
    const rest = [];
    let covered = 0;
    for (const g of state.groups) {
      if (covered >= ranked) rest.push(...g);
      else out.push(g);
      covered += g.length;
    }
    const partial = rest.length >= 2;
    if (rest.length) out.push(rest);
    return { ranking: out.map((g) => (g.length === 1 ? g[0] : g.slice())), partial };
  }

  function labelBody() {
    const body = { item_id: state.item.item_id };
    if (state.task.mode === 'pairs') {
      body.choice = state.choice;
    } else {
      const { ranking, partial } = rankingBody();
      body.ranking = ranking;
      body.partial = partial;
    }
    if (state.task.likert) body.likert = state.likert.slice();
    if (state.task.flags && state.task.flags.length) body.flags = state.flags.map((f) => f.slice());
    body.all_unacceptable = state.allUnacceptable;
    if (state.comment.trim()) body.comment = state.comment;
    body.seconds = elapsedSeconds();
    body.submission_id = randomId();
    return body;
  }

  async function send(path, body) {
    cancelDraft();
    setBusy(true);
    showSubmitError('');
    setSubmitStatus('Saving…');
    const res = await postWithRetry(path, body, (n) => setSubmitStatus('Connection problem, retrying (' + n + ')…'));
    setBusy(false);
    setSubmitStatus('');
    if (res.ok) return true;
    if (res.status === 401) fatal(res.message);
    else showSubmitError('Not saved: ' + res.message);
    return false;
  }

  async function submit() {
    if (state.busy || !state.item) return;
    if (state.task.mode === 'pairs' && state.choice === null) {
      showSubmitError('Choose one of the five options first (keys 1–5).');
      return;
    }
    if (await send('/api/labels', labelBody())) {
      announce('Saved.');
      await refreshProgress();
      await loadNext();
    }
  }

  function openSkip() {
    if (!state.item || state.busy) return;
    for (const input of document.querySelectorAll('input[name="skip-reason"]')) input.checked = false;
    $('skip-text').value = '';
    $('skip-error').textContent = '';
    $('dlg-skip').showModal();
  }

  function skipReason() {
    const picked = document.querySelector('input[name="skip-reason"]:checked');
    const text = $('skip-text').value.trim();
    if (picked && text) return picked.value + ': ' + text;
    return picked ? picked.value : text;
  }

  async function confirmSkip() {
    const reason = skipReason();
    if (!reason) {
      $('skip-error').textContent = 'Pick a reason or write one.';
      return;
    }
    $('dlg-skip').close();
    const body = { item_id: state.item.item_id, reason, submission_id: randomId() };
    if (await send('/api/skip', body)) {
      announce('Skipped.');
      await refreshProgress();
      await loadNext();
    }
  }

  /* ---------- history and guidelines ---------- */

  function timeAgo(seconds) {
    const d = Math.max(0, Date.now() / 1000 - Number(seconds));
    if (!Number.isFinite(d)) return '';
    if (d < 60) return 'just now';
    if (d < 3600) return Math.round(d / 60) + ' min ago';
    if (d < 86400) return Math.round(d / 3600) + ' h ago';
    return new Date(Number(seconds) * 1000).toLocaleDateString();
  }

  function historyEntry(entry) {
    const li = el('li');
    const b = el('button', 'history-item');
    b.type = 'button';
    b.dataset.itemId = String(entry.item_id);
    const top = el('span', 'history-top');
    top.append(el('span', 'history-id', 'Item ' + entry.item_id));
    top.append(el('span', 'pill pill-' + (entry.status === 'skipped' ? 'skipped' : 'labelled'),
      entry.status === 'skipped' ? 'skipped' : 'labelled'));
    top.append(el('span', 'muted small', timeAgo(entry.updated)));
    b.append(top, el('span', 'history-preview', entry.preview || ''));
    b.addEventListener('click', () => {
      $('dlg-history').close();
      loadItem(entry.item_id);
    });
    li.append(b);
    return li;
  }

  async function openHistory() {
    const list = $('history-list');
    list.replaceChildren();
    $('history-status').textContent = 'Loading…';
    $('dlg-history').showModal();
    try {
      const items = ((await getJSON('/api/history')).data || {}).items || [];
      $('history-status').textContent = items.length ? '' : 'Nothing yet.';
      for (const entry of items) list.append(historyEntry(entry));
    } catch (e) {
      $('history-status').textContent = 'Could not load the history: ' + e.message;
    }
  }

  function openGuidelines() {
    const text = state.task && state.task.guidelines ? state.task.guidelines : 'This task has no written guidelines.';
    $('guidelines-text').textContent = text;
    $('dlg-guidelines').showModal();
  }

  /* ---------- start ---------- */

  function bindStatic() {
    document.addEventListener('keydown', onKey);
    document.addEventListener('visibilitychange', onVisibility);
    window.addEventListener('resize', updateCollapsibles);
    // A new #token=... link opened in this tab: start over with it.
    window.addEventListener('hashchange', () => { if (/token=/.test(location.hash)) location.reload(); });
    $('btn-submit').addEventListener('click', submit);
    $('btn-skip').addEventListener('click', openSkip);
    $('btn-skip-confirm').addEventListener('click', confirmSkip);
    $('btn-history').addEventListener('click', openHistory);
    $('btn-guidelines').addEventListener('click', openGuidelines);
    $('btn-back-current').addEventListener('click', loadNext);
    $('btn-reload').addEventListener('click', () => location.reload());
    for (const b of document.querySelectorAll('[data-close]')) {
      b.addEventListener('click', () => $(b.dataset.close).close());
    }
    bindExtras();
  }

  async function start() {
    bindStatic();
    state.token = readToken();
    if (!state.token) {
      fatal('No access token. Open the link you were given (it ends in #token=…).');
      return;
    }
    try {
      state.task = (await getJSON('/api/task')).data;
    } catch (e) {
      if (e.status !== 401) fatal('Could not load the task: ' + e.message);
      return;
    }
    if (!Array.isArray(state.task.flags)) state.task.flags = [];
    $('rater-name').textContent = state.task.rater ? 'Signed in as ' + state.task.rater : '';
    show('btn-guidelines', true);
    await refreshProgress();
    await loadNext();
  }

  document.addEventListener('DOMContentLoaded', start);
})();
