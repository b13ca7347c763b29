// Live update: fetch the server-rendered board every poll interval and swap it in.
// Without this script the page is complete, only not live.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var board = document.getElementById("board");
  if (!live || !board) { return; }
  var every = parseInt(live.getAttribute("data-poll-ms"), 10) || 1000;
  live.hidden = false;
  function tick() {
    fetch("/dock/board", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (html) {
        board.innerHTML = html;
        live.textContent = "live";
        live.className = "live";
      })
      .catch(function () {
        live.textContent = "agent not answering; retrying";
        live.className = "live stale";
      })
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
