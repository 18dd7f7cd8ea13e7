// Vigil dashboard: follows /v1/events and swaps in the server-rendered
// sections that changed. No build step; plain browser JavaScript.
(function () {
  'use strict';
  var conn = document.getElementById('conn');
  // The witness section (witnesses.js) is also re-read on its own clock,
  // for the lags that grow with no event.
  var sections = ['evidence', 'summary', 'logs', 'peers', 'witnesses'];
  var pending = null;

  function setStatus(text, live) {
    conn.textContent = text;
    conn.className = live ? 'conn live' : 'conn';
  }

  function ago(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + 's ago';
    if (s < 3600) return Math.floor(s / 60) + 'm ago';
    if (s < 172800) return Math.floor(s / 3600) + 'h ago';
    return Math.floor(s / 86400) + 'd ago';
  }

  // tick ages each log's freshness on this browser's clock: the server
  // renders the age at render time and the thresholds, so a log turns late
  // and stale here even when no event arrives.
  function tick() {
    var now = Date.now();
    var els = document.querySelectorAll('.fresh[data-age]');
    var fresh = 0;
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (!el.vigilT0) el.vigilT0 = now;
      var age = parseFloat(el.getAttribute('data-age')) + (now - el.vigilT0) / 1000;
      var late = parseFloat(el.getAttribute('data-late'));
      var stale = parseFloat(el.getAttribute('data-stale'));
      var st = age > stale ? 'stale' : age > late ? 'late' : 'fresh';
      if (st === 'fresh') fresh++;
      if (el.getAttribute('data-state') !== st) {
        el.setAttribute('data-state', st);
        el.className = 'fresh ' + st;
        el.querySelector('.fstate').textContent = st;
      }
      if (!el.hasAttribute('data-never')) el.querySelector('.fage').textContent = ago(age);
    }
    var fc = document.getElementById('fresh-count');
    if (fc && els.length) fc.textContent = fresh;
  }

  // refresh re-renders the page on the server and replaces each section,
  // batching bursts of events into one request.
  function refresh() {
    if (pending) return;
    pending = setTimeout(function () {
      fetch(location.pathname, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, 'text/html');
          sections.forEach(function (id) {
            var cur = document.getElementById(id), next = doc.getElementById(id);
            if (cur && next) cur.replaceWith(document.importNode(next, true));
          });
          tick();
        })
        .catch(function () { setStatus('Update failed; retrying…', false); })
        .then(function () { pending = null; });
    }, 150);
  }

  if (!window.EventSource) {
    setStatus('Live updates are not supported by this browser; reload to refresh.', false);
    return;
  }
  var last = document.body.getAttribute('data-last-event-id') || '';
  var es = new EventSource('/v1/events' + (last ? '?last_event_id=' + encodeURIComponent(last) : ''));
  es.onopen = function () { setStatus('Live', true); };
  es.onerror = function () { setStatus('Reconnecting…', false); };
  ['checkpoint', 'evidence', 'peers', 'suspicion', 'freshness', 'witness', 'reset'].forEach(function (t) {
    es.addEventListener(t, refresh);
  });
  tick();
  setInterval(tick, 1000);
})();
