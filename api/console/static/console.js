// invoiceflow console: small progressive enhancements; every page works without this script.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Ask before the actions that cannot be undone (void, write off, refund).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // New invoice form: add a line.
  const add = document.getElementById("add-line");
  if (add) {
    add.addEventListener("click", () => {
      const body = document.querySelector("#lines tbody");
      const rows = body.querySelectorAll("tr");
      const copy = rows[rows.length - 1].cloneNode(true);
      const index = rows.length;
      for (const input of copy.querySelectorAll("input")) {
        input.name = input.name.replace(/\d+$/, String(index));
        input.id = input.id.replace(/\d+$/, String(index));
        input.value = input.name.startsWith("quantity") ? "1" : input.name.startsWith("tax_rate") ? "0" : "";
      }
      for (const label of copy.querySelectorAll("label")) {
        label.htmlFor = label.htmlFor.replace(/\d+$/, String(index));
      }
      body.appendChild(copy);
      copy.querySelector("input").focus();
    });
  }
});
