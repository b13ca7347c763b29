// The live feed: ask for movements after the newest one shown, once a second, and put
// them on top. Without this script the page is complete, only not live.
(function () {
  "use strict";
  var live = document.getElementById("feed-live");
  var rows = document.getElementById("feed-rows");
  if (!live || !rows) { return; }
  var since = live.getAttribute("data-since") || "0";
  var every = parseInt(live.getAttribute("data-poll-ms"), 10) || 1000;
  live.hidden = false;
  function tick() {
    fetch("/dash/feed?since=" + encodeURIComponent(since), { cache: "no-store", credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { live.textContent = "logged out"; live.className = "live stale"; return null; }
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        since = r.headers.get("X-Next-Since") || since;
        return r.text();
      })
      .then(function (html) {
        if (html === null) { return false; }
        if (html.trim()) {
          var body = document.createElement("tbody");
          body.innerHTML = html;
          var fresh = Array.prototype.slice.call(body.children);
          for (var i = fresh.length - 1; i >= 0; i--) {
            fresh[i].className += " fresh";
            rows.insertBefore(fresh[i], rows.firstChild);
          }
          while (rows.children.length > 200) { rows.removeChild(rows.lastChild); }
        }
        live.textContent = "live";
        live.className = "live";
        return true;
      })
      .catch(function () { live.textContent = "ledger not answering; retrying"; live.className = "live stale"; return true; })
      .then(function (again) { if (again) { setTimeout(tick, every); } });
  }
  setTimeout(tick, every);
})();
