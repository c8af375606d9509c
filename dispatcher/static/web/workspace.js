// One instrument's tab: the four steps of the HXMT platform around one set of parameter
// values shared by all its products (picking exposures, resolving a name, editing the
// screening or choosing a fit model all change the same values):
//   1. find observations (if the instrument has a search) and pick data units;
//   2. choose a product and its reduction parameters (a form generated from its schema);
//   3. for instruments with a `gti` product (stage 1): check the good time, edit, confirm;
//   then the job's live status per data unit and step, and 4. the results.
// Submitting puts the job's reproducible link in the address bar (a new history entry), which
// opens this page on the same query (`openLink`). A link to data the server would not show
// without a token (HTTP 403 to the browser's plain request) is asked for again with the
// tab's token.

import {el, clear} from "./dom.js";
import {getJSON, postJSON, followJob} from "./api.js";
import {notAvailableMessage, storedToken} from "./session.js";
import {buildForm} from "./schema_form.js";
import {createSearch} from "./search.js";
import {createGtiStep} from "./gti.js";
import {createJobView} from "./jobview.js";
import {createResults} from "./results.js";

const STAGE_ONE = "gti";

function section(id, title, hidden = false) {
  const body = el("div", {class: "step-body"});
  const node = el("section", {class: "step", id, hidden}, el("h2", {}, title), body);
  return {node, body};
}

// The parameter filled by picking data units in the search: an array of ids with a pattern.
function selectionOf(schemas) {
  for (const {schema} of schemas.values()) {
    for (const [name, prop] of Object.entries(schema.properties)) {
      const items = prop.items || {};
      if (prop.type === "array" && items.type === "string" && items.pattern) {
        return {param: name, pattern: new RegExp(items.pattern)};
      }
    }
  }
  return null;
}

// The fit product (the one with a choice of spectral `model`) and its own parameters: those
// beyond the largest product schema it contains (the spectrum's).
function fitOf(schemas) {
  const fit = [...schemas.values()].find((p) => p.schema.properties.model && p.schema.properties.model.enum);
  if (!fit) return null;
  const names = Object.keys(fit.schema.properties);
  let base = [];
  for (const other of schemas.values()) {
    const own = Object.keys(other.schema.properties);
    if (other !== fit && own.every((n) => names.includes(n)) && own.length > base.length) base = own;
  }
  return {name: fit.name, title: fit.title, schema: fit.schema, own: names.filter((n) => !base.includes(n))};
}

function linkPath(link) {
  const url = new URL(link, window.location.href);
  return url.pathname + url.search;
}

export async function createWorkspace(root, instrument, {api}) {
  const schemas = new Map();
  await Promise.all(instrument.products.map(async (product) => {
    schemas.set(product.name, await getJSON(`${api}/instruments/${instrument.name}/products/${product.name}`));
  }));
  const names = instrument.products.map((p) => p.name);
  const hasStageOne = schemas.has(STAGE_ONE) && names.length > 1;
  const state = {values: {}, product: names.find((n) => n !== STAGE_ONE) || names[0], controller: null, pending: 0,
    refusedLink: null};
  const selection = selectionOf(schemas);
  const fit = fitOf(schemas);

  const steps = {
    search: section(`${instrument.name}-step-search`, "1. Find observations", !instrument.search),
    params: section(`${instrument.name}-step-params`, "2. Reduction parameters"),
    job: section(`${instrument.name}-step-job`, "Job status", true),
    gti: section(`${instrument.name}-step-gti`, "3. Good-time intervals", true),
    results: section(`${instrument.name}-step-results`, "4. Results", true),
  };
  clear(root).append(el("p", {class: "instrument-description"}, instrument.description || ""),
    ...Object.values(steps).map((s) => s.node));

  // ---- shared values ----------------------------------------------------------------------
  function update(values, fieldNames) {
    for (const name of fieldNames) {
      if (values[name] === undefined) delete state.values[name];
      else state.values[name] = values[name];
    }
  }
  // Values edited in one form (step 2, the GTI editor, the fit panel) shown in the others
  // that have the field: each form's buttons read their own fields, so a stale copy would
  // undo the edit (e.g. the screening confirmed in step 3 for another product than step 2's).
  function share(values, fieldNames, source) {
    update(values, fieldNames);
    for (const other of [form, gti && gti.form]) {
      if (!other || other === source) continue;
      for (const name of fieldNames) {
        const field = other.fields.get(name);
        if (field) other.set(name, state.values[name] !== undefined ? state.values[name] : field.prop.default);
      }
    }
  }
  const paramsOf = (product) => Object.fromEntries(Object.keys(schemas.get(product).schema.properties)
    .filter((name) => state.values[name] !== undefined).map((name) => [name, state.values[name]]));

  // ---- step 2: product and parameters ------------------------------------------------------
  const chooser = el("div", {class: "products", role: "radiogroup", "aria-label": "product"});
  const formBox = el("div");
  const actions = el("div", {class: "actions"});
  steps.params.body.append(chooser, formBox, actions);
  let form = null;

  function renderChooser() {
    clear(chooser).append(...instrument.products.map((p) => el("label", {class: "product-choice", title: p.description},
      el("input", {type: "radio", name: `${instrument.name}-product`, value: p.name, checked: p.name === state.product,
        onchange: () => selectProduct(p.name)}), ` ${p.title}`)));
  }

  function selectProduct(name) {
    if (form) update(form.read().values, [...form.fields.keys()]);
    state.product = name;
    renderChooser();
    renderForm();
  }

  function renderForm() {
    const product = schemas.get(state.product);
    form = buildForm(formBox, product.schema, state.values, {
      idPrefix: `${instrument.name}-params`, api,
      timesUrl: `${api}/instruments/${instrument.name}/products/${state.product}/times`,
      onChange: (name) => share(form.read().values, [name], form),
      onSubmit: () => primary.click(),
    });
    const run = (target, forms) => {
      const {values, problems} = form.read();
      if (problems.length) return form.showErrors(problems);
      update(values, [...form.fields.keys()]);
      return submit(target, forms);
    };
    const primary = el("button", {type: "button", class: "primary run"});
    clear(actions).append(primary);
    if (hasStageOne && state.product !== STAGE_ONE) {
      primary.textContent = "Next: check the good time (step 3)";
      primary.addEventListener("click", () => run(STAGE_ONE, [form]));
      actions.append(" ", el("button", {type: "button", class: "run-direct",
        onclick: () => run(state.product, [form])}, "Run it directly, without checking"));
    } else {
      primary.textContent = `Run ${product.title}`;
      primary.addEventListener("click", () => run(state.product, [form]));
    }
  }
  renderChooser();
  renderForm();

  // ---- step 1: search ----------------------------------------------------------------------
  async function pick(ids, rows) {
    state.values[selection.param] = ids;
    const row = rows[0];
    const product = schemas.get(state.product).schema.properties;
    if (row && row.target && product.src_name) state.values.src_name = row.target;
    const ra = Object.keys(product).find((n) => product[n].title === "RA");
    const dec = Object.keys(product).find((n) => product[n].title === "DEC");
    if (row && ra && dec && row.ra !== undefined) Object.assign(state.values, {[ra]: row.ra, [dec]: row.dec});
    const times = Object.keys(product).filter((n) => product[n]["x-time"]);
    if (times.length === 2 && rows.every((r) => r.start && r.stop)) {
      const format = product[times[0]]["x-time"].format_parameter || "T_format";
      state.values[format] = "isot";
      state.values[times[0]] = rows.map((r) => r.start).sort()[0];
      state.values[times[1]] = rows.map((r) => r.stop).sort().at(-1);
    }
    renderForm();
    // RA/DEC are the pointing's already: an uncatalogued target (a blank field) is no error.
    if (row && row.target && form.resolve) form.resolve(row.ra !== undefined);
    steps.params.node.scrollIntoView();
  }
  const search = instrument.search ? createSearch(steps.search.body, {instrument, api, selection, onPick: pick}) : null;

  // ---- step 3, job view, step 4 ------------------------------------------------------------
  const jobView = createJobView(steps.job.body);
  const gti = hasStageOne ? createGtiStep(steps.gti.body, {
    api, instrument: instrument.name, gtiSchema: schemas.get(STAGE_ONE).schema,
    values: () => state.values, update: (values, fieldNames) => share(values, fieldNames, gti.form),
    recheck: () => submit(STAGE_ONE, [gti.form, form]),
    confirm: (product) => {
      if (product !== state.product) selectProduct(product);
      return submit(product, [gti.form, form]);
    },
    stage2Products: () => instrument.products.filter((p) => p.name !== STAGE_ONE),
    defaultStage2: () => (state.product !== STAGE_ONE ? state.product : names.find((n) => n !== STAGE_ONE)),
  }) : null;
  const results = createResults(steps.results.body, {
    api, instrument: instrument.name, values: () => state.values, update: (values, fieldNames) => share(values, fieldNames),
    fitProduct: () => fit,
    runFit: (fitForm) => submit(fit.name, [fitForm, form]),
  });

  // Problems next to their fields, in the first form that has the field; the rest on top
  // of the first form, with the server's message when no problem names a parameter.
  function report(error, forms) {
    const live = forms.filter(Boolean);
    const assigned = new Map(live.map((f) => [f, []]));
    const rest = [];
    for (const problem of error.problems) {
      const owner = live.find((f) => f.fields.has(problem.parameter));
      (owner ? assigned.get(owner) : rest).push(problem);
    }
    live.forEach((f, index) => {
      const mine = assigned.get(f);
      if (index === 0) f.showErrors([...mine, ...rest], error.problems.length ? undefined : error.message);
      else if (mine.length) f.showErrors(mine);
      else f.clearErrors();
    });
  }

  // `data-busy` on the tab's panel says whether a job is being submitted, followed or drawn.
  async function busy(work) {
    state.pending += 1;
    root.dataset.busy = "true";
    try {
      await work();
    } finally {
      state.pending -= 1;
      if (!state.pending) root.dataset.busy = "false";
    }
  }

  function submit(product, forms) {
    return busy(() => submitAndWatch(product, forms));
  }

  async function submitAndWatch(product, forms) {
    if (state.controller) state.controller.abort();
    state.refusedLink = null;
    forms.filter(Boolean).forEach((f) => f.clearErrors());
    let job;
    try {
      job = await postJSON(`${api}/jobs`, {instrument: instrument.name, product, params: paramsOf(product)});
    } catch (error) {
      report(error, forms);
      return;
    }
    // A new history entry per query, so that Back returns to the previous step's job (the
    // page reloads the link the browser goes back to: app.js).
    const address = linkPath(job.link);
    const again = address === window.location.pathname + window.location.search;
    window.history[again ? "replaceState" : "pushState"](null, "", address);
    await watch(job);
  }

  async function watch(job) {
    const controller = new AbortController();
    state.controller = controller;
    steps.job.node.hidden = false;
    steps.results.node.hidden = true;
    if (job.product === STAGE_ONE || !gti) steps.gti.node.hidden = true;
    results.clear();
    steps.job.node.scrollIntoView();
    let final;
    try {
      final = await followJob(api, job, (current) => jobView.show(current), controller.signal);
    } catch (error) {
      if (error.name !== "AbortError") jobView.show({...job, status: "failed", error: {message: error.message, failures: []}});
      return;
    }
    root.dataset.job = final.job_id;
    if (controller.signal.aborted || final.status !== "done") return;
    steps.results.node.hidden = false;
    try {
      const products = await getJSON(`${api}/jobs/${final.job_id}/products`);
      if (final.product === STAGE_ONE && gti) {
        steps.gti.node.hidden = false;
        await gti.show(final, products);
        await results.show(final, products, {withPlots: false});
        steps.gti.node.scrollIntoView();
      } else {
        await results.show(final, products);
        steps.results.node.scrollIntoView();
      }
    } catch (error) {
      // E.g. a product evicted from the cache meanwhile: the server queued the job again.
      results.showError(`The results cannot be shown: ${error.message}`);
    }
  }

  // The link's query, submitted with the tab's token (the server refused it to the browser's
  // plain request): the same job, now followed; without a token, or with one that does not
  // grant the data, the page says they are not available, and nothing more.
  async function openRefusedLink(link) {
    state.refusedLink = link;
    const refused = (message) => {
      steps.job.node.hidden = false;
      jobView.showError(message);
    };
    if (!storedToken()) return refused(notAvailableMessage());
    await busy(async () => {
      let job;
      try {
        job = await postJSON(`${api}/jobs`, {instrument: instrument.name, product: link.product, params: link.params});
      } catch (error) {
        refused(error.message);
        return;
      }
      state.refusedLink = null;
      window.history.replaceState(null, "", linkPath(job.link));
      await watch(job);
    });
  }

  return {
    // A reproducible link: the form filled with its parameters, and its job followed.
    async openLink(link) {
      state.values = {...link.params};
      if (schemas.has(link.product)) state.product = link.product;
      renderChooser();
      renderForm();
      if (link.errors && link.errors.status === 403) return openRefusedLink(link);
      if (link.errors) form.showErrors(link.errors.errors || [], link.errors.error);
      if (!link.job_id) return;
      await busy(async () => {
        let job;
        try {
          job = await getJSON(`${api}/jobs/${link.job_id}`);
        } catch (error) {
          steps.job.node.hidden = false;
          jobView.showError(`The job of this link is unavailable: ${error.message}`);
          return;
        }
        await watch(job);
      });
    },
    // A token was set: the search may show more rows, a refused link may open now.
    async identityChanged() {
      if (search) search.refresh();
      if (state.refusedLink) await openRefusedLink(state.refusedLink);
    },
  };
}
