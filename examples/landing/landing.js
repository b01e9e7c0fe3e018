// The example site has no backend: show what its form would send instead of posting it.
document.getElementById("register").addEventListener("submit", function (event) {
  event.preventDefault();
  var names = Array.from(new FormData(event.target).keys());
  var sent = document.getElementById("sent");
  sent.textContent = "A real site would now send " + names.join(", ") + " to its own backend.";
  sent.hidden = false;
});
