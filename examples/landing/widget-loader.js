// Loads the prefill widget from the service named in this page's address, so the example works
// whichever port `prefill demo` runs on: it prints links such as
//   http://127.0.0.1:8001/?service=http://127.0.0.1:8000#t=…
// A real landing page writes the widget's tag into its HTML instead:
//   <script src="https://prefill.example.com/widget.js" data-form="…" …></script>
(function () {
  "use strict";
  var service;
  try {
    service = new URL(new URLSearchParams(location.search).get("service") || "");
  } catch (error) {
    return; // No service named: the page's form works as it is, unfilled.
  }
  // Only a service on this machine: a page must never run a script from wherever a link says.
  var local = ["127.0.0.1", "localhost", "[::1]"].indexOf(service.hostname) >= 0;
  if (service.protocol !== "http:" || !local) return;
  var widget = document.createElement("script");
  widget.src = service.origin + "/widget.js";
  widget.referrerPolicy = "no-referrer";
  widget.dataset.form = "spring-summit-2027";
  widget.dataset.target = "#register";
  widget.dataset.contact = "#contact";
  widget.dataset.fields = "first_name:given_name,last_name:family_name";
  document.currentScript.after(widget);
})();
