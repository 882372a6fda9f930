// The pages work without JavaScript; this only adds conveniences.
(function () {
  "use strict";
  // A link to a part of the page that sits in a closed <details> (a rule of the collapsed explanation)
  // opens the details around it, so the link lands on something visible.
  function reveal() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id && document.getElementById(id);
    if (!target) { return; }
    for (var el = target; el; el = el.parentElement) {
      if (el.tagName === "DETAILS") { el.open = true; }
    }
    target.scrollIntoView();
  }
  window.addEventListener("hashchange", reveal);
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
    // After a failed submission, screen-reader and keyboard users start at the list of problems.
    var summary = document.querySelector(".error-summary");
    if (summary) { summary.focus(); }
    reveal();
  });
})();
