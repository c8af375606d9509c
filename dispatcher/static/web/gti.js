// Step 3: the good-time intervals of stage 1 (the instrument's `gti` product), per data
// unit: the intervals shaded over the raw light curve, the total good time and the time each
// screening criterion removes. The user confirms, or edits the screening parameters (those
// of the gti product named gti_*: HXMT's expression and [start, stop] intervals; dragging
// across a plot adds an interval) and checks again, then runs stage 2 with them.

import {el, clear, num} from "./dom.js";
import {getJSON} from "./api.js";
import {buildForm} from "./schema_form.js";
import {draw, gtiFigure} from "./plots.js";

const EDITABLE = /^gti_/;

function intervalsParameter(schema) {
  return Object.keys(schema.properties).find((name) => EDITABLE.test(name) &&
    schema.properties[name].type === "array");
}

export function createGtiStep(root, ctx) {
  const summary = el("div", {class: "table-box gti-summary"});
  const plots = el("div", {class: "gti-plots"});
  const editorBox = el("div", {class: "gti-editor"});
  const target = el("select", {class: "stage2-product", "aria-label": "product to run"});
  const confirm = el("button", {type: "button", class: "primary confirm-gti"}, "Confirm and run");
  const recheck = el("button", {type: "button", class: "recheck-gti"}, "Apply edits and check again");
  const reset = el("button", {type: "button", class: "reset-gti"}, "Default screening");
  clear(root).append(summary, plots,
    el("h4", {}, "Edit the screening"),
    el("p", {class: "muted"}, "Change the expression, or list intervals to keep (drag across a plot to add one); " +
      "then check again, or confirm and run the product."),
    editorBox, el("div", {class: "actions"}, recheck, reset, el("span", {class: "spacer"}),
      el("label", {}, "Then run: ", target), confirm));
  const names = Object.keys(ctx.gtiSchema.properties).filter((name) => EDITABLE.test(name));
  const intervalsName = intervalsParameter(ctx.gtiSchema);
  let form = null;
  let shown = [];              // [{div, curve, intervals}] of the last job, to redraw outlines

  function makeForm(values) {
    form = buildForm(editorBox, ctx.gtiSchema, values, {
      only: names, grouped: false, idPrefix: `${ctx.instrument}-gti`,
      onChange: () => {
        ctx.update(form.read().values, names);
        redraw();
      },
      onSubmit: () => recheck.click(),
    });
  }
  makeForm(ctx.values());

  function userIntervals() {
    if (!intervalsName) return [];
    const value = form.read().values[intervalsName];
    return Array.isArray(value) ? value.filter((pair) => pair.length === 2) : [];
  }

  function redraw() {
    for (const entry of shown) {
      if (!entry.curve) continue;
      const figure = gtiFigure(entry.curve, entry.intervals, userIntervals());
      draw(entry.div, figure.traces, figure.layout);
    }
  }

  function renderSummary(gtis) {
    const criteria = [...new Set(gtis.flatMap((o) => Object.keys(o.meta.removed_s || {})))];
    const total = gtis.reduce((sum, o) => sum + (o.meta.good_time_s || 0), 0);
    const head = el("tr", {}, ["Data unit", "Span (s)", "Good time (s)", "Good (%)", "Intervals"].map((t) => el("th", {}, t)),
      criteria.map((c) => el("th", {class: "criterion", title: "time this criterion removes on its own (s)"}, c)));
    const rows = gtis.map((o) => {
      const m = o.meta;
      const fraction = m.span_s ? (100 * m.good_time_s) / m.span_s : null;
      return el("tr", {dataset: {unit: m.exposure}}, el("th", {}, m.exposure || o.name),
        el("td", {}, num(m.span_s, 7)), el("td", {class: "good-time"}, num(m.good_time_s, 7)),
        el("td", {}, fraction === null ? "—" : num(fraction, 3)), el("td", {}, (m.intervals || []).length),
        criteria.map((c) => el("td", {class: "removed"}, num((m.removed_s || {})[c], 7))));
    });
    const foot = el("tr", {class: "total"}, el("th", {}, "All"), el("td", {}),
      el("td", {class: "good-time-total", id: `${ctx.instrument}-good-time-total`}, num(total, 7)),
      el("td", {colspan: 2 + criteria.length}));
    const expression = gtis.length ? gtis[0].meta.expression : "";
    // Units left without good time: the product would fail on them, say so before it runs.
    const empty = gtis.filter((o) => typeof o.meta.good_time_s === "number" && o.meta.good_time_s <= 0).map((o) => o.meta.exposure || o.name);
    const warning = empty.length ? el("p", {class: "job-error no-good-time", role: "alert"},
      `No good time left in ${empty.join(", ")}: a product run with this screening fails there ` +
      "(nothing to extract). Loosen the expression or the intervals, and check again.") : null;
    clear(summary).append(...(warning ? [warning] : []),
      el("p", {}, "Screening: ", el("code", {class: "expression"}, expression || "—"),
        ". Time removed per criterion is counted for each criterion alone (criteria overlap)."),
      el("table", {class: "gti"}, el("thead", {}, head), el("tbody", {}, rows, foot)));
  }

  async function renderPlots(job, gtis, curves) {
    clear(plots);
    shown = [];
    for (const output of gtis) {
      const unit = output.meta.exposure;
      const curve = curves.find((c) => c.meta.exposure === unit);
      const div = el("div", {class: "plot gti-plot", dataset: {unit}});
      plots.append(el("h4", {}, `${unit}: ${num(output.meta.good_time_s, 7)} s good of ${num(output.meta.span_s, 7)} s`), div);
      const entry = {div, curve: null, intervals: output.meta.intervals || []};
      shown.push(entry);
      if (!curve) {
        div.textContent = "No raw light curve for this unit.";
        continue;
      }
      entry.curve = await getJSON(`${ctx.api}/jobs/${job.job_id}/products/${encodeURIComponent(curve.name)}/data`);
      const figure = gtiFigure(entry.curve, entry.intervals, userIntervals());
      await draw(div, figure.traces, figure.layout);
      div.on("plotly_selected", (event) => {
        if (!event || !event.range || !event.range.x || !intervalsName) return;
        // The plot's x axis counts from T0; intervals are absolute (ms precision).
        const pair = event.range.x.map((x) => Math.round((x + figure.t0) * 1000) / 1000).sort((a, b) => a - b);
        form.set(intervalsName, [...userIntervals(), pair]);
        ctx.update(form.read().values, names);
        redraw();
      });
    }
  }

  recheck.addEventListener("click", () => {
    const {values, problems} = form.read();
    if (problems.length) return form.showErrors(problems);
    ctx.update(values, names);
    ctx.recheck();
  });
  reset.addEventListener("click", () => {
    for (const name of names) form.set(name, ctx.gtiSchema.properties[name].default);
    ctx.update(form.read().values, names);
    redraw();
  });
  confirm.addEventListener("click", () => {
    const {values, problems} = form.read();
    if (problems.length) return form.showErrors(problems);
    ctx.update(values, names);
    ctx.confirm(target.value);
  });

  return {
    get form() {
      return form;
    },
    async show(job, products) {
      makeForm(ctx.values());
      clear(target).append(...ctx.stage2Products().map((p) => el("option", {value: p.name}, p.title)));
      target.value = ctx.defaultStage2();
      const outputs = products.outputs;
      const gtis = outputs.filter((o) => o.kind === "gti");
      const curves = outputs.filter((o) => o.kind === "lightcurve" && o.meta && o.meta.role === "raw");
      renderSummary(gtis);
      await renderPlots(job, gtis, curves);
    },
  };
}
