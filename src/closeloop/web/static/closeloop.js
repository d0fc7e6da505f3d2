// Shared behaviour of every workspace page.
// A refused HTMX request (a problem the server names) is shown in #flash above the page; the next
// request clears it.
document.addEventListener("htmx:beforeRequest", function () {
  var flash = document.getElementById("flash");
  if (flash) { flash.innerHTML = ""; }
});
