/* The formula editor: autocomplete of fields, lists of related records, functions and keywords
   (from the vocabulary the page embeds: the formula schema less what the reader may not read), a
   signature hint for the function the caret is in, and the error's position underlined in the
   text. The check and the preview are HTMX requests of the form (debounced there). */
(function () {
  "use strict";
  const root = document.querySelector("[data-formula-editor]");
  if (!root) return;
  const area = root.querySelector("textarea");
  const backdrop = root.querySelector(".fe-backdrop");
  const list = root.querySelector(".fe-suggestions");
  const hint = document.getElementById("fe-hint");
  const recordType = document.getElementById("fe-record-type");
  const sample = document.getElementById("fe-sample");
  const vocabularies = JSON.parse(document.getElementById("fe-vocabulary").textContent);
  const texts = JSON.parse(document.getElementById("fe-texts").textContent);
  const AGGREGATES = new Set(["SUM", "AVG", "COUNT", "MIN", "MAX"]);
  const MAX_ITEMS = 10;
  let items = [];
  let active = 0;
  let replace = null; // [start, end] of the text a chosen suggestion replaces
  let mark = null; // [start, end] of the error shown
  let inserting = false; // the input event of an accepted suggestion opens no new list

  const vocabulary = () => vocabularies[recordType.value] || { fields: [], relations: [], functions: [], keywords: [] };

  // --- the backdrop: the same text, with the error's span marked ---------------------------------
  function escapeHtml(text) {
    return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  }
  function paint() {
    const text = area.value;
    if (!mark) {
      backdrop.innerHTML = escapeHtml(text) + "\n";
    } else {
      const [start, end] = mark;
      const bad = end > start ? text.slice(start, end) : " ";
      const gap = end > start ? "" : " fe-gap";
      backdrop.innerHTML =
        escapeHtml(text.slice(0, start)) +
        '<mark class="fe-bad' + gap + '">' + escapeHtml(bad) + "</mark>" +
        escapeHtml(text.slice(end > start ? end : start)) + "\n";
    }
    backdrop.scrollTop = area.scrollTop;
  }

  // --- where the caret is -------------------------------------------------------------------------
  /** Open calls before the caret, innermost last: {name, start} (texts in quotes skipped). */
  function openCalls(before) {
    const stack = [];
    let quote = null;
    for (let i = 0; i < before.length; i++) {
      const c = before[i];
      if (quote) {
        if (c === "\\") i++;
        else if (c === quote) quote = null;
        continue;
      }
      if (c === '"' || c === "'") quote = c;
      else if (c === "(") {
        const name = /([A-Za-z_][A-Za-z0-9_]*)\s*$/.exec(before.slice(0, i));
        stack.push({ name: name ? name[1].toUpperCase() : "", start: i });
      } else if (c === ")") stack.pop();
    }
    return { stack, inText: quote !== null };
  }
  /** The list of related records whose WHERE the caret is in, if any. */
  function whereRelation(before, stack) {
    for (let k = stack.length - 1; k >= 0; k--) {
      const frame = stack[k];
      if (!AGGREGATES.has(frame.name)) continue;
      const inner = before.slice(frame.start + 1);
      const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)(\.[A-Za-z_][A-Za-z0-9_]*)?\s+WHERE\b/i.exec(inner);
      if (m) return vocabulary().relations.find((r) => r.name === m[1]) || null;
    }
    return null;
  }

  // --- suggestions --------------------------------------------------------------------------------
  function candidates(forced) {
    const caret = area.selectionStart;
    if (caret !== area.selectionEnd) return [];
    const before = area.value.slice(0, caret);
    const { stack, inText } = openCalls(before);
    if (inText) return [];
    const words = vocabulary();
    const dotted = /([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)?$/.exec(before);
    if (dotted) {
      const relation = words.relations.find((r) => r.name === dotted[1]);
      if (!relation) return [];
      const prefix = dotted[2] || "";
      replace = [caret - prefix.length, caret];
      return rank(relation.fields.map((f) => ({ kind: "field", name: f.name, insert: f.name, detail: f.label, type: f.type })), prefix);
    }
    const plain = /(^|[^A-Za-z0-9_.])([A-Za-z_][A-Za-z0-9_]*)$/.exec(before);
    const prefix = plain ? plain[2] : "";
    if (!prefix && !forced) return [];
    replace = [caret - prefix.length, caret];
    const scoped = whereRelation(before, stack);
    let options = [];
    if (scoped) {
      options = scoped.fields.map((f) => ({ kind: "field", name: f.name, insert: f.name, detail: f.label, type: f.type }));
      if (scoped.days_ago) options.push({ kind: "field", name: "days_ago", insert: "days_ago", detail: texts.days_ago, type: "number" });
    } else {
      options = words.fields.map((f) => ({ kind: "field", name: f.name, insert: f.name, detail: f.label, type: f.type }));
      options = options.concat(words.relations.map((r) => ({ kind: "list", name: r.name, insert: r.name, detail: r.label })));
    }
    options = options.concat(
      words.functions
        .filter((f) => !(scoped && AGGREGATES.has(f.name) && f.aggregate && f.name !== "MIN" && f.name !== "MAX"))
        .map((f) => ({ kind: "function", name: f.name, insert: f.name === "TODAY" ? "TODAY()" : f.name + "(", detail: f.signature, about: f.label }))
    );
    options = options.concat(words.keywords.map((k) => ({ kind: "keyword", name: k, insert: k + " ", detail: "" })));
    return rank(options, prefix);
  }
  function rank(options, prefix) {
    const low = prefix.toLowerCase();
    const starts = [];
    const contains = [];
    for (const option of options) {
      const name = option.name.toLowerCase();
      if (name === low && option.kind !== "function") continue; // already typed in full
      if (name.startsWith(low)) starts.push(option);
      else if (low.length >= 2 && (name.includes(low) || (option.detail || "").toLowerCase().includes(low))) contains.push(option);
    }
    return starts.concat(contains).slice(0, MAX_ITEMS).map((o) => ({ ...o, prefix }));
  }
  function show(forced) {
    items = candidates(forced);
    active = 0;
    if (!items.length) return close();
    list.innerHTML = "";
    items.forEach((item, index) => {
      const li = document.createElement("li");
      li.id = "fe-option-" + index;
      li.setAttribute("role", "option");
      li.className = "fe-option fe-" + item.kind;
      const name = document.createElement("span");
      name.className = "fe-name";
      const typed = item.name.toLowerCase().startsWith(item.prefix.toLowerCase()) ? item.prefix.length : 0;
      const strong = document.createElement("b");
      strong.textContent = item.name.slice(0, typed);
      name.append(strong, item.name.slice(typed));
      const kind = document.createElement("span");
      kind.className = "fe-kind";
      kind.textContent = item.kind === "field" ? item.detail : texts[item.kind];
      const detail = document.createElement("span");
      detail.className = "fe-detail";
      detail.textContent = item.kind === "field" ? "" : item.kind === "function" ? item.detail + " — " + item.about : item.detail;
      li.append(name, detail, kind);
      li.addEventListener("mousedown", (event) => {
        event.preventDefault();
        active = index;
        accept();
      });
      list.append(li);
    });
    place();
    list.hidden = false;
    area.setAttribute("aria-expanded", "true");
    highlight();
  }
  function highlight() {
    list.querySelectorAll("[role=option]").forEach((li, index) => li.setAttribute("aria-selected", String(index === active)));
    const current = list.children[active];
    if (current) {
      area.setAttribute("aria-activedescendant", current.id);
      current.scrollIntoView({ block: "nearest" });
    }
  }
  function close() {
    items = [];
    list.hidden = true;
    area.setAttribute("aria-expanded", "false");
    area.removeAttribute("aria-activedescendant");
  }
  function accept() {
    const item = items[active];
    if (!item || !replace) return close();
    const [start, end] = replace;
    area.setRangeText(item.insert, start, end, "end");
    close();
    inserting = true;
    area.dispatchEvent(new Event("input", { bubbles: true }));
    inserting = false;
    area.focus();
  }

  /** Put the list under the caret (a mirror of the textarea measures where the caret is). */
  function place() {
    const style = getComputedStyle(area);
    const mirror = document.createElement("div");
    for (const p of ["fontFamily", "fontSize", "fontWeight", "lineHeight", "letterSpacing", "paddingTop", "paddingLeft", "paddingRight", "borderTopWidth", "borderLeftWidth", "whiteSpace", "wordWrap", "tabSize"]) {
      mirror.style[p] = style[p];
    }
    mirror.style.position = "absolute";
    mirror.style.visibility = "hidden";
    mirror.style.whiteSpace = "pre-wrap";
    mirror.style.width = area.clientWidth + "px";
    mirror.textContent = area.value.slice(0, area.selectionStart);
    const caret = document.createElement("span");
    caret.textContent = "\u200b";
    mirror.append(caret);
    root.append(mirror);
    const top = caret.offsetTop + parseFloat(style.lineHeight || "20") - area.scrollTop + 6;
    const left = Math.min(caret.offsetLeft, Math.max(0, area.clientWidth - 360));
    mirror.remove();
    list.style.top = top + "px";
    list.style.left = left + "px";
  }

  // --- the signature of the function the caret is in ----------------------------------------------
  function signature() {
    const before = area.value.slice(0, area.selectionStart);
    const { stack } = openCalls(before);
    const frame = stack[stack.length - 1];
    const fn = frame && vocabulary().functions.find((f) => f.name === frame.name);
    hint.textContent = "";
    if (!fn) return;
    const code = document.createElement("code");
    code.textContent = fn.signature;
    hint.append(code, " " + fn.label);
  }

  // --- events -------------------------------------------------------------------------------------
  area.addEventListener("input", () => {
    mark = null;
    paint();
    if (inserting) close();
    else show(false);
    signature();
  });
  area.addEventListener("keydown", (event) => {
    if (event.key === " " && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      show(true);
      return;
    }
    if (list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      active = (active + (event.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
      highlight();
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      accept();
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  area.addEventListener("click", () => {
    close();
    signature();
  });
  area.addEventListener("keyup", (event) => {
    if (event.key === "ArrowLeft" || event.key === "ArrowRight" || event.key === "Home" || event.key === "End") signature();
  });
  area.addEventListener("blur", () => setTimeout(close, 120));
  area.addEventListener("scroll", () => {
    backdrop.scrollTop = area.scrollTop;
  });
  function sampleChoices() {
    for (const option of sample.options) {
      const only = option.dataset.only;
      option.disabled = Boolean(only && only !== recordType.value);
      if (option.disabled && option.selected) sample.value = "first";
    }
  }
  recordType.addEventListener("change", () => {
    sampleChoices();
    close();
  });
  sampleChoices();

  // the check's answer: underline where the formula is wrong
  document.body.addEventListener("htmx:afterSettle", (event) => {
    if (!event.target || event.target.id !== "fe-result") return;
    const status = event.target.querySelector("[data-state]");
    if (status && status.dataset.state === "error" && status.dataset.start !== undefined) {
      mark = [Number(status.dataset.start), Number(status.dataset.end)];
    } else {
      mark = null;
    }
    area.setAttribute("aria-invalid", String(Boolean(status && status.dataset.state === "error")));
    paint();
  });
  paint();
})();
