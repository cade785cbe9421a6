/* A batch's page: times in the browser's own time zone, a confirmation before a cancel, and
   the progress kept current by polling the batch's progress every 2 seconds until it ends;
   when rows have ended since the last poll, the rows table is read again in place. */
(function () {
  "use strict";

  var POLL_MS = 2000;

  function pad(number) {
    return String(number).padStart(2, "0");
  }

  // "2026-12-05 19:04:31": the moment in the browser's time zone, to the second.
  function localText(iso) {
    var moment = new Date(iso);
    if (isNaN(moment.getTime())) return null;
    return moment.getFullYear() + "-" + pad(moment.getMonth() + 1) + "-" + pad(moment.getDate()) +
      " " + pad(moment.getHours()) + ":" + pad(moment.getMinutes()) + ":" + pad(moment.getSeconds());
  }

  function localTime(iso) {
    var element = document.createElement("time");
    element.setAttribute("datetime", iso);
    element.textContent = localText(iso);
    element.title = "Your local time (" + Intl.DateTimeFormat().resolvedOptions().timeZone + ")";
    return element;
  }

  function localizeTimes(root) {
    root.querySelectorAll("time[data-local]").forEach(function (element) {
      var text = localText(element.getAttribute("datetime"));
      if (text) element.replaceWith(localTime(element.getAttribute("datetime")));
    });
  }

  function confirmBeforeSubmit(root) {
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  function setField(box, name, value) {
    box.querySelectorAll('[data-field="' + name + '"]').forEach(function (element) {
      element.textContent = value;
    });
  }

  function setTime(box, name, iso, empty) {
    box.querySelectorAll('[data-field="' + name + '"]').forEach(function (element) {
      element.textContent = "";
      if (iso) element.appendChild(localTime(iso));
      else element.textContent = empty;
    });
  }

  function show(box, state) {
    ["total", "processed", "successful", "failed", "cancelled", "running", "pending"].forEach(
      function (name) { setField(box, name, state[name]); }
    );
    setField(box, "percent", Number(state.percent).toFixed(1) + " %");
    setField(box, "rate", state.rows_per_second ? state.rows_per_second + " rows per second" : "no speed yet");
    box.querySelectorAll('[data-field="status"]').forEach(function (element) {
      element.textContent = state.status.replace(/_/g, " ");
      element.className = "batch-status status-" + state.status;
    });
    Object.keys(state.bar).forEach(function (segment) {
      box.querySelectorAll('[data-segment="' + segment + '"]').forEach(function (element) {
        element.style.width = state.bar[segment] + "%";
      });
    });
    setTime(box, "started_at", state.started_at, "not yet");
    setTime(box, "completed_at", state.completed_at, "not yet");
    var finish = box.querySelector('[data-field="finish"]');
    if (finish) {
      var moment = state.final ? state.completed_at : state.estimated_completion_at;
      finish.textContent = moment ? (state.final ? "Finished at " : "Should finish around ") :
        "The finish time shows once rows have run.";
      if (moment) finish.appendChild(localTime(moment));
    }
  }

  // The rows and the buttons as they are now (a failed row makes Retry useful, an ended
  // batch has no Cancel), read again from this very page (same filters, same page); if that
  // fails, a link says the table is older than the progress above it.
  var REFRESHED = ["batch-rows", "batch-actions"];

  function refreshRows(box) {
    function stale() {
      var note = box.querySelector(".batch-finished-note");
      if (note) note.hidden = false;
    }
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("the page answered " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        REFRESHED.forEach(function (id) {
          var now = fresh.getElementById(id);
          var shown = document.getElementById(id);
          if (!now || !shown) throw new Error("no #" + id + " in the page");
          shown.replaceWith(now);
        });
        confirmBeforeSubmit(document.getElementById("batch-actions"));
      })
      .catch(stale);
  }

  function poll(box) {
    var url = box.dataset.progressUrl;
    var processed = Number(box.dataset.processed);
    function next() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          // Signed out, or the batch is gone: polling again would not help.
          if (response.status >= 400 && response.status < 500) return null;
          if (!response.ok) throw new Error("progress answered " + response.status);
          return response.json();
        })
        .then(function (state) {
          if (state === null) return;
          show(box, state);
          // Rows ended since the last answer: the table shows them too.
          if (state.processed !== processed && !state.final) refreshRows(box);
          processed = state.processed;
          if (state.final) {
            box.dataset.final = "true";
            refreshRows(box);
            // An ended batch cannot be cancelled any more.
            box.querySelectorAll("[data-hide-when-final]").forEach(function (element) {
              element.hidden = true;
            });
            return;
          }
          window.setTimeout(next, POLL_MS);
        })
        // A missed answer (a restart, a network blip) only delays the next one.
        .catch(function () { window.setTimeout(next, POLL_MS); });
    }
    window.setTimeout(next, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    confirmBeforeSubmit(document);
    var box = document.getElementById("batch-progress");
    if (box && box.dataset.final === "false") poll(box);
  });
})();
