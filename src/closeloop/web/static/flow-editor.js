/* The approval-flow editor: add and remove branches, conditions, steps, approvers and CC rows
   (cloned from the page's <template>s, each new row with a fresh key in its field names), and
   show only the inputs the chosen approver kind needs. Saving is an ordinary form post. */
(function () {
  "use strict";
  const form = document.querySelector("[data-flow-editor]");
  if (!form) return;
  const LETTERS = { condition: "c", step: "s", approver: "a", cc: "cc" };
  // keys only order the rows: a new one takes a number above every key in the page
  let next = 1;
  form.querySelectorAll("[name]").forEach((field) => {
    (field.name.match(/\d+/g) || []).forEach((n) => { next = Math.max(next, Number(n) + 1); });
  });

  function add(kind, button) {
    const template = document.getElementById("tpl-" + kind);
    if (!template) return;
    let prefix, list;
    if (kind === "branch") {
      prefix = "b" + next++;
      list = form.querySelector('[data-list="branch"]');
    } else {
      const owner = button.closest("[data-prefix]");
      prefix = owner.dataset.prefix + "." + LETTERS[kind] + next++;
      list = owner.querySelector('[data-list="' + kind + '"]');
    }
    const holder = document.createElement("div");
    holder.innerHTML = template.innerHTML.split("__P__").join(prefix);
    const row = holder.firstElementChild;
    list.appendChild(row);
    const first = row.querySelector("input:not([type=hidden]), select");
    if (first) first.focus();
  }

  form.addEventListener("click", (event) => {
    const adder = event.target.closest("[data-add]");
    if (adder) {
      event.preventDefault();
      add(adder.dataset.add, adder);
      return;
    }
    const remover = event.target.closest("[data-remove]");
    if (remover) {
      event.preventDefault();
      const row = remover.closest("[data-row]");
      if (row) row.remove();
    }
  });
  form.addEventListener("change", (event) => {
    if (event.target.matches("[data-kind-select]")) {
      event.target.closest(".spec").dataset.kind = event.target.value;
    }
  });
})();
