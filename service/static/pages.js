// The pages work without JavaScript; this only adds conveniences.
(function () {
  "use strict";
  // Printed answers and documents show every rule's explanation, not just the ones left open.
  var opened = [];
  window.addEventListener("beforeprint", function () {
    document.querySelectorAll("details:not([open])").forEach(function (d) {
      d.open = true;
      opened.push(d);
    });
  });
  window.addEventListener("afterprint", function () {
    opened.forEach(function (d) { d.open = false; });
    opened = [];
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
    // After a failed submission, screen-reader and keyboard users start at the list of problems.
    var summary = document.querySelector(".error-summary");
    if (summary) { summary.focus(); }
  });
})();
