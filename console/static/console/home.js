// The home's batch bars, kept moving without a reload: every few seconds the numbers of the
// batches shown (and of any new one in flight) are fetched from the console's small JSON route
// and written into their rows. Polling stops once no batch is in flight; texts are set with
// textContent, never as markup.
(function () {
  "use strict";

  var panel = document.getElementById("batches-in-flight");
  if (!panel) {
    return;
  }
  var url = panel.dataset.pollUrl;
  var every = parseInt(panel.dataset.pollMs, 10) || 2000;
  var body = panel.querySelector("tbody");
  var template = document.getElementById("batch-row-template");
  var box = panel.querySelector(".console-table-box");
  var empty = panel.querySelector(".console-empty");
  var FIELDS = ["name", "workflow", "percent", "processed", "total", "running", "failed", "status"];

  function rows() {
    return Array.prototype.slice.call(body.querySelectorAll("tr.batch-row"));
  }

  function rowFor(batch) {
    var row = body.querySelector('tr.batch-row[data-batch="' + batch.id + '"]');
    if (row) {
      return row;
    }
    row = template.content.querySelector("tr").cloneNode(true);
    row.dataset.batch = String(batch.id);
    body.insertBefore(row, body.firstChild);
    return row;
  }

  function show(batch) {
    var row = rowFor(batch);
    FIELDS.forEach(function (name) {
      var cell = row.querySelector('[data-field="' + name + '"]');
      if (cell) {
        // Stored codes (partially_completed) read as words, as the server draws them.
        cell.textContent = String(batch[name]).replace(/_/g, " ");
      }
    });
    row.querySelector('[data-field="link"]').setAttribute("href", batch.url);
    row.querySelector(".ok").style.width = batch.widths.successful + "%";
    row.querySelector(".failed").style.width = batch.widths.failed + "%";
    row.querySelector(".cancelled").style.width = batch.widths.cancelled + "%";
    row.querySelector(".console-bar").setAttribute("aria-valuenow", String(batch.percent));
    row.dataset.done = batch.done ? "1" : "0";
  }

  function poll() {
    var ids = rows().map(function (row) { return row.dataset.batch; }).join(",");
    fetch(url + "?ids=" + encodeURIComponent(ids), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (answer) {
        answer.batches.forEach(show);
        var any = rows().length > 0;
        box.hidden = !any;
        empty.hidden = any;
        panel.dataset.polling = answer.in_flight > 0 ? "on" : "off";
        if (answer.in_flight > 0) {
          window.setTimeout(poll, every);
        }
      })
      .catch(function () {
        // A refused or failed request (signed out, server restarting): the bars stay as they
        // were; the page's own reload shows the news.
        panel.dataset.polling = "off";
      });
  }

  var inFlight = rows().some(function (row) { return row.dataset.done !== "1"; });
  panel.dataset.polling = inFlight ? "on" : "off";
  if (inFlight) {
    window.setTimeout(poll, every);
  }
})();
