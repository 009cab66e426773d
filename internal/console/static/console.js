// Progressive enhancement only: every page works without this file.
// It tells the server the browser's time zone at sign-in, so that times are
// shown in the operator's zone.
(function () {
  var tz = document.getElementById("tz");
  if (tz && window.Intl) {
    try { tz.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) {}
  }
})();
