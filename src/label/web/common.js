/*
 * rlhf label: helpers shared by the rater app (app.js) and the admin page (admin.js). Served verbatim
 * at /common.js and loaded before either; defines window.rlhfCommon.
 */
'use strict';

window.rlhfCommon = (function () {
  // An element with a class and text; text always goes in as textContent (never as HTML).
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // The token from the URL fragment (#token=...), kept in sessionStorage under `key` and removed from
  // the address bar; else the one kept earlier in this tab.
  function readToken(key) {
    const match = /(?:^#|&|#)token=([A-Za-z0-9_-]+)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(key, match[1]);
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem(key);
  }

  return { el: el, readToken: readToken };
})();
