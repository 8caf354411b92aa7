// The tenant portal's opening (docs/CONSOLE.md): take the one-time code
// from the URL's fragment, remove it from the address bar (and history),
// exchange it for a portal session, then show the hooks. A file of its
// own: the Content-Security-Policy allows no inline script.
(function () {
  "use strict";
  var m = /^#code=([0-9a-f]{64})$/.exec(location.hash);
  history.replaceState(null, "", location.pathname);
  var out = document.getElementById("portal-status");
  if (!m) {
    out.textContent = "This portal link has no code. Ask the application for a new link.";
    return;
  }
  fetch("/portal/session", {
    method: "POST",
    credentials: "same-origin",
    headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: "code=" + m[1]
  }).then(function (res) {
    if (res.ok) {
      location.replace("/hooks");
      return;
    }
    return res.text().then(function (t) { out.textContent = t; });
  }).catch(function () {
    out.textContent = "The portal could not be opened; try again.";
  });
})();
