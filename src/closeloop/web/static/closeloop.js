// Shared behaviour of every workspace page.
// A refused HTMX request (a problem the server names) is shown in #flash above the page; the next
// request clears it.
document.addEventListener("htmx:beforeRequest", function () {
  var flash = document.getElementById("flash");
  if (flash) { flash.innerHTML = ""; }
});

// The grouped navigation: on a tablet its headings are menus, closed until chosen, one open at a
// time, closed again by Escape or a click elsewhere; on a wide screen every heading starts open
// and a heading closed by hand stays closed (remembered in this browser).
(function () {
  var nav = document.querySelector("nav[data-nav]");
  if (!nav) { return; }
  var groups = Array.prototype.slice.call(nav.querySelectorAll("details.nav-group"));
  var narrow = window.matchMedia("(max-width: 900px)");
  var key = "closeloop.nav.closed";
  function closedByHand() {
    try { return JSON.parse(window.localStorage.getItem(key) || "[]"); } catch (e) { return []; }
  }
  function arrange() {
    var closed = closedByHand();
    groups.forEach(function (group) {
      group.open = narrow.matches ? false : (closed.indexOf(group.dataset.group) < 0 || group.hasAttribute("data-current"));
    });
  }
  arrange();
  if (narrow.addEventListener) { narrow.addEventListener("change", arrange); }
  groups.forEach(function (group) {
    group.addEventListener("toggle", function () {
      if (narrow.matches) {
        if (group.open) { groups.forEach(function (other) { if (other !== group) { other.open = false; } }); }
        return;
      }
      var closed = closedByHand().filter(function (name) { return name !== group.dataset.group; });
      if (!group.open) { closed.push(group.dataset.group); }
      try { window.localStorage.setItem(key, JSON.stringify(closed)); } catch (e) { /* private mode */ }
    });
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && narrow.matches) {
      groups.forEach(function (group) {
        if (group.open) { group.open = false; group.querySelector("summary").focus(); }
      });
    }
  });
  document.addEventListener("click", function (event) {
    if (narrow.matches && !nav.contains(event.target)) { groups.forEach(function (group) { group.open = false; }); }
  });
})();

// A long pick list (select[data-filterable], e.g. an owner among many colleagues) gets a box
// above it: typing narrows the options (by name or pinyin initials typed as letters in the
// label); Enter picks the first one left. A list that loaded only the most recent records
// (data-options-url) also asks the server for the matching ones it did not load, so every
// record the reader may see can be picked (协和, xiehe and bjxh all find 北京协和医院).
(function () {
  function attach(select) {
    if (select.dataset.filterReady) { return; }
    select.dataset.filterReady = "1";
    var box = document.createElement("input");
    box.type = "search";
    box.className = "select-filter";
    box.placeholder = select.dataset.filterLabel || "";
    box.setAttribute("aria-label", select.dataset.filterLabel || "");
    box.setAttribute("aria-controls", select.id);
    box.autocomplete = "off";
    select.parentNode.insertBefore(box, select);
    var url = select.dataset.optionsUrl;
    var timer = null;
    var asked = 0;
    function narrow(found) {
      var wanted = box.value.trim().toLowerCase();
      var first = null;
      Array.prototype.forEach.call(select.options, function (option) {
        var matches = !wanted || option.text.toLowerCase().indexOf(wanted) >= 0 || (found && found[option.value]);
        var keep = !option.value || option.selected || matches;
        option.hidden = !keep;
        if (keep && option.value && !first && wanted && matches) { first = option; }
      });
      box.dataset.first = first ? first.value : "";
    }
    function ask() {
      var wanted = box.value.trim();
      if (!url || !wanted) { return; }
      var ticket = ++asked;
      fetch(url + "?q=" + encodeURIComponent(wanted), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { items: [] }; })
        .then(function (answer) {
          if (ticket !== asked) { return; }
          var found = {};
          (answer.items || []).forEach(function (item) {
            found[item.value] = true;
            var known = Array.prototype.some.call(select.options, function (option) { return option.value === item.value; });
            if (!known) {
              var option = document.createElement("option");
              option.value = item.value;
              option.text = item.label;
              option.dataset.lookedUp = "1";
              select.appendChild(option);
            }
          });
          narrow(found);
        })
        .catch(function () { /* the loaded options stay usable */ });
    }
    box.addEventListener("input", function () {
      narrow(null);
      if (url) { clearTimeout(timer); timer = setTimeout(ask, 250); }
    });
    box.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        if (box.dataset.first) { select.value = box.dataset.first; select.dispatchEvent(new Event("change", { bubbles: true })); }
      }
    });
  }
  function scan(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("select[data-filterable]"), attach);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", function () { scan(); }); } else { scan(); }
  document.addEventListener("htmx:afterSwap", function (event) { scan(event.target); });
})();

// Phones: the search box's long hint would be cut off ("Search acc…"), so a narrow screen shows
// its short one; the ☰ menu closes on Escape or a click elsewhere.
(function () {
  var box = document.getElementById("top-search");
  var narrow = window.matchMedia("(max-width: 600px)");
  if (box && box.dataset.narrowPlaceholder) {
    var wide = box.placeholder;
    var fit = function () { box.placeholder = narrow.matches ? box.dataset.narrowPlaceholder : wide; };
    fit();
    if (narrow.addEventListener) { narrow.addEventListener("change", fit); }
  }
  var menu = document.getElementById("phone-menu");
  if (!menu) { return; }
  document.addEventListener("click", function (event) { if (menu.open && !menu.contains(event.target)) { menu.open = false; } });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && menu.open) { menu.open = false; menu.querySelector("summary").focus(); }
  });
})();
