#!/usr/bin/env python3
"""Real-browser test of the `rlhf label` web app (issue 17): headless Chromium + selenium 4.

Run it against the mock server it starts itself (both modes):

    .venv/bin/python tests/label/browser_test.py --mock --screenshots /tmp/label_shots

or against an already running `rlhf label serve` (one mode per run, the task's mode):

    .venv/bin/python tests/label/browser_test.py --url http://127.0.0.1:8080 --token RATER \
        [--token2 OTHER_RATER] --admin-token ADMIN --screenshots DIR --mode rank|pairs

What the task must contain (the harness that creates it: this is the contract)
--------------------------------------------------------------------------
* The rater behind --token is fresh (no labels, skips or drafts yet). The test labels everything that
  rater has, until /api/next answers 204.
* --mode rank: a rank-mode task with at least 6 items for this rater (7 or more recommended), every item
  with 4 responses (3..9 work), and no two responses of one item with the same text. One response of one
  item is exactly   <script>alert(1)</script><img src=x onerror=alert(2)>   (the XSS probe; required).
  Any prompt may be a string or chat turns (one chat prompt recommended; a response of 30+ lines is
  checked for its "Show all" toggle when there is one). Likert and flags are exercised when /api/task enables them
  (recommended: "likert": true and at least one flag). Non-empty guidelines are checked when present.
* --mode pairs: a pairs-mode task with at least 3 items for this rater, 2 responses each. The XSS probe
  is checked when one of the items has it.
* --token2 (optional): a second rater of the same task (fresh too) with at least one item open; the
  test labels one item as that rater and checks it never sees the first rater's answers.
* --admin-token: the task's admin token; the admin page must list the rater of --token.

What it checks, in a real browser
---------------------------------
the token is taken from the URL fragment and the fragment removed; rank an item with the keyboard alone
(1-9, arrows, T, Enter) and read the stored label back through the API; rank one by dragging a handle
(pointer events) plus a tie with the "=" button, Likert, a flag and a comment; a draft survives a reload;
skip with a reason; "rank only the top 2" (partial); chat turns with their roles; a long response
clamped with a working "Show all"; (mock only) a submit that first meets two 503 answers is retried and stored; go back
through the history, change an earlier label and check the overwrite through the API; the XSS probe is
shown literally (text in the card, no <img> in the cards, no alert); the progress bar moves; at 375x740
the page has no horizontal scrolling; the guidelines dialog; "All done" at the end; the admin page shows
the status; pairs mode: A/B side by side (stacked on a phone), keys 1-5 and Enter. The browser console
must have no SEVERE entry (CSP violations included), apart from the 503 answers the mock injects.
Screenshots of every step go to --screenshots. Exit status 0 = pass; otherwise a FAIL line says why.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
HERE = os.path.dirname(os.path.abspath(__file__))
DESKTOP = (1280, 1600)
PHONE = (375, 740)
WAIT_S = 10


class TestFailure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def log(msg):
    print("  " + msg, flush=True)


# ---------------------------------------------------------------- API access from Python (urllib)

class Api:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def call(self, method, path, token=None, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if token:
            req.add_header("Authorization", "Bearer " + token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                raw = res.read()
                return res.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw) if raw else None
            except ValueError:
                return e.code, None

    def get(self, path, token):
        status, data = self.call("GET", path, token)
        check(status == 200, f"GET {path} answered {status}: {data}")
        return data


# ---------------------------------------------------------------- ranking model (mirrors app.js)

def find(groups, r):
    for gi, g in enumerate(groups):
        if r in g:
            return gi, g.index(r)
    raise KeyError(r)


def move_up(groups, r):
    gi, k = find(groups, r)
    if len(groups[gi]) > 1:
        groups[gi].pop(k)
        groups.insert(gi, [r])
    elif gi > 0:
        groups[gi - 1], groups[gi] = groups[gi], groups[gi - 1]


def move_down(groups, r):
    gi, k = find(groups, r)
    if len(groups[gi]) > 1:
        groups[gi].pop(k)
        groups.insert(gi + 1, [r])
    elif gi < len(groups) - 1:
        groups[gi], groups[gi + 1] = groups[gi + 1], groups[gi]


def untie(groups, r):
    gi, k = find(groups, r)
    if len(groups[gi]) < 2:
        return
    groups[gi].pop(k)
    groups.insert(gi if k == 0 else gi + 1, [r])


def toggle_tie(groups, r):
    gi, _ = find(groups, r)
    if len(groups[gi]) > 1:
        untie(groups, r)
    elif gi > 0:
        groups[gi - 1].append(r)
        groups[gi].remove(r)
        if not groups[gi]:
            groups.pop(gi)


def apply_keys(groups, keys):
    """What the rank-mode keys mean: digits select by position, arrows move, t ties/unties, u unties."""
    groups = [list(g) for g in groups]
    sel = None
    ops = {Keys.ARROW_UP: move_up, Keys.ARROW_DOWN: move_down, "t": toggle_tie, "u": untie}
    for key in keys:
        if key.isdigit():
            sel = [x for g in groups for x in g][int(key) - 1]
        elif key in ops:
            ops[key](groups, sel)
    return groups


def norm_ranking(ranking):
    """Stored ranking -> list of sorted groups (order inside a tie does not matter)."""
    return [sorted(e) if isinstance(e, list) else [e] for e in ranking]


def norm_groups(groups):
    return [sorted(g) for g in groups]


# ---------------------------------------------------------------- the browser session

class Browser:
    def __init__(self, args, api, fault_statuses):
        self.args = args
        self.api = api
        self.shots = args.screenshots
        self.n_shot = 0
        self.console = []
        self.fault_statuses = fault_statuses  # injected HTTP statuses the console may show
        opts = webdriver.ChromeOptions()
        opts.binary_location = args.chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  f"--window-size={DESKTOP[0]},{DESKTOP[1]}", "--lang=en-US", "--no-first-run",
                  "--disable-extensions", "--force-device-scale-factor=1"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(options=opts, service=Service(executable_path=args.chromedriver))
        self.driver.set_page_load_timeout(20)

    def quit(self):
        try:
            self.driver.quit()
        except WebDriverException:
            pass

    # ----- generic helpers

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, cond, message, timeout=WAIT_S):
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(lambda d: cond())
        except TimeoutException:
            raise TestFailure("timed out: " + message)

    def shot(self, name):
        self.n_shot += 1
        path = os.path.join(self.shots, f"{self.n_shot:02d}_{name}.png")
        self.driver.save_screenshot(path)
        return path

    def keys(self, *keys):
        chain = ActionChains(self.driver)
        for k in keys:
            chain.send_keys(k)
        chain.perform()

    def collect_console(self):
        try:
            self.console.extend(self.driver.get_log("browser"))
        except WebDriverException:
            pass

    def check_console(self, where):
        self.collect_console()
        bad = []
        for e in self.console:
            msg = e.get("message", "")
            csp = "Content Security Policy" in msg or "Refused to" in msg
            if e.get("level") != "SEVERE" and not csp:
                continue
            if (not csp and e.get("source") == "network"
                    and any(f"status of {s}" in msg for s in self.fault_statuses)):
                continue  # an answer the mock was told to fail
            bad.append(f"[{e.get('level')}/{e.get('source')}] {msg}")
        self.console = []
        check(not bad, f"browser console errors ({where}):\n    " + "\n    ".join(bad))

    def no_alert(self, where):
        try:
            alert = self.driver.switch_to.alert
            text = alert.text
            alert.dismiss()
        except NoAlertPresentException:
            return
        raise TestFailure(f"an alert opened ({where}): {text!r}")

    def phone(self, on):
        if on:
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True})
            self.driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5})
        else:
            self.driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": False})
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        time.sleep(0.3)

    def check_no_hscroll(self, where):
        w = self.js("return [document.documentElement.scrollWidth, window.innerWidth]")
        check(w[1] == PHONE[0], f"phone emulation did not take ({where}): innerWidth {w[1]}")
        check(w[0] <= w[1], f"horizontal scrolling at {PHONE[0]} px ({where}): scrollWidth {w[0]} > {w[1]}")

    # ----- the app

    def open_app(self, token, path="/"):
        self.driver.get(self.args.url.rstrip("/") + path + "#token=" + token)
        self.wait(lambda: "token=" not in self.driver.current_url, "the token fragment was not removed")
        stored = self.js("return sessionStorage.getItem(arguments[0])",
                         "rlhf_admin_token" if path == "/admin" else "rlhf_token")
        check(stored == token, "the token was not kept in sessionStorage")

    def view(self):
        return self.js("""
            for (const v of ['item', 'done', 'fatal', 'loading'])
              if (!document.getElementById('view-' + v).hidden) return v;
            return null;""")

    def item_id(self):
        return self.js("return document.getElementById('view-item').hidden ? null"
                       " : document.getElementById('view-item').dataset.itemId")

    def wait_item(self, not_id=None):
        """Waits for an item (other than not_id) or the done view; returns the item id or None."""
        def ready():
            v = self.view()
            if v == "fatal":
                raise TestFailure("the app shows an error: " + self.js(
                    "return document.getElementById('fatal-text').textContent"))
            if v == "done":
                return "done"
            if v == "item" and self.item_id() and self.item_id() != not_id:
                return "item"
            return None
        state = self.wait(ready, "no item or 'All done' shown")
        self.no_alert("after loading an item")
        return None if state == "done" else self.item_id()

    def groups(self):
        return self.js("""return Array.from(document.querySelectorAll('#rank-list > li.group'))
            .map(g => Array.from(g.querySelectorAll('.card')).map(c => Number(c.dataset.response)));""")

    def order(self):
        return [x for g in self.groups() for x in g]

    def cards(self, sel="#rank-list .card"):
        return self.driver.find_elements(By.CSS_SELECTOR, sel)

    def card(self, r):
        return self.driver.find_element(By.CSS_SELECTOR, f'.card[data-response="{r}"]')

    def progress(self):
        return self.js("""const p = document.getElementById('progress');
            return [Number(p.getAttribute('aria-valuenow')), Number(p.getAttribute('aria-valuemax')),
                    document.getElementById('progress-bar').getBoundingClientRect().width];""")

    def check_item_text(self, token, item_id, sel):
        """The cards show the responses the API has for this rater, in order, literally."""
        item = self.api.get(f"/api/items/{item_id}", token)
        shown = self.js(f"""return Array.from(document.querySelectorAll('{sel}'))
            .map(c => [Number(c.dataset.response), c.querySelector('.response-text').textContent]);""")
        check(len(shown) == len(item["responses"]),
              f"item {item_id}: {len(shown)} cards for {len(item['responses'])} responses")
        for r, text in shown:
            check(text == item["responses"][r], f"item {item_id}: card {r} shows {text[:60]!r}, "
                                                f"expected {item['responses'][r][:60]!r}")
        self.check_prompt(item)
        self.check_collapsible(item, sel)
        return item

    def check_prompt(self, item):
        """A string prompt is shown as one text; chat turns each with their role."""
        turns = self.js("""return Array.from(document.querySelectorAll('#prompt .turn')).map(t =>
            [t.querySelector('.turn-role').textContent, t.querySelector('.prompt-text').textContent]);""")
        prompt = item["prompt"]
        if isinstance(prompt, str):
            text = self.js("return document.querySelector('#prompt .prompt-text').textContent")
            check(not turns and text == prompt, f"item {item['item_id']}: the prompt is not shown as given")
        else:
            want = [[t["role"], t["content"]] for t in prompt]
            check(turns == want, f"item {item['item_id']}: chat turns shown as {turns}, expected {want}")

    def check_collapsible(self, item, sel):
        """A response of 30 lines or more is clamped with a working "Show all" toggle."""
        for r, text in enumerate(item["responses"]):
            if text.count("\n") < 29:
                continue
            card = self.card(r)
            toggle = card.find_element(By.CSS_SELECTOR, ".toggle-more")
            check(toggle.is_displayed(), f"item {item['item_id']}: the long response {r} has no 'Show all'")
            h0 = card.size["height"]
            toggle.click()
            check(toggle.get_attribute("aria-expanded") == "true" and card.size["height"] > h0,
                  "'Show all' did not expand the long response")
            toggle.click()
            check(toggle.get_attribute("aria-expanded") == "false", "'Show less' did not collapse it again")
            log(f"item {item['item_id']}: long response {r} clamped, 'Show all' works")
            return

    def check_xss(self, item, sel):
        """Returns True when the item holds the XSS probe (and it is shown literally)."""
        if XSS not in item["responses"]:
            return False
        r = item["responses"].index(XSS)
        card = self.card(r)
        text = card.find_element(By.CSS_SELECTOR, ".response-text")
        check(text.text == XSS, f"the XSS probe is not shown literally: {text.text!r}")
        imgs = self.js(f"return document.querySelectorAll('{sel} img, {sel} script').length")
        check(imgs == 0, f"{imgs} img/script element(s) inside the response cards")
        check(self.js("return document.querySelectorAll('img').length") == 0, "an <img> appeared on the page")
        time.sleep(0.3)
        self.no_alert("with the XSS probe on screen")
        log(f"XSS probe shown literally (response {r} of item {item['item_id']})")
        return True


# ---------------------------------------------------------------- rank mode

class RankRun:
    def __init__(self, b, args, token, task):
        self.b, self.args, self.token, self.task = b, args, token, task
        self.api = b.api
        self.seen_xss = False
        self.last_progress = None
        self.expect = {}  # item id -> expected normalised ranking

    def on_item(self, item_id):
        item = self.b.check_item_text(self.token, item_id, "#rank-list .card")
        k = len(item["responses"])
        check(3 <= k <= 9, f"item {item_id} has {k} responses; the test needs 3..9 in rank mode")
        if self.b.check_xss(item, "#rank-list .card"):
            self.seen_xss = True
        return item

    def progress_moved(self, what):
        now, total, width = self.b.progress()
        if self.last_progress is not None:
            check(now > self.last_progress[0], f"progress did not move after {what}: {self.last_progress[0]} -> {now}")
            check(width > self.last_progress[2], f"progress bar did not grow after {what}")
        self.last_progress = (now, total, width)

    def submitted(self, item_id, via):
        nxt = self.b.wait_item(not_id=item_id)
        self.progress_moved(via)
        return nxt

    def stored(self, item_id):
        return self.api.get(f"/api/items/{item_id}", self.token)

    def verify_label(self, item_id, expected_groups, what):
        label = self.stored(item_id)["label"]
        check(label is not None, f"{what}: no label stored for item {item_id}")
        got = norm_ranking(label["ranking"])
        check(got == norm_groups(expected_groups), f"{what}: stored ranking {label['ranking']} "
                                                   f"but the page meant {expected_groups}")
        check(isinstance(label.get("seconds"), (int, float)) and 0 < label["seconds"] < 3600,
              f"{what}: seconds not sent sensibly: {label.get('seconds')}")
        return label

    # ----- steps

    def step_keyboard(self, item_id):
        b = self.b
        start = b.groups()
        k = len(start)
        check(all(len(g) == 1 for g in start), "a fresh item should start without ties")
        keys = [str(k)] + [Keys.ARROW_UP] * (k - 1) + ["3", "t", "1", Keys.ARROW_DOWN]
        expected = apply_keys(start, keys)
        b.keys(*keys)
        b.wait(lambda: b.groups() == expected, f"keyboard ranking shows {b.groups()}, expected {expected}")
        tie = b.js("return document.querySelectorAll('#rank-list > li.group.tie .card').length")
        check(tie == 2, "the tie made with T is not shown as a group of two")
        badge = b.js("return document.querySelector('#rank-list li.group.tie .rank-badge').textContent")
        check("=" in badge, f"the tie has no '=' marker: {badge!r}")
        b.shot("rank_keyboard_tie")
        b.keys(Keys.ENTER)
        nxt = self.submitted(item_id, "a keyboard submit")
        self.verify_label(item_id, expected, "keyboard ranking")
        self.expect[item_id] = norm_groups(expected)
        log(f"item {item_id}: keyboard ranking {expected} stored")
        return nxt

    def drag(self, handle, target_y):
        b = self.b
        y0 = b.js("const r = arguments[0].getBoundingClientRect(); return r.top + r.height / 2;", handle)
        height = b.js("return window.innerHeight")
        check(0 < target_y < height and 0 < y0 < height, "drag source or target is outside the window")
        chain = ActionChains(b.driver, duration=30).click_and_hold(handle)
        dy_total = target_y - y0
        steps = max(4, int(abs(dy_total) // 40))
        done = 0
        for i in range(1, steps + 1):
            dy = round(dy_total * i / steps) - done
            done += dy
            chain.move_by_offset(0, dy)
        chain.pause(0.1).release().perform()

    def step_drag(self, item_id):
        b = self.b
        start = b.groups()
        order = [g[0] for g in start]
        last, first = order[-1], order[0]
        b.js("document.getElementById('rank-list').scrollIntoView(); window.scrollBy(0, -90);")
        handle = b.card(last).find_element(By.CSS_SELECTOR, ".handle")
        top = b.js("return arguments[0].getBoundingClientRect().top", b.card(first))
        self.drag(handle, top + 12)
        expected = [[last]] + [[x] for x in order[:-1]]
        b.wait(lambda: b.groups() == expected, f"after dragging the last card to the top the page shows "
                                               f"{b.groups()}, expected {expected}")
        b.shot("rank_after_drag")
        # tie by mouse: the "=" button of the card at position 3 ties it with the one above
        third = b.order()[2]
        b.card(third).find_element(By.CSS_SELECTOR, ".tie-btn").click()
        expected = apply_keys(expected, ["3", "t"])
        b.wait(lambda: b.groups() == expected, f"the '=' button gave {b.groups()}, expected {expected}")
        check(b.card(third).find_element(By.CSS_SELECTOR, ".tie-btn").get_attribute("aria-pressed") == "true",
              "the tie button does not say it is pressed")
        extra = {}
        if self.task.get("likert"):
            b.card(last).find_element(By.CSS_SELECTOR, 'input[value="6"] + .seg-face').click()
            extra["likert"] = (last, 6)
        if self.task.get("flags"):
            second = b.order()[1]
            card = b.card(second)
            card.find_element(By.CSS_SELECTOR, "details.flags summary").click()
            card.find_element(By.CSS_SELECTOR, "details.flags .check-row").click()
            extra["flag"] = (second, self.task["flags"][0])
        comment = "dragged <b>bold</b> & tied"
        b.driver.find_element(By.ID, "comment").send_keys(comment)
        b.shot("rank_drag_tie_likert_flags")
        b.driver.find_element(By.ID, "btn-submit").click()
        nxt = self.submitted(item_id, "a drag-and-drop submit")
        label = self.verify_label(item_id, expected, "drag-and-drop ranking")
        check(label.get("comment") == comment, f"comment stored as {label.get('comment')!r}")
        if "likert" in extra:
            r, v = extra["likert"]
            check(label["likert"][r] == v and sum(x is not None for x in label["likert"]) == 1,
                  f"likert stored as {label['likert']}, expected {v} for response {r} only")
        if "flag" in extra:
            r, f = extra["flag"]
            check(label["flags"][r] == [f] and sum(len(x) for x in label["flags"]) == 1,
                  f"flags stored as {label['flags']}, expected {f!r} on response {r} only")
        self.expect[item_id] = norm_groups(expected)
        log(f"item {item_id}: drag + '=' tie {expected} stored" + (", with likert/flag/comment" if extra else ""))
        return nxt

    def step_draft_phone_skip(self, item_id):
        b = self.b
        start = b.groups()
        keys = ["2", Keys.ARROW_UP]
        expected = apply_keys(start, keys)
        b.keys(*keys)
        b.wait(lambda: b.groups() == expected, "the keys 2, ArrowUp did not move the response")
        b.wait(lambda: b.js("return document.getElementById('draft-status').textContent") == "Draft saved",
               "no draft saved about a second after a change", timeout=5)
        b.driver.refresh()
        check(b.wait_item() == item_id, "after a reload the app did not come back to the same item")
        b.wait(lambda: b.groups() == expected, f"the draft was not restored after a reload: {b.groups()}")
        self.on_item(item_id)
        log(f"item {item_id}: draft restored after a reload")
        # phone-sized screen
        b.phone(True)
        b.check_no_hscroll("rank item")
        b.shot("phone_rank")
        sizes = b.js("""return Array.from(document.querySelectorAll('.handle, #btn-submit, #btn-skip'))
            .map(e => Math.min(e.getBoundingClientRect().width, e.getBoundingClientRect().height));""")
        check(min(sizes) >= 40, f"touch targets smaller than 40 px on a phone: {sizes}")
        b.driver.find_element(By.ID, "btn-guidelines").click()
        b.wait(lambda: b.js("return document.getElementById('dlg-guidelines').open"), "guidelines dialog not open")
        shown = b.driver.find_element(By.ID, "guidelines-text").text
        if self.task.get("guidelines"):
            first = self.task["guidelines"].strip().splitlines()[0].strip()
            check(first in shown, f"the guidelines dialog does not show the guidelines text: {shown[:80]!r}")
        b.check_no_hscroll("guidelines dialog")
        b.shot("phone_guidelines")
        b.driver.find_element(By.CSS_SELECTOR, '#dlg-guidelines [data-close]').click()
        b.phone(False)
        log("phone 375x740: no horizontal scrolling; guidelines dialog")
        # skip with a reason
        b.driver.find_element(By.ID, "btn-skip").click()
        b.wait(lambda: b.js("return document.getElementById('dlg-skip').open"), "the skip dialog did not open")
        reason = "browser test: cannot judge <this>"
        b.driver.find_element(By.ID, "skip-text").send_keys(reason)
        b.shot("skip_dialog")
        b.driver.find_element(By.ID, "btn-skip-confirm").click()
        nxt = self.submitted(item_id, "a skip")
        skipped = self.stored(item_id).get("skipped")
        check(skipped and reason in skipped.get("reason", ""), f"skip reason stored as {skipped}")
        prog = self.api.get("/api/progress", self.token)
        check(prog["skipped"] >= 1, f"/api/progress does not count the skip: {prog}")
        log(f"item {item_id}: skipped with a reason")
        return nxt

    def step_retry(self, item_id):
        """Mock only: the next two submits answer 503; the app must retry with the same submission."""
        b = self.b
        status, _ = self.api.call("POST", "/mock/fail", body={"path": "/api/labels", "count": 2, "status": 503})
        check(status == 200, "the mock did not accept the fault injection")
        expected = apply_keys(b.groups(), ["1", Keys.ARROW_DOWN])
        b.keys("1", Keys.ARROW_DOWN, Keys.ENTER)
        b.wait(lambda: "retrying" in b.js("return document.getElementById('submit-status').textContent"),
               "no 'retrying' message after a 503")
        b.shot("submit_retrying")
        nxt = self.submitted(item_id, "a retried submit")
        self.verify_label(item_id, expected, "retried submit")
        log(f"item {item_id}: submit retried after two 503 answers and stored")
        return nxt

    def step_partial(self, item_id):
        """"Rank only the top 2": the rest go in one final group, partial = true."""
        b = self.b
        if item_id is None or not b.driver.find_element(By.ID, "partial-row").is_displayed():
            return item_id
        self.on_item(item_id)
        order = b.order()
        if len(order) < 4:
            return item_id
        b.driver.find_element(By.ID, "partial").click()
        b.wait(lambda: b.js("return document.querySelectorAll('#rank-list .cut-line').length") == 1,
               "no 'not ranked below this line' marker")
        b.shot("rank_partial")
        b.driver.find_element(By.ID, "btn-submit").click()
        nxt = self.submitted(item_id, "a partial ranking")
        expected = [[order[0]], [order[1]], order[2:]]
        label = self.verify_label(item_id, expected, "partial ranking")
        check(label.get("partial") is True, f"partial ranking stored with partial={label.get('partial')}")
        log(f"item {item_id}: top-2 partial ranking {expected} stored")
        return nxt

    def step_history_edit(self, current_id, edit_id):
        b = self.b
        b.driver.find_element(By.ID, "btn-history").click()
        b.wait(lambda: len(b.driver.find_elements(By.CSS_SELECTOR, "#history-list .history-item")) >= 2,
               "the history does not list the earlier items")
        b.shot("history")
        b.driver.find_element(By.CSS_SELECTOR, f'#history-list .history-item[data-item-id="{edit_id}"]').click()
        check(b.wait_item(not_id=current_id) == edit_id, "the history did not open the chosen item")
        check(b.driver.find_element(By.ID, "edit-banner").is_displayed(), "no banner says this is an earlier item")
        shown = norm_groups(b.groups())
        check(shown == self.expect[edit_id], f"the earlier label is not shown: page {shown}, "
                                             f"stored {self.expect[edit_id]}")
        self.on_item(edit_id)
        start = b.groups()
        k = len(b.order())
        keys = [str(k), Keys.ARROW_UP, Keys.ARROW_UP, "2", "u"]
        expected = apply_keys(start, keys)
        b.keys(*keys)
        b.wait(lambda: b.groups() == expected, f"history edit: page shows {b.groups()}, expected {expected}")
        comment = b.driver.find_element(By.ID, "comment")
        comment.clear()
        comment.send_keys("edited from the history")
        b.shot("history_edit")
        before = self.last_progress
        b.driver.find_element(By.ID, "btn-submit").click()
        check(b.wait_item(not_id=edit_id) == current_id, "after the edit the app did not return to the current item")
        label = self.verify_label(edit_id, expected, "history edit")
        check(label.get("comment") == "edited from the history", f"edit comment stored as {label.get('comment')!r}")
        check(b.progress()[0] == before[0], "an edit changed the progress count")
        self.expect[edit_id] = norm_groups(expected)
        log(f"item {edit_id}: changed from the history; the API has the new label {expected}")

    def run(self):
        b = self.b
        b.open_app(self.token)
        item_id = b.wait_item()
        check(item_id is not None, "the rater has nothing to label (need a fresh rater with >= 6 items)")
        b.check_console("first load")
        self.on_item(item_id)
        self.progress_moved("start")
        check(self.last_progress[1] >= 6, f"the rater has {self.last_progress[1]} items; the test needs >= 6")
        b.shot("rank_initial")
        first = item_id
        item_id = self.step_keyboard(item_id)
        self.on_item(item_id)
        item_id = self.step_drag(item_id)
        self.on_item(item_id)
        b.check_console("after keyboard and drag")
        item_id = self.step_draft_phone_skip(item_id)
        self.on_item(item_id)
        if self.args.mock:
            item_id = self.step_retry(item_id)
            self.on_item(item_id)
        check(item_id is not None, "the task ran out of items before the history step (need >= 6)")
        self.step_history_edit(item_id, first)
        b.check_console("after the history edit")
        item_id = self.step_partial(item_id)
        n = 0
        while item_id is not None:
            self.on_item(item_id)
            b.keys(Keys.ENTER)
            item_id = self.submitted(item_id, "a plain Enter submit")
            n += 1
        b.wait(lambda: "All done, thank you" in b.driver.find_element(By.ID, "view-done").text, "no 'All done'")
        now, total, _ = b.progress()
        check(now == total, f"progress at the end is {now} of {total}")
        status, _ = self.api.call("GET", "/api/next", self.token)
        check(status == 204, f"/api/next answers {status} after the last item, expected 204")
        b.shot("all_done")
        log(f"{n} more item(s) submitted with Enter; 'All done, thank you'; progress {now}/{total}")
        check(self.seen_xss, "no item had the XSS probe response (the task must contain one)")
        b.check_console("rank run")


# ---------------------------------------------------------------- pairs mode

class PairsRun:
    def __init__(self, b, args, token, task):
        self.b, self.args, self.token, self.task = b, args, token, task
        self.api = b.api
        self.seen_xss = False

    def choose(self, item_id, key, expected):
        b = self.b
        b.keys(key)
        b.wait(lambda: b.js("const c = document.querySelector('input[name=pair-choice]:checked');"
                            " return c ? Number(c.value) : null;") == expected,
               f"key {key} did not choose {expected}")

    def run(self):
        b = self.b
        b.open_app(self.token)
        item_id = b.wait_item()
        check(item_id is not None, "the rater has nothing to label (need a fresh rater with >= 3 pairs)")
        check(b.js("return document.body.classList.contains('mode-pairs')"), "the page is not in pairs mode")
        last = b.progress()
        check(last[1] >= 3, f"the rater has {last[1]} items; the test needs >= 3")
        keys = [("1", -2), ("4", 1)]
        n = 0
        while item_id is not None:
            item = b.check_item_text(self.token, item_id, "#pairs .card")
            check(len(item["responses"]) == 2, f"pairs item {item_id} has {len(item['responses'])} responses")
            self.seen_xss |= b.check_xss(item, "#pairs .card")
            a, bb = (b.js("const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.bottom];",
                          c) for c in b.cards("#pairs .card"))
            check(abs(a[1] - bb[1]) < 2 and a[0] < bb[0], "A and B are not side by side on a wide screen")
            if n == 0:
                b.shot("pairs_initial")
                b.keys(Keys.ENTER)
                b.wait(lambda: b.driver.find_element(By.ID, "submit-error").text != "",
                       "Enter without a choice shows no message")
                check(b.item_id() == item_id, "Enter without a choice submitted anyway")
            if n == 1:
                b.phone(True)
                b.check_no_hscroll("pairs item")
                a, bb = (b.js("const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.bottom];",
                              c) for c in b.cards("#pairs .card"))
                check(bb[1] >= a[2] - 1, "A and B are not stacked on a phone")
                b.shot("phone_pairs")
                b.phone(False)
            key, expected = keys[n] if n < len(keys) else ("3", 0)
            self.choose(item_id, key, expected)
            if n < 2:
                b.shot(f"pairs_choice_{key}")
            b.keys(Keys.ENTER)
            nxt = b.wait_item(not_id=item_id)
            label = self.api.get(f"/api/items/{item_id}", self.token)["label"]
            check(label and label.get("choice") == expected, f"pairs item {item_id}: stored {label}, "
                                                             f"the key {key} meant {expected}")
            now = b.progress()
            check(now[0] > last[0], "the progress did not move in pairs mode")
            last = now
            log(f"pairs item {item_id}: key {key} -> choice {expected} stored")
            item_id = nxt
            n += 1
        b.wait(lambda: "All done, thank you" in b.driver.find_element(By.ID, "view-done").text, "no 'All done'")
        b.shot("pairs_all_done")
        if self.args.mock:
            check(self.seen_xss, "the mock's pairs task has an XSS item that was not seen")
        b.check_console("pairs run")


# ---------------------------------------------------------------- second rater and admin

def second_rater(b, args, first_token, edited_ids, forbidden_texts):
    b.open_app(args.token2)
    item_id = b.wait_item()
    check(item_id is not None, "--token2: the second rater has no open item")
    src = b.driver.page_source
    for text in forbidden_texts:
        check(text not in src, f"the second rater's page shows the first rater's text {text!r}")
    for iid in edited_ids:
        status, data = b.api.call("GET", f"/api/items/{iid}", args.token2)
        if status == 200 and data["label"] is not None:
            check(all(t not in json.dumps(data["label"]) for t in forbidden_texts),
                  f"the second rater sees the first rater's label for item {iid}: {data['label']}")
    if b.js("return document.body.classList.contains('mode-pairs')"):
        b.keys("5", Keys.ENTER)
    else:
        b.keys("2", Keys.ARROW_UP, Keys.ENTER)
    b.wait_item(not_id=item_id)
    label = b.api.get(f"/api/items/{item_id}", args.token2)["label"]
    check(label is not None, "the second rater's label was not stored")
    b.shot("second_rater")
    b.check_console("second rater")
    log(f"second rater labelled item {item_id}; it sees none of the first rater's answers")


def admin_page(b, args, rater_names):
    b.open_app(args.admin_token, "/admin")
    b.wait(lambda: len(b.driver.find_elements(By.CSS_SELECTOR, "#raters-body tr")) > 0, "admin page shows no raters")
    status = b.api.get("/api/admin/status", args.admin_token)
    rows = {tr.get_attribute("data-rater"): tr for tr in b.driver.find_elements(By.CSS_SELECTOR, "#raters-body tr")}
    for name in rater_names:
        check(name in rows, f"the admin page does not list rater {name!r}")
        want = next(r for r in status["raters"] if r["name"] == name)
        cells = [td.text for td in rows[name].find_elements(By.CSS_SELECTOR, "td")]
        check(cells[1] == str(want["done"]), f"admin page: {name} done {cells[1]}, API says {want['done']}")
        agree = cells[5]
        check(agree == "not enough data" if want["agreement"] is None else agree == f"{want['agreement']:.3f}",
              f"admin page: {name} agreement {agree!r}, API says {want['agreement']}")
    fig = b.driver.find_element(By.ID, "agreement-body").text
    for label in ("Pairwise", "Kendall's tau", "Krippendorff", "Kendall's W"):
        check(label in fig, f"the admin page does not show {label}")
    first = b.driver.find_element(By.ID, "updated").text
    b.wait(lambda: b.driver.find_element(By.ID, "updated").text != first, "the admin page does not refresh",
           timeout=7)
    b.shot("admin")
    b.phone(True)
    b.shot("phone_admin")
    b.phone(False)
    b.check_console("admin page")
    log("admin page lists " + ", ".join(rater_names) + " with the API's numbers and refreshes")


# ---------------------------------------------------------------- runs

def run_one(args, mode, fault_statuses):
    api = Api(args.url)
    task = api.get("/api/task", args.token)
    check(task["mode"] == mode, f"the task is in {task['mode']} mode, --mode says {mode}")
    b = Browser(args, api, fault_statuses)
    try:
        if mode == "rank":
            r = RankRun(b, args, args.token, task)
            r.run()
            edited = list(r.expect)
        else:
            PairsRun(b, args, args.token, task).run()
            edited = []
        names = [task["rater"]]
        if args.token2:
            second_rater(b, args, args.token, edited, ["edited from the history", "dragged <b>bold</b>"])
            names.append(api.get("/api/task", args.token2)["rater"])
        admin_page(b, args, names)
        b.no_alert("end")
    except TestFailure:
        try:
            b.shot("FAILURE")
        except WebDriverException:
            pass
        raise
    finally:
        b.quit()


def start_mock(mode):
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "mock_server.py"), "--port", "0", "--mode", mode],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    check(line, "the mock server did not start")
    return proc, json.loads(line)


def main():
    ap = argparse.ArgumentParser(description="Headless-Chromium test of the rlhf label web app.")
    ap.add_argument("--url", help="base URL of a running `rlhf label serve`")
    ap.add_argument("--token", help="a fresh rater's token")
    ap.add_argument("--token2", help="a second rater's token (optional)")
    ap.add_argument("--admin-token", help="the admin token")
    ap.add_argument("--mode", choices=["rank", "pairs", "both"], help="the task's mode (--mock: default both)")
    ap.add_argument("--mock", action="store_true", help="start tests/label/mock_server.py instead of --url")
    ap.add_argument("--screenshots", default="/tmp/label_shots", help="folder for the PNG screenshots")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = ap.parse_args()
    if not args.mock and not (args.url and args.token and args.admin_token and args.mode in ("rank", "pairs")):
        ap.error("give --mock, or --url, --token, --admin-token and --mode rank|pairs")
    os.makedirs(args.screenshots, exist_ok=True)
    for folder in (args.screenshots, os.path.join(args.screenshots, "rank"), os.path.join(args.screenshots, "pairs")):
        for name in os.listdir(folder) if os.path.isdir(folder) else []:
            if name.endswith(".png"):
                os.remove(os.path.join(folder, name))
    t0 = time.time()
    procs = []
    try:
        if args.mock:
            base_shots = args.screenshots
            for mode in (["rank", "pairs"] if args.mode in (None, "both") else [args.mode]):
                proc, info = start_mock(mode)
                procs.append(proc)
                args.url, args.admin_token = info["url"], info["admin"]
                args.token, args.token2 = info["tokens"]["alice"], info["tokens"]["bob"]
                args.screenshots = os.path.join(base_shots, mode)
                os.makedirs(args.screenshots, exist_ok=True)
                print(f"{mode} mode against the mock at {args.url}", flush=True)
                run_one(args, mode, fault_statuses=[503])
            args.screenshots = base_shots
        else:
            print(f"{args.mode} mode against {args.url}", flush=True)
            run_one(args, args.mode, fault_statuses=[])
    except TestFailure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    except (WebDriverException, urllib.error.URLError, OSError) as e:
        print(f"FAIL: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=5)
    print(f"PASS: browser test in {time.time() - t0:.1f} s; screenshots in {args.screenshots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
