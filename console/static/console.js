// ddi-lite console: the few things a server-rendered page cannot do by itself. Plain
// JavaScript, no library, nothing from another host; every page works without it.
(function () {
  "use strict";
  var LIVE_SECONDS = 5;

  // A part of the page the server renders again on request (data-live: its URL).
  function keepLive(element) {
    var shown = null;
    function refresh() {
      var request = new XMLHttpRequest();
      request.open("GET", element.getAttribute("data-live"));
      request.onload = function () {
        if (request.status === 200) {
          // Only a change is written: a screen reader announces each one (aria-live).
          if (request.responseText !== shown) {
            shown = request.responseText;
            element.innerHTML = shown;
          }
          window.setTimeout(refresh, LIVE_SECONDS * 1000);
        } else if (request.status === 401) {
          window.location.reload();  // the session ended: the sign-in page
        }
      };
      request.onerror = function () { window.setTimeout(refresh, LIVE_SECONDS * 1000); };
      request.send();
    }
    window.setTimeout(refresh, LIVE_SECONDS * 1000);
  }

  // Uploads one file after the other, each streamed as its own request, with progress.
  function uploadWithProgress(form) {
    var input = form.querySelector("input[type=file]");
    var bar = form.querySelector("progress");
    var output = form.querySelector("output");
    var list = document.getElementById("artifacts");
    input.multiple = true;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var files = Array.prototype.slice.call(input.files);
      var done = 0;
      bar.hidden = false;
      function next() {
        if (done === files.length) {
          output.textContent = files.length + " file(s) uploaded.";
          input.value = "";
          return;
        }
        var file = files[done];
        var body = new FormData();
        body.append("file", file, file.name);
        var request = new XMLHttpRequest();
        request.open("POST", form.action);
        request.setRequestHeader("Accept", "application/json");
        request.upload.onprogress = function (progress) {
          if (progress.lengthComputable) {
            bar.value = Math.floor(100 * progress.loaded / progress.total);
            output.textContent = file.name + ": " + bar.value + " %";
          }
        };
        request.onload = function () {
          if (request.status === 201) {
            done += 1;
            bar.value = 100;
            refreshList();
            next();
          } else {
            var message = "HTTP " + request.status;
            try { message = JSON.parse(request.responseText).message; } catch (ignored) {}
            output.textContent = file.name + ": " + message;
          }
        };
        request.onerror = function () { output.textContent = file.name + ": the upload broke off."; };
        output.textContent = file.name + ": 0 %";
        bar.value = 0;
        request.send(body);
      }
      next();
    });
    function refreshList() {
      var request = new XMLHttpRequest();
      request.open("GET", list.getAttribute("data-refresh"));
      request.onload = function () {
        if (request.status === 200) { list.innerHTML = request.responseText; }
      };
      request.send();
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-live]"), keepLive);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-upload]"),
                                 uploadWithProgress);
  });
})();
