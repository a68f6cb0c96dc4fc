// Completion poll for the wallet page: the only script of the interaction pages. Without it the
// page still works through its "Continue" link.
(function () {
  "use strict";
  var box = document.getElementById("wallet");
  if (!box) { return; }
  var statusUrl = box.getAttribute("data-status-url");
  var nextUrl = box.getAttribute("data-next-url");
  var tries = 0;
  function poll() {
    tries += 1;
    if (tries > 400) { return; }
    fetch(statusUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (body && body.done) { window.location.assign(nextUrl); return; }
        window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1500);
})();
