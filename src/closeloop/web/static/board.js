// The pipeline board: drag a card with SortableJS, or focus it and press Enter (or its "Move…"
// button) to choose the stage in a dialog. Both submit the same form (#move-form) to
// POST /pipeline/move through HTMX, which sends the session's X-CSRF-Token header; the server
// answers with the whole board re-rendered, so counts and sums always come from the database.
(function () {
  "use strict";

  var STAGES = ["prospecting", "qualification", "proposal", "negotiation", "won", "lost"];
  var REFUSED = [400, 404, 409, 412, 422];
  var dialog = document.getElementById("move-dialog");
  var form = document.getElementById("move-form");
  if (!dialog || !form) { return; }
  var stageSelect = form.querySelector("select[name=stage]");
  var reasonBox = form.querySelector("[data-lost-reason]");
  var reason = form.querySelector("textarea[name=lost_reason]");
  var dealName = dialog.querySelector("[data-deal-name]");
  var fromDrag = false;
  var focusAfterSwap = null;

  function nextStage(stage) {
    var index = STAGES.indexOf(stage);
    return STAGES[(index + 1) % STAGES.length];
  }

  function showReason() {
    var lost = stageSelect.value === "lost";
    reasonBox.hidden = !lost;
    reason.required = lost;
  }

  function fill(card, stage) {
    form.elements.opportunity_id.value = card.dataset.id;
    form.elements.version.value = card.dataset.version;
    stageSelect.value = stage;
    reason.value = "";
    showReason();
    focusAfterSwap = card.dataset.id;
  }

  function reloadBoard() {
    var filters = document.getElementById("board-filters");
    var query = filters ? new URLSearchParams(new FormData(filters)).toString() : "";
    htmx.ajax("GET", "/pipeline" + (query ? "?" + query : ""), { target: "#board", swap: "outerHTML" });
  }

  function openDialog(card, stage, dragged) {
    fill(card, stage);
    fromDrag = dragged;
    dealName.textContent = card.dataset.name;
    dialog.showModal();
    (stage === "lost" ? reason : stageSelect).focus();
  }

  function closeDialog(moved) {
    if (dialog.open) { dialog.close(); }
    if (fromDrag && !moved) { reloadBoard(); }  // the card goes back where the server has it
    fromDrag = false;
  }

  function submitMove(card, stage) {
    fill(card, stage);
    form.requestSubmit();
  }

  dialog.querySelector("[data-cancel]").addEventListener("click", function () { closeDialog(false); });
  dialog.addEventListener("cancel", function (event) { event.preventDefault(); closeDialog(false); });
  stageSelect.addEventListener("change", showReason);
  form.addEventListener("htmx:afterRequest", function () { closeDialog(true); });

  // a refused move comes back as the board with its message on top: show it, not an error
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "board" && REFUSED.indexOf(event.detail.xhr.status) >= 0) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "board") { return; }
    if (dialog.open) { fromDrag = false; closeDialog(true); }  // before focusing: closing moves focus
    if (!focusAfterSwap) { return; }
    var card = document.querySelector('#board .deal[data-id="' + focusAfterSwap + '"]');
    focusAfterSwap = null;
    var message = document.querySelector("#board .board-message");
    if (message) { message.setAttribute("tabindex", "-1"); message.focus(); }
    else if (card) { card.focus(); }
  });

  function cardsOf(list) { return Array.prototype.slice.call(list.querySelectorAll(".deal")); }

  function onKey(event) {
    var card = event.target.closest ? event.target.closest(".deal") : null;
    if (!card || event.target !== card) { return; }
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      openDialog(card, nextStage(card.dataset.stage), false);
      return;
    }
    var list = card.parentElement;
    var cards = cardsOf(list);
    var index = cards.indexOf(card);
    var goal = null;
    if (event.key === "ArrowDown") { goal = cards[index + 1]; }
    else if (event.key === "ArrowUp") { goal = cards[index - 1]; }
    else if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      var lists = Array.prototype.slice.call(document.querySelectorAll("#board ol.cards"));
      var step = event.key === "ArrowRight" ? 1 : -1;
      for (var at = lists.indexOf(list) + step; at >= 0 && at < lists.length && !goal; at += step) {
        var others = cardsOf(lists[at]);
        goal = others[Math.min(index, others.length - 1)] || null;
      }
    }
    if (goal) { event.preventDefault(); goal.focus(); }
  }

  function setUp(root) {
    var board = root.id === "board" ? root : root.querySelector && root.querySelector("#board");
    if (!board || board.dataset.canMove !== "true" || typeof Sortable === "undefined") { return; }
    board.querySelectorAll("ol.cards").forEach(function (list) {
      if (list.dataset.sortable) { return; }
      list.dataset.sortable = "true";
      Sortable.create(list, {
        group: "pipeline",
        sort: false,
        draggable: ".deal",
        filter: ".more, .column-empty, button",
        preventOnFilter: false,
        animation: 150,
        // pointer events rather than the browser's drag-and-drop: the same on touch screens and
        // mice, and a card can be dropped anywhere in a column's list
        forceFallback: true,
        fallbackTolerance: 4,
        ghostClass: "deal-ghost",
        chosenClass: "deal-chosen",
        onEnd: function (event) {
          if (event.to === event.from) { return; }
          var item = event.item;
          var stage = event.to.dataset.stage;
          // after SortableJS has finished the drop: a modal dialog or a swapped board in the
          // middle of it would leave the next drag unable to start
          window.setTimeout(function () {
            if (stage === "lost") { openDialog(item, "lost", true); }
            else { submitMove(item, stage); }
          }, 0);
        }
      });
    });
  }

  document.addEventListener("keydown", onKey);
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-move]") : null;
    if (!button) { return; }
    var card = button.closest(".deal");
    openDialog(card, nextStage(card.dataset.stage), false);
  });
  htmx.onLoad(setUp);
  setUp(document);
})();
