// supportbot review dashboard: small progressive enhancements; every page works without it.
(function () {
  "use strict";

  // Times are rendered in UTC on the server; show them in the operator's own time zone.
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when.getTime()) && el.getAttribute("datetime").indexOf("T") > 0) {
      el.title = el.textContent;
      el.textContent = format.format(when);
    }
  });

  // One click, one action: a second click while the first is sent would post it twice.
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        window.setTimeout(function () { button.disabled = true; }, 0);
      });
    });
  });

  // Opening "Edit & approve" or "Reject" puts the cursor in its text box.
  document.querySelectorAll("details.action").forEach(function (details) {
    details.addEventListener("toggle", function () {
      if (!details.open) return;
      var box = details.querySelector("textarea, input[type=text]");
      if (box) {
        box.focus();
        if (box.setSelectionRange && box.value) box.setSelectionRange(box.value.length, box.value.length);
      }
    });
  });

  // "Select the N likely / none" for the questions offered after a correction (hidden
  // without this). Only the "likely the same question" group can be selected at once: the
  // less alike ones are often another topic's, and each ticked gets the corrected answer.
  document.querySelectorAll(".select-all").forEach(function (bar) {
    var form = bar.closest("form");
    bar.hidden = false;
    bar.querySelectorAll("button[data-select]").forEach(function (button) {
      button.addEventListener("click", function () {
        var group = button.getAttribute("data-select");
        var scope = group === "none" ? form : document.getElementById(group);
        scope.querySelectorAll("input[type=checkbox][name=question]").forEach(function (box) {
          box.checked = group !== "none";
        });
      });
    });
  });
})();
