/* prefill: tells the service that a person has this page open, so the campaign's funnel counts
   an open. Scanners that only fetch the page never run it. Sends the page's own link token, no
   cookie, no Referer; nothing else is read or stored. */
(function () {
  "use strict";
  var DWELL_MS = 1000;
  var script = document.currentScript;
  var token = new URLSearchParams(location.search).get("t");
  if (!script || !token || !window.fetch) return;
  var timer = null;
  var sent = false;

  function send() {
    if (sent || document.visibilityState !== "visible") return;
    sent = true;
    var body = new URLSearchParams({ t: token, purpose: script.dataset.purpose || "form" });
    fetch("/seen", {
      method: "POST",
      body: body,
      credentials: "omit",
      keepalive: true,
      referrerPolicy: "no-referrer",
    }).catch(function () {});
  }

  // Once the page has been in view for a moment: not for a tab opened in the background
  // and closed unseen, nor for a sandbox that renders the page and drops it at once.
  function schedule() {
    clearTimeout(timer);
    if (document.visibilityState === "visible") timer = setTimeout(send, DWELL_MS);
  }
  document.addEventListener("visibilitychange", schedule);
  schedule();
})();
