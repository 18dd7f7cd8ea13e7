// Vigil dashboard, witness section: re-reads the server-rendered section
// on a clock, since a witness turns late or missing without any event
// arriving. Independent of dashboard.js.
(function () {
  'use strict';
  var every = 5000;

  function refreshWitnesses() {
    if (document.hidden) return; // a background tab costs the node nothing
    fetch(location.pathname, { credentials: 'same-origin', headers: { 'Accept': 'text/html' } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var cur = document.getElementById('witnesses'), next = doc.getElementById('witnesses');
        if (cur && next) cur.replaceWith(document.importNode(next, true));
      })
      .catch(function () { /* the next round retries */ });
  }

  if (!document.getElementById('witnesses')) return;
  setInterval(refreshWitnesses, every);
})();
