// Step 1: the observation search of an instrument. The filter form comes from the
// instrument's search schema (its sort/order/offset/limit drive the table instead); the
// result table is sortable by the columns the schema can sort on and paged on the server.
// Rows holding data-unit ids that the product's selection parameter accepts (HXMT: the
// observation's exposures) get a checkbox per id, and the picked ids go to the query.

import {el, clear, num} from "./dom.js";
import {postJSON} from "./api.js";
import {buildForm} from "./schema_form.js";

const CONTROLS = ["sort", "order", "offset", "limit"];
// Shown on request from the Columns menu: they repeat other columns or are rarely needed.
const HIDDEN_BY_DEFAULT = ["pi", "pi_name", "stop", "start_mjd", "tstart", "tstop", "n_exposures", "proprietary"];

function cellText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return num(value, 8);
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
}

// The column whose values are lists of ids the selection parameter accepts.
function pickColumn(reply, selection) {
  if (!selection) return null;
  const accepted = (value) => Array.isArray(value) && value.length &&
    value.every((item) => typeof item === "string" && selection.pattern.test(item));
  const found = reply.columns.find((column) => reply.rows.length &&
    reply.rows.every((row) => accepted(row[column.name])));
  return found ? found.name : null;
}

export function createSearch(root, {instrument, api, selection, onPick}) {
  const properties = instrument.search.schema.properties;
  const sortable = new Set((properties.sort && properties.sort.enum) || []);
  const limitMax = (properties.limit && properties.limit.maximum) || 1000;
  const state = {
    sort: properties.sort && properties.sort.default,
    order: (properties.order && properties.order.default) || "asc",
    offset: 0,
    limit: (properties.limit && properties.limit.default) || 50,
    reply: null,
    picked: new Map(),            // id -> row it came from
    hidden: new Set(HIDDEN_BY_DEFAULT),
  };
  const formBox = el("div");
  const status = el("p", {class: "status-line", "aria-live": "polite"});
  const table = el("div", {class: "table-box"});
  const pager = el("div", {class: "pager"});
  const columnsMenu = el("details", {class: "columns-menu"}, el("summary", {}, "Columns"));
  const picks = el("div", {class: "picks", hidden: true});
  const button = el("button", {type: "button", class: "primary", id: `${instrument.name}-search-run`}, "Search");
  clear(root).append(formBox, el("div", {class: "actions"}, button), status, columnsMenu, table, pager, picks);

  const form = buildForm(formBox, instrument.search.schema, {}, {
    idPrefix: `${instrument.name}-search`, hide: CONTROLS, grouped: false, api,
    onSubmit: () => run(0),
  });
  button.addEventListener("click", () => run(0));

  async function run(offset = state.offset) {
    const {values, problems} = form.read();
    if (problems.length) {
      form.showErrors(problems);
      return;
    }
    form.clearErrors();
    state.offset = offset;
    const params = {...values, offset: state.offset, limit: state.limit};
    if (state.sort) Object.assign(params, {sort: state.sort, order: state.order});
    status.textContent = "Searching…";
    try {
      // POST: typed JSON criteria (a date stays a string, mission seconds a number).
      state.reply = await postJSON(`${api}/instruments/${instrument.name}/search`, params);
    } catch (error) {
      status.textContent = "";
      form.showErrors(error.problems, error.message);
      return;
    }
    render();
  }

  function render() {
    const reply = state.reply;
    const first = reply.rows.length ? state.offset + 1 : 0;
    status.textContent = reply.total === 0 ? "No observation matches." :
      `${reply.total} observation${reply.total === 1 ? "" : "s"}; rows ${first}–${state.offset + reply.rows.length}.`;
    renderColumnsMenu(reply);
    renderTable(reply);
    renderPager(reply);
    renderPicks();
  }

  function renderColumnsMenu(reply) {
    columnsMenu.replaceChildren(el("summary", {}, "Columns"), ...reply.columns.map((column) => el("label", {},
      el("input", {type: "checkbox", checked: !state.hidden.has(column.name), onchange: (event) => {
        if (event.target.checked) state.hidden.delete(column.name);
        else state.hidden.add(column.name);
        renderTable(reply);
      }}), ` ${column.name}`)));
  }

  function renderTable(reply) {
    const pickName = pickColumn(reply, selection);
    // The picked ids come first, next to the row's checkbox.
    const columns = reply.columns.filter((c) => !state.hidden.has(c.name) || c.name === pickName)
      .sort((a, b) => (b.name === pickName) - (a.name === pickName));
    const head = el("tr", {}, pickName ? el("th", {class: "pick"}, "Pick") : null, columns.map((column) => {
      const arrow = state.sort === column.name ? (state.order === "asc" ? " ▲" : " ▼") : "";
      const label = `${column.name}${column.unit ? ` (${column.unit})` : ""}${arrow}`;
      if (!sortable.has(column.name)) return el("th", {title: column.description || ""}, label);
      return el("th", {title: `${column.description || ""} — click to sort`, class: "sortable",
        "aria-sort": arrow ? (state.order === "asc" ? "ascending" : "descending") : "none",
        dataset: {column: column.name}, onclick: () => sortBy(column.name)}, label);
    }));
    const body = reply.rows.map((row) => {
      const ids = pickName ? row[pickName] : [];
      const all = el("input", {type: "checkbox", class: "pick-row", title: "all of this row",
        checked: ids.length > 0 && ids.every((id) => state.picked.has(id))});
      all.addEventListener("change", () => {
        ids.forEach((id) => (all.checked ? state.picked.set(id, row) : state.picked.delete(id)));
        renderTable(reply);
        renderPicks();
      });
      return el("tr", {}, pickName ? el("td", {class: "pick"}, all) : null, columns.map((column) => {
        if (column.name !== pickName) return el("td", {}, cellText(row[column.name]));
        return el("td", {}, ids.map((id) => el("label", {class: "pick-id"},
          el("input", {type: "checkbox", value: id, checked: state.picked.has(id), onchange: (event) => {
            if (event.target.checked) state.picked.set(id, row);
            else state.picked.delete(id);
            renderTable(reply);
            renderPicks();
          }}), ` ${id}`)));
      }));
    });
    clear(table).append(el("table", {class: "results"}, el("thead", {}, head), el("tbody", {}, body)));
  }

  function sortBy(name) {
    state.order = state.sort === name && state.order === "asc" ? "desc" : "asc";
    state.sort = name;
    run(0);
  }

  function renderPager(reply) {
    const size = el("input", {type: "number", class: "page-size", min: 1, max: limitMax, step: 1,
      value: state.limit, "aria-label": "rows per page"});
    size.addEventListener("change", () => {
      const wanted = Math.round(Number(size.value));
      if (!(wanted >= 1 && wanted <= limitMax)) {
        size.value = state.limit;
        return;
      }
      state.limit = wanted;
      run(0);
    });
    const previous = el("button", {type: "button", class: "previous", disabled: state.offset === 0,
      onclick: () => run(Math.max(0, state.offset - state.limit))}, "‹ Previous");
    const next = el("button", {type: "button", class: "next", disabled: state.offset + reply.rows.length >= reply.total,
      onclick: () => run(state.offset + state.limit)}, "Next ›");
    const pages = Math.max(1, Math.ceil(reply.total / state.limit));
    const page = Math.floor(state.offset / state.limit) + 1;
    clear(pager).append(previous, el("span", {class: "page"}, ` page ${page} of ${pages} `), next, " ",
      el("label", {}, size, " rows per page"));
  }

  function renderPicks() {
    const ids = [...state.picked.keys()];
    picks.hidden = !ids.length;
    if (!ids.length) return;
    const use = el("button", {type: "button", class: "primary use-picks"}, `Use ${ids.length} in the query`);
    use.addEventListener("click", () => onPick(ids, [...new Set(state.picked.values())]));
    const none = el("button", {type: "button", onclick: () => {
      state.picked.clear();
      render();
    }}, "Clear");
    clear(picks).append(el("span", {}, `Picked (${selection.param}): `),
      el("code", {class: "picked"}, ids.join(", ")), " ", use, " ", none);
  }

  // Again with the same criteria and page, e.g. when a token shows more (or fewer) rows.
  function refresh() {
    if (state.reply) run(state.offset);
  }

  return {run, refresh, form};
}
