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

// On the key form, a scope checkbox's kinds (Push's two: radio buttons named "push_kind") are choices
// only while it is checked (the server ignores them otherwise).
function setUpScopeKinds() {
  const radios = document.querySelectorAll("input[type='radio'][name$='_kind']");
  for (const name of new Set([...radios].map((radio) => radio.name))) {
    const box = document.getElementById(name.slice(0, -"_kind".length));
    const kinds = document.querySelectorAll(`input[name='${name}']`);
    if (!box) { continue; }
    const update = () => {
      for (const kind of kinds) { kind.disabled = !box.checked; }
    };
    box.addEventListener("change", update);
    update();
  }
}

// After a refused form: the error summary takes the focus (if autofocus did not give it), and its links
// move the focus to their field, not only the view.
function setUpErrorSummary() {
  const summary = document.getElementById("error-summary");
  if (!summary) { return; }
  if (document.activeElement !== summary) { summary.focus(); }
  summary.addEventListener("click", (event) => {
    const link = event.target.closest("a[href^='#']");
    const field = link && document.getElementById(link.hash.slice(1));
    if (!field) { return; }
    event.preventDefault();
    field.focus();
  });
}

// Dates and times (<time data-local>) in the visitor's own time zone: the page gives them in UTC, which
// stays in the title. "datetime" ones name the zone ("2026-12-01 06:39 GMT+9").
function zoneName(when) {
  const parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(when);
  const zone = parts.find((part) => part.type === "timeZoneName");
  return zone ? zone.value : "";
}

function showLocalTimes() {
  const pad = (n) => String(n).padStart(2, "0");
  for (const time of document.querySelectorAll("time[data-local]")) {
    const when = new Date(time.dateTime);
    if (Number.isNaN(when.getTime())) { continue; }
    let text = `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`;
    if (time.dataset.local === "datetime") {
      text = `${text} ${pad(when.getHours())}:${pad(when.getMinutes())} ${zoneName(when)}`.trim();
    }
    time.title = `${when.toISOString().slice(0, 16).replace("T", " ")} UTC`;
    time.textContent = text;
  }
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

// A form already sent ignores further submits (a double click on Create or Regenerate would post its
// one-time token twice, and the second answer would not show the secret) until the page is shown again.
// Nothing is disabled: a disabled submit button's name and value would not be sent.
function setUpSingleSubmit() {
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method !== "post") { return; }
    if (form.dataset.sent) {
      event.preventDefault();
    } else if (!event.defaultPrevented) {
      form.dataset.sent = "true";
    }
  });
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) { return; }
    for (const form of document.querySelectorAll("form[data-sent]")) { delete form.dataset.sent; }
  });
}

// A secret shown once must not come back with the Back button (from the back-forward cache).
window.addEventListener("pagehide", () => {
  const secret = document.getElementById("secret");
  if (secret) { secret.value = ""; }
});

document.addEventListener("DOMContentLoaded", () => {
  setUpCopyButtons();
  showLocalTimes();
  setUpOwnerChoice();
  setUpScopeKinds();
  setUpErrorSummary();
  setUpMenu();
});
setUpSingleSubmit();
