// OISP dashboard glue (served from /static, no inline scripts): the live timeline over server-sent events.
// The stream only says "N new events"; the rows themselves come from /timeline/rows with the current
// filter, so live rows obey the filter exactly like the rest of the page.
(function () {
  "use strict";
  var MAX_ROWS = 1000;
  var source = null;
  var busy = false;
  var again = false;

  function rowsBody() {
    var body = document.getElementById("rows");
    return body && body.getAttribute("data-live") === "on" ? body : null;
  }

  function setStatus(state) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.className = "live-status " + state;
    el.textContent = state === "live" ? "live" : state === "off" ? "paused" : "reconnecting";
  }

  function rowsUrl(body) {
    var form = document.getElementById("filters");
    var params = form ? new URLSearchParams(new FormData(form)) : new URLSearchParams();
    params.set("after", body.getAttribute("data-cursor") || "0");
    return "/timeline/rows?" + params.toString();
  }

  // Keeps the "older" link pointing after the last row still on screen once old rows are trimmed.
  function trim(body) {
    var trimmed = false;
    while (body.rows.length > MAX_ROWS) {
      body.deleteRow(-1);
      trimmed = true;
    }
    var older = document.getElementById("older");
    var last = body.rows[body.rows.length - 1];
    if (trimmed && older && last && last.getAttribute("data-cursor")) {
      var url = new URL(older.getAttribute("href"), location.href);
      url.searchParams.set("before", last.getAttribute("data-cursor"));
      older.setAttribute("href", url.pathname + url.search);
    }
  }

  function pull() {
    var body = rowsBody();
    if (!body) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    fetch(rowsUrl(body), { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        var cursor = res.headers.get("X-Oisp-Cursor");
        return res.text().then(function (html) {
          if (body !== rowsBody()) return; // the filter changed meanwhile: the new table has its own cursor
          if (cursor) body.setAttribute("data-cursor", cursor);
          if (!html.trim()) return;
          var empty = document.getElementById("empty-row");
          if (empty) empty.remove();
          body.insertAdjacentHTML("afterbegin", html);
          trim(body);
          var count = document.getElementById("row-count");
          if (count) count.textContent = String(body.querySelectorAll("tr[data-cursor]").length);
        });
      })
      .catch(function () {
        setStatus("reconnecting");
      })
      .then(function () {
        busy = false;
        if (again) {
          again = false;
          pull();
        }
      });
  }

  function connect() {
    if (!rowsBody()) {
      if (source) {
        source.close();
        source = null;
      }
      setStatus("off");
      return;
    }
    if (source) return;
    source = new EventSource("/events/stream");
    source.addEventListener("hello", function () {
      setStatus("live");
      pull(); // after a reconnect, catch up on what arrived meanwhile
    });
    source.addEventListener("new", pull);
    source.onerror = function () {
      setStatus("reconnecting");
    };
  }

  // Whole rows are links; the time cell holds the real <a> for keyboards and middle-clicks.
  document.addEventListener("click", function (e) {
    var target = e.target;
    if (!(target instanceof Element) || target.closest("a, button, input, select, label")) return;
    var row = target.closest("tr[data-href]");
    if (row && !(window.getSelection && String(window.getSelection()).length)) location.href = row.getAttribute("data-href");
  });

  document.addEventListener("DOMContentLoaded", connect);
  document.addEventListener("htmx:afterSettle", connect);
  window.addEventListener("pageshow", connect); // back/forward cache restores the page without DOMContentLoaded
  window.addEventListener("pagehide", function () {
    if (source) source.close();
    source = null;
  });
})();
