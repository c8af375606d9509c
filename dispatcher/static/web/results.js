// Step 4: a done job's results. Plots of its light curves (source, background, net; per
// data unit or combined) and spectra (per keV, with the scaled background); a fit of the
// spectrum with the model and band chosen here (the instrument's fit product), drawn as data,
// folded model and residuals with the table of parameters, errors, statistic and flux;
// every FITS file and all of them at once; the reproducible link with a copy button.
// Downloads are plain links, except when the tab has a token: a link cannot send it, so the
// file is fetched with it and saved from memory under its own name.

import {el, clear, num, bytes} from "./dom.js";
import {getJSON, downloadWithToken} from "./api.js";
import {storedToken} from "./session.js";
import {buildForm} from "./schema_form.js";
import {draw, lightcurveFigure, spectrumFigure, fitFigure} from "./plots.js";

function dataUrl(api, job, output) {
  return `${api}/jobs/${job.job_id}/products/${encodeURIComponent(output.name)}/data`;
}

// Outputs grouped by data unit (meta.exposure; "combined" first), for the unit menus.
function byUnit(outputs) {
  const groups = new Map();
  for (const output of outputs) {
    const unit = (output.meta && output.meta.exposure) || output.unit || "all";
    if (!groups.has(unit)) groups.set(unit, []);
    groups.get(unit).push(output);
  }
  return [...groups.entries()].sort(([a], [b]) => (b === "combined") - (a === "combined") || a.localeCompare(b));
}

export function fitTable(meta) {
  const rows = (meta.parameters || []).map((p) => el("tr", {dataset: {parameter: p.name}},
    el("th", {}, p.name), el("td", {class: "value"}, num(p.value, 6)),
    el("td", {class: "error-lower"}, num(p.error_lower, 3)), el("td", {class: "error-upper"}, num(p.error_upper, 3)),
    // On a hard limit the covariance error means nothing: say so instead of a number.
    el("td", {class: "sigma"}, p.limit ? `at ${p.limit} limit` : num(p.sigma, 3)), el("td", {}, p.unit || "")));
  const good = meta.goodness || {};
  const goodness = [good.method, good.reduced !== undefined ? `reduced χ² ${num(good.reduced, 4)}` : null,
    good.z !== undefined ? `z = ${num(good.z, 3)}` : null,
    good.p_value !== undefined ? `p = ${num(good.p_value, 3)}` : null].filter(Boolean).join(", ");
  const flux = meta.flux || {};
  return el("div", {class: "fit-results"},
    el("table", {class: "fit-table"}, el("thead", {}, el("tr", {},
      ["Parameter", "Value", "Error −", "Error +", "σ (covariance)", "Unit"].map((t) => el("th", {}, t)))),
    el("tbody", {}, rows)),
    el("p", {class: "fit-stat"}, `Statistic: ${meta.statistic} = ${num(meta.stat, 7)} for ${meta.dof} dof ` +
      `(${meta.bins} bins, ${num((meta.fit_band || [])[0])}–${num((meta.fit_band || [])[1])} keV); goodness: ${goodness || "—"}`),
    el("p", {class: "fit-flux"}, `Energy flux ${num(flux.emin)}–${num(flux.emax)} keV: ` +
      `${num(flux.value, 5)} ± ${num(flux.error, 3)} erg/cm²/s` +
      (meta.absorbed ? `; unabsorbed ${num(flux.unabsorbed, 5)} ± ${num(flux.unabsorbed_error, 3)} erg/cm²/s` : "")),
    el("p", {class: "muted"}, `Errors: ${meta.error_method || "1 sigma"}; backend ${meta.backend || "?"}.`));
}

export function createResults(root, ctx) {
  const plots = el("div", {class: "result-plots"});
  const fitBox = el("div", {class: "fit-panel", hidden: true});
  const downloads = el("div", {class: "downloads"});
  const linkBox = el("div", {class: "link-box"});
  clear(root).append(plots, fitBox, downloads, linkBox);

  async function unitPlot(title, className, outputs, render) {
    const groups = byUnit(outputs);
    const menu = el("select", {class: `${className}-unit`, "aria-label": `${title}: data unit`},
      groups.map(([unit]) => el("option", {value: unit}, unit)));
    const div = el("div", {class: `plot ${className}`});
    const caption = el("span", {class: "caption muted"});
    plots.append(el("h4", {}, title, " ", groups.length > 1 ? menu : null, " ", caption), div);
    const show = async () => {
      const chosen = groups.find(([unit]) => unit === menu.value)[1];
      caption.textContent = await render(div, chosen);
    };
    menu.addEventListener("change", show);
    await show();
  }

  async function lightcurves(job, outputs) {
    await unitPlot("Light curves", "lightcurve-plot", outputs, async (div, chosen) => {
      const curves = await Promise.all(chosen.map(async (output) => ({
        label: (output.meta && output.meta.role) || output.name,
        role: output.meta && output.meta.role,
        data: await getJSON(dataUrl(ctx.api, job, output)),
      })));
      const figure = lightcurveFigure(curves);
      await draw(div, figure.traces, figure.layout);
      const band = chosen[0].meta && chosen[0].meta.emin_keV !== undefined ?
        `${num(chosen[0].meta.emin_keV, 4)}–${num(chosen[0].meta.emax_keV, 4)} keV, ` : "";
      // The product's bin (asked for), and the one on display when the plot is rebinned.
      const asked = chosen[0].meta && chosen[0].meta.timedel_s !== undefined ? chosen[0].meta.timedel_s : curves[0].data.timedel;
      const shown = curves[0].data.binning > 1 ? ` (shown rebinned to ${num(curves[0].data.timedel, 6)} s)` : "";
      // Exposures days apart squeeze each one into a sliver of the axis: say how to see them.
      const times = curves[0].data.columns.time;
      const span = times.length ? times[times.length - 1] - times[0] : 0;
      const covered = (curves[0].data.rows_total || times.length) * asked;
      const apart = chosen[0].meta && (chosen[0].meta.exposures || []).length > 1 && span > 5 * covered ?
        `; ${chosen[0].meta.exposures.length} exposures over ${num(span / 86400, 3)} d: pick one in the menu, or drag to zoom` : "";
      return `${band}bins of ${num(asked, 6)} s${shown}${apart}`;
    });
  }

  async function spectra(job, outputs) {
    await unitPlot("Spectra", "spectrum-plot", outputs, async (div, chosen) => {
      const data = await getJSON(dataUrl(ctx.api, job, chosen[0]));
      const figure = spectrumFigure(data, chosen[0].name);
      await draw(div, figure.traces, figure.layout);
      return `${chosen[0].name}: exposure ${num(data.exposure_s, 6)} s`;
    });
  }

  async function fits(job, outputs) {
    for (const output of outputs) {
      const data = await getJSON(dataUrl(ctx.api, job, output));
      const figure = fitFigure(data);
      const div = el("div", {class: "plot fit-plot"});
      const meta = output.meta || {};
      plots.append(el("h4", {}, `Fit: ${output.description}`, " ", el("span", {class: "caption muted"},
        `${meta.model}${meta.absorbed ? " (absorbed)" : ""}, ${meta.statistic} = ${num(meta.stat, 7)} / ${meta.dof} dof`)),
      div, fitTable(meta));
      await draw(div, figure.traces, figure.layout, {});
    }
  }

  function fitPanel(job, outputs) {
    const fit = ctx.fitProduct();
    const spectra = outputs.filter((o) => o.kind === "spectrum");
    fitBox.hidden = !fit || !spectra.length;
    if (fitBox.hidden) return;
    const formBox = el("div");
    const button = el("button", {type: "button", class: "primary run-fit"}, `Fit (${fit.title})`);
    clear(fitBox).append(el("h4", {}, "Fit the spectrum"),
      el("p", {class: "muted"}, "The model and bands below; the data selection is the query's."), formBox,
      el("div", {class: "actions"}, button));
    const form = buildForm(formBox, fit.schema, ctx.values(), {
      only: fit.own, grouped: false, idPrefix: `${ctx.instrument}-fit`,
      onChange: () => ctx.update(form.read().values, fit.own),
      onSubmit: () => button.click(),
    });
    button.addEventListener("click", () => {
      const {values, problems} = form.read();
      if (problems.length) return form.showErrors(problems);
      ctx.update(values, fit.own);
      ctx.runFit(form);
    });
  }

  function downloadList(job, products) {
    const note = el("p", {class: "download-status", "aria-live": "polite"});
    // Decided at the click: a token set or forgotten after the list was drawn counts.
    const withToken = (fallbackName) => (event) => {
      if (!storedToken()) return;
      event.preventDefault();
      const url = event.currentTarget.href;
      note.classList.remove("failed");
      note.textContent = `Downloading ${fallbackName}…`;
      downloadWithToken(url, fallbackName).then((name) => {
        note.textContent = `Downloaded ${name}.`;
      }, (error) => {
        note.classList.add("failed");
        note.textContent = `The download failed: ${error.message}`;
      });
    };
    const rows = products.outputs.map((o) => el("tr", {dataset: {name: o.name}},
      el("td", {}, el("a", {href: o.url, download: o.name, class: "file", onclick: withToken(o.name)}, o.name)),
      el("td", {}, o.kind), el("td", {}, o.description), el("td", {class: "size"}, bytes(o.size))));
    clear(downloads).append(el("h4", {}, "Files"),
      el("table", {class: "files"}, el("thead", {}, el("tr", {},
        ["File (FITS)", "Kind", "Description", "Size"].map((t) => el("th", {}, t)))), el("tbody", {}, rows)),
      el("p", {}, el("a", {href: job.urls.archive, class: "button archive", download: "",
        onclick: withToken(`xoda-${job.instrument}-${job.product}-${job.job_id.slice(0, 12)}.tar.gz`)},
      "Download all (tar.gz, with job.json and reproduction scripts)")), note);
  }

  function linkPanel(job) {
    const input = el("input", {type: "text", readonly: true, class: "link", value: job.link, "aria-label": "reproducible link"});
    const copy = el("button", {type: "button", class: "copy-link"}, "Copy");
    const copied = el("span", {class: "copied muted", "aria-live": "polite"});
    copy.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(job.link);
      } catch (error) {
        // No clipboard API (e.g. plain http on a remote host): select and use the old command.
        input.select();
        document.execCommand("copy");
      }
      copied.textContent = "copied";
    });
    clear(linkBox).append(el("h4", {}, "Reproducible link"),
      el("p", {class: "muted"}, "Opening it runs the same query (from the cache when possible) and shows these results."),
      el("div", {class: "link-row"}, input, copy, el("a", {href: job.link, class: "open-link"}, "open"), copied),
      el("details", {}, el("summary", {}, "Python"), el("pre", {}, job.snippets.python)),
      el("details", {}, el("summary", {}, "oda_api"), el("pre", {}, job.snippets.oda_api)));
  }

  return {
    clear() {
      [plots, fitBox, downloads, linkBox].forEach((node) => clear(node));
      fitBox.hidden = true;
    },
    showError(message) {
      plots.prepend(el("p", {class: "job-error", role: "alert"}, message));
    },
    async show(job, products, {withPlots = true} = {}) {
      clear(plots);
      const outputs = products.outputs;
      downloadList(job, products);
      linkPanel(job);
      fitPanel(job, outputs);
      if (!withPlots) return;
      const of = (kind) => outputs.filter((o) => o.kind === kind && !(o.meta && o.meta.role === "raw"));
      if (of("fit").length) await fits(job, of("fit"));
      if (of("lightcurve").length) await lightcurves(job, of("lightcurve"));
      if (of("spectrum").length) await spectra(job, of("spectrum"));
    },
  };
}
