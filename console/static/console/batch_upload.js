/* The upload's drop zone: a file dropped on it goes into the form's file input (which works
   on its own without this script), its name is shown, and a file over the size limit is
   named at once instead of after it has been sent. */
(function () {
  "use strict";

  function megabytes(bytes) {
    return (bytes / (1024 * 1024)).toFixed(1);
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
    chosen.textContent = file.name + " (" + megabytes(file.size) + " MB)";
  }

  document.addEventListener("DOMContentLoaded", function () {
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
