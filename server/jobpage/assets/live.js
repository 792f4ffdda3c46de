// Follows the page's event stream. Every fragment it inserts was rendered and
// escaped by the server's html/template; nothing here builds HTML from text.
(function () {
  "use strict";
  var src = document.body.dataset.events, live = document.getElementById("live");
  if (!src || !window.EventSource) return;
  var es = new EventSource(src);
  function on(name, f) { es.addEventListener(name, function (e) { f(JSON.parse(e.data)); }); }
  es.onopen = function () { live.textContent = "live"; live.className = "live on"; };
  es.onerror = function () { live.textContent = "reconnecting…"; live.className = "live off"; };
  on("upsert", function (m) {
    var el = document.getElementById(m.id), parent = document.getElementById(m.parent);
    if (el) el.outerHTML = m.html; else if (parent) parent.insertAdjacentHTML("beforeend", m.html);
  });
  on("remove", function (m) { var el = document.getElementById(m.id); if (el) el.remove(); });
  on("append", function (m) {
    var p = document.getElementById(m.parent);
    if (!p) return;
    var atEnd = p.scrollTop + p.clientHeight >= p.scrollHeight - 8;
    p.insertAdjacentHTML("beforeend", m.html);
    while (p.childElementCount > m.max) p.firstElementChild.remove();
    if (atEnd) p.scrollTop = p.scrollHeight;
  });
})();
