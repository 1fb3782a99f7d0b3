// Progressive enhancement only: every page works without this file.
"use strict";

function copyText(input, status) {
  const done = () => { status.textContent = "Copied to the clipboard."; };
  const fallback = () => {
    input.focus();
    input.select();
    if (document.execCommand("copy")) { done(); } else { status.textContent = "Press Ctrl+C (or ⌘C) to copy."; }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(done, fallback);
  } else {
    fallback();
  }
}

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const input = document.getElementById(button.dataset.copy);
    const status = button.closest(".field").querySelector("[data-copy-status]");
    if (!input || !status) { continue; }
    button.hidden = false;
    button.addEventListener("click", () => copyText(input, status));
  }
}

// On the key form, show (and submit) only the packages of the chosen owner.
function setUpOwnerChoice() {
  const owner = document.getElementById("owner");
  if (!owner) { return; }
  const groups = document.querySelectorAll("fieldset.packages[data-owner]");
  const update = () => {
    for (const group of groups) {
      const mine = group.dataset.owner === owner.value;
      group.hidden = !mine;
      group.disabled = !mine;
    }
  };
  owner.addEventListener("change", update);
  update();
}

// Close the account menu with Escape or a click elsewhere.
function setUpMenu() {
  const menu = document.querySelector("details.menu");
  if (!menu) { return; }
  document.addEventListener("click", (event) => {
    if (menu.open && !menu.contains(event.target)) { menu.open = false; }
  });
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && menu.open) {
      menu.open = false;
      menu.querySelector("summary").focus();
    }
  });
}

// A secret shown once must not come back with the Back button (from the back-forward cache).
window.addEventListener("pagehide", () => {
  const secret = document.getElementById("secret");
  if (secret) { secret.value = ""; }
});

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  setUpOwnerChoice();
  setUpMenu();
});
