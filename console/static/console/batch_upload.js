/* The upload's steps in the browser. Choosing: a file dropped on the zone goes into the form's
   file input (which works on its own without this script), its name and size are shown, and
   a file over the size limit is named at once instead of after it has been sent. Mapping: the
   required fields no column fills are named again as the selects change. */
(function () {
  "use strict";

  function megabytes(bytes) {
    return (bytes / (1024 * 1024)).toFixed(1);
  }

  function size(bytes) {
    return bytes < 1024 * 1024 ? Math.max(1, Math.round(bytes / 1024)) + " KB" : megabytes(bytes) + " MB";
  }

  function describe(zone, input) {
    var chosen = zone.querySelector(".upload-chosen");
    var file = input.files && input.files[0];
    input.setCustomValidity("");
    if (!file) {
      chosen.textContent = "";
      return;
    }
    var limit = Number(zone.dataset.maxBytes);
    if (limit && file.size > limit) {
      var message = file.name + " is " + megabytes(file.size) + " MB; at most " +
        zone.dataset.maxMb + " MB are accepted.";
      input.setCustomValidity(message);
      chosen.textContent = message;
      return;
    }
    chosen.textContent = file.name + " (" + size(file.size) + ")";
  }

  function showUnfilled(callout, required, selects) {
    var chosen = new Set(selects.map(function (select) { return select.value; }));
    var missing = required.filter(function (field) { return !chosen.has(field.name); });
    callout.textContent = "";
    callout.classList.toggle("fine", missing.length === 0);
    if (!missing.length) {
      callout.textContent = "Every required field has a column.";
      return;
    }
    callout.append("No column fills these required fields yet: ");
    missing.forEach(function (field, index) {
      var name = document.createElement("strong");
      name.textContent = field.label;
      callout.append(name, index < missing.length - 1 ? ", " : ". ");
    });
    callout.append("Choose a column for each, or add the column to the file.");
  }

  function watchMapping() {
    var callout = document.getElementById("upload-unfilled");
    var source = document.getElementById("upload-required-fields");
    if (!callout || !source) return;
    var required = JSON.parse(source.textContent);
    var selects = Array.from(document.querySelectorAll("select[data-column]"));
    selects.forEach(function (select) {
      select.addEventListener("change", function () { showUnfilled(callout, required, selects); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    watchMapping();
    var zone = document.getElementById("upload-drop");
    if (!zone) return;
    var input = zone.querySelector("input[type=file]");
    input.addEventListener("change", function () { describe(zone, input); });
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "dragend"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("dragging");
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      describe(zone, input);
    });
  });
})();
