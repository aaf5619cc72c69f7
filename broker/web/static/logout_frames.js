// Front-channel logout: once every app's logout frame has loaded (or after a few seconds, for an app that does not
// answer), go on: submit the form or follow the link marked data-after-frames. Without JavaScript, the visible
// Continue does it.
(function () {
  var frames = document.querySelectorAll("iframe[data-front-channel]");
  var next = document.querySelector("[data-after-frames]");
  if (!next) { return; }
  var waiting = frames.length, done = false;
  function go() {
    if (done) { return; }
    done = true;
    if (next.tagName === "FORM") { next.submit(); } else { window.location.assign(next.href); }
  }
  frames.forEach(function (frame) {
    frame.addEventListener("load", function () { waiting -= 1; if (waiting <= 0) { go(); } });
  });
  if (waiting === 0) { go(); }
  window.setTimeout(go, 5000);
})();
