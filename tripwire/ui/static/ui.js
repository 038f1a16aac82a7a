// tripwire dashboard: the few things a server-rendered page cannot do by itself.
// Rows arriving on the live feed are HTML the server rendered and escaped; this script
// only places them. Everything else on the pages works without it.
"use strict";

function liveFeed(table) {
  const status = document.querySelector("[data-live-status]");
  const body = table.tBodies[0];
  const limit = Number(table.dataset.limit || 200);
  const source = new EventSource("/ui/events/live?" + table.dataset.live);
  const show = (state, text) => {
    if (status) {
      status.dataset.state = state;
      status.textContent = text;
    }
  };
  source.addEventListener("open", () => show("open", "live: new events appear on top"));
  source.addEventListener("error", () => show("closed", "live feed interrupted; reconnecting"));
  source.addEventListener("event", (message) => {
    const data = JSON.parse(message.data);
    if (document.getElementById("event-" + data.id)) {
      return;
    }
    const empty = body.querySelector("tr[data-empty]");
    if (empty) {
      empty.remove();
    }
    body.insertAdjacentHTML("afterbegin", data.html);
    const row = body.firstElementChild;
    if (row) {
      row.classList.add("arrived");
    }
    while (body.rows.length > limit) {
      body.deleteRow(body.rows.length - 1);
    }
  });
}

function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.copy);
      try {
        await navigator.clipboard.writeText(target ? target.textContent : "");
        button.textContent = "Copied";
      } catch {
        button.textContent = "Select and copy";
      }
      setTimeout(() => (button.textContent = "Copy"), 1500);
    });
  }
}

function spell(seconds) {
  const s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), r = s % 60;
  const parts = [];
  if (d) parts.push(d + "d");
  if (h) parts.push(h + "h");
  if (m && parts.length < 2) parts.push(m + "m");
  if (!d && !h && parts.length < 2) parts.push(r + "s");
  return parts.slice(0, 2).join(" ");
}

function countdowns() {
  const clocks = document.querySelectorAll("[data-countdown]");
  if (!clocks.length) {
    return;
  }
  const tick = () => {
    const now = Date.now();
    for (const el of clocks) {
      const left = (Date.parse(el.dataset.countdown) - now) / 1000;
      el.textContent = left >= 0 ? "in " + spell(left) : "overdue by " + spell(left);
    }
  };
  tick();
  setInterval(tick, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("table[data-live]");
  if (table) {
    liveFeed(table);
  }
  copyButtons();
  countdowns();
});
