// Pochta's only script: progressive enhancements. Every page works without it.
"use strict";

(function () {
  // -- fetch progress: poll GET /fetch/<job> and move the bar, then show the new mail.
  function followFetch(section) {
    var url = section.getAttribute("data-poll-url");
    var bar = section.querySelector("progress");
    var count = section.querySelector(".fetch-count");
    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status); }
          return response.json();
        })
        .then(function (job) {
          if (job.total) {
            bar.max = job.total;
            bar.value = job.done;
          }
          if (count) {
            count.textContent = (count.getAttribute("data-format") || "{done} / {total}")
              .replace("{done}", job.done).replace("{total}", job.total);
          }
          if (job.state === "running") {
            window.setTimeout(poll, 600);
          } else {
            // Reload once the job is over: the page then lists the new messages.
            window.location.reload();
          }
        })
        .catch(function () {
          window.setTimeout(poll, 2000);
        });
    }
    window.setTimeout(poll, 300);
  }

  // -- compose: refuse oversized attachments before uploading anything.
  function guardUploads(form) {
    var limit = parseInt(form.getAttribute("data-max-bytes"), 10);
    var inputs = form.querySelectorAll("input[type=file]");
    var note = form.querySelector(".upload-note");
    if (!limit || !inputs.length) { return; }
    function total() {
      var sum = 0;
      inputs.forEach(function (input) {
        Array.prototype.forEach.call(input.files || [], function (file) { sum += file.size; });
      });
      return sum;
    }
    function check() {
      var tooBig = total() > limit;
      if (note) {
        note.hidden = !tooBig;
      }
      inputs.forEach(function (input) {
        input.setAttribute("aria-invalid", tooBig ? "true" : "false");
      });
      return !tooBig;
    }
    inputs.forEach(function (input) { input.addEventListener("change", check); });
    form.addEventListener("submit", function (event) {
      if (!check()) {
        event.preventDefault();
        if (note) { note.focus(); }
      }
    });
  }

  // -- buttons that ask first (delete): the form still works without the question.
  function confirmFirst(form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var section = document.getElementById("fetch-status");
    if (section && section.getAttribute("data-state") === "running") {
      followFetch(section);
    }
    document.querySelectorAll("form[data-max-bytes]").forEach(guardUploads);
    document.querySelectorAll("form[data-confirm]").forEach(confirmFirst);
  });
})();
