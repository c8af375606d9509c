// The web form's entry point: the token field of the header, and one tab per instrument the
// server declares (so new plugins appear by themselves), each a workspace built on first
// use. A reproducible link (/q/<instrument>/<product>?...) boots the page on that
// instrument, query and job. A token set later refreshes what the tabs show (searches, a
// link the server refused without it).

import {el, clear} from "./dom.js";
import {getJSON} from "./api.js";
import {createIdentityPanel} from "./identity.js";
import {IDENTITY_CHANGED} from "./session.js";
import {createWorkspace} from "./workspace.js";

async function main() {
  const boot = JSON.parse(document.getElementById("xoda-boot").textContent);
  const app = document.getElementById("app");
  const tabs = document.getElementById("tabs");
  const panels = document.getElementById("panels");
  const api = boot.api;
  const identityChecked = createIdentityPanel(document.getElementById("identity"), {api}).check();
  let instruments;
  try {
    instruments = (await getJSON(`${api}/instruments`)).instruments;
  } catch (error) {
    clear(panels).append(el("p", {class: "job-error"}, `The list of instruments is unavailable: ${error.message}`));
    app.hidden = false;
    return;
  }
  const workspaces = new Map();     // instrument name -> Promise of its workspace
  document.addEventListener(IDENTITY_CHANGED, async () => {
    for (const pending of workspaces.values()) {
      const workspace = await pending;
      if (workspace) workspace.identityChanged();
    }
  });

  // The address each tab showed last (its job's link, or /#<instrument>), so that the address
  // bar always belongs to the visible tab: reloading it, or sharing it, opens that tab.
  const addresses = new Map();
  let visible = null;
  // Back and Forward move between the jobs' links (workspace.js pushes one per query): the
  // page is reopened on the address the browser went to.
  window.addEventListener("popstate", () => window.location.reload());

  function panelOf(name) {
    return document.getElementById(`panel-${name}`);
  }

  async function activate(name) {
    visible = name;
    for (const button of tabs.querySelectorAll("[role=tab]")) {
      const selected = button.dataset.instrument === name;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
      panelOf(button.dataset.instrument).hidden = !selected;
    }
    if (!workspaces.has(name)) {
      const instrument = instruments.find((i) => i.name === name);
      workspaces.set(name, createWorkspace(panelOf(name), instrument, {api}).catch((error) => {
        workspaces.delete(name);
        clear(panelOf(name)).append(el("p", {class: "job-error"}, `This instrument is unavailable: ${error.message}`));
        return null;
      }));
    }
    return workspaces.get(name);
  }

  clear(tabs);
  clear(panels);
  for (const instrument of instruments) {
    const button = el("button", {type: "button", role: "tab", id: `tab-${instrument.name}`,
      "aria-controls": `panel-${instrument.name}`, dataset: {instrument: instrument.name},
      title: instrument.description || instrument.name}, instrument.title || instrument.name);
    button.addEventListener("click", () => {
      if (visible !== instrument.name) {
        const current = window.location.pathname + window.location.search + window.location.hash;
        if (visible) addresses.set(visible, current);
        // A new entry (not a replacement): the one left keeps its own address, so that Back
        // returns to the other tab's job rather than to a page rewritten under it.
        const address = addresses.get(instrument.name) || `/#${instrument.name}`;
        if (address !== current) window.history.pushState(null, "", address);
      }
      activate(instrument.name);
    });
    tabs.append(button);
    panels.append(el("div", {role: "tabpanel", id: `panel-${instrument.name}`, class: "panel",
      "aria-labelledby": `tab-${instrument.name}`, hidden: true}));
  }
  // Keyboard: the tab list is one stop of the Tab key (the selected tab); the arrow keys,
  // Home and End select the others (WAI-ARIA tabs pattern).
  tabs.addEventListener("keydown", (event) => {
    const buttons = [...tabs.querySelectorAll("[role=tab]")];
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    const next = {ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: buttons.length - 1}[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const button = buttons[(next + buttons.length) % buttons.length];
    button.click();
    button.focus();
  });
  app.hidden = false;
  if (!instruments.length) {
    panels.append(el("p", {}, "This server serves no instrument."));
    return;
  }
  const link = boot.link;
  const fromHash = window.location.hash.slice(1);
  const first = link && instruments.some((i) => i.name === link.instrument) ? link.instrument :
    instruments.some((i) => i.name === fromHash) ? fromHash : instruments[0].name;
  try {
    const workspace = await activate(first);
    if (link && workspace && link.instrument === first) await workspace.openLink(link);
  } finally {
    await identityChecked;
    document.body.dataset.ready = "true";
  }
}

main();
