// Plotly figures of the products, from the tables of /api/v1/jobs/<id>/products/<name>/data:
// light curves with errors (times from T0, stated in the axis title), spectra per keV with
// their scaled background, fits (data, folded model, residuals) and GTIs over a light curve.
// Plotly comes from the server's /web/plotly.min.js (the plotly package's own bundle).

const CONFIG = {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d"]};
const COLORS = {source: "#1f77b4", total: "#1f77b4", raw: "#1f77b4", background: "#8c8c8c",
  bkg: "#8c8c8c", net: "#d62728", model: "#d62728"};
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"];

export function draw(div, traces, layout, config = {}) {
  if (!window.Plotly) {
    div.textContent = "Plots need /web/plotly.min.js, which did not load.";
    return Promise.resolve(div);
  }
  const base = {margin: {t: 36, r: 16, b: 56, l: 72}, hovermode: "closest",
    legend: {orientation: "h", y: 1.12}, font: {size: 12}};
  return window.Plotly.react(div, traces, {...base, ...layout}, {...CONFIG, ...config});
}

// T0 of a set of timed tables, and the x-axis title that names it.
export function timeOrigin(tables) {
  const refs = tables.map((t) => t.time_reference).filter((r) => r && r.t0 !== null);
  if (!refs.length) return {t0: 0, title: "Time"};
  const first = refs.reduce((a, b) => (b.t0 < a.t0 ? b : a));
  const unit = first.timeunit || "s";
  const when = first.t0_iso ? ` = ${first.t0_iso} UTC` : "";
  const t0 = Number(first.t0.toFixed(3));
  return {t0: first.t0, title: `Time − T0 (${unit}), T0 = ${t0} ${unit} ${first.timesys || ""}${when}`};
}

// Log axes with every tick labelled by its value ("20", "50", "200" keV), not Plotly's
// default of a decade's number with bare small digits between ("2 3 … 9 100 2 3"), which
// reads as 2 keV when no decade is in view.
const LOG = {type: "log", tickformat: "~g"};

function errorBars(values) {
  return {type: "data", array: values, visible: true, thickness: 1, width: 0};
}

export function lightcurveFigure(curves) {
  const origin = timeOrigin(curves.map((c) => c.data));
  const traces = curves.map(({label, role, data}, index) => ({
    type: "scatter", mode: data.rows > 4000 ? "lines" : "markers", name: label,
    x: data.columns.time.map((t) => t - origin.t0), y: data.columns.rate,
    error_y: errorBars(data.columns.error),
    marker: {size: 3, color: COLORS[role] || PALETTE[index % PALETTE.length]}, line: {width: 1},
  }));
  const binned = curves.some((c) => c.data.binning > 1) ? " (rebinned for display)" : "";
  return {traces, layout: {xaxis: {title: {text: origin.title}, zeroline: false},
    yaxis: {title: {text: `Rate (count/s)${binned}`}}}};
}

function centres(data) {
  const lo = data.columns.e_min;
  const hi = data.columns.e_max;
  return {x: lo.map((e, i) => 0.5 * (e + hi[i])), half: lo.map((e, i) => 0.5 * (hi[i] - e))};
}

export function spectrumFigure(data, label) {
  const hasEnergy = Boolean(data.columns.e_min);
  const axis = hasEnergy ? centres(data) : {x: data.columns.channel, half: null};
  const trace = (y, err, name, color) => ({type: "scatter", mode: "markers", name, x: axis.x, y,
    error_y: errorBars(err), error_x: axis.half ? {...errorBars(axis.half)} : undefined,
    marker: {size: 4, color}});
  const traces = [trace(data.columns.rate, data.columns.error, label || "source", COLORS.source)];
  if (data.columns.background) {
    traces.push(trace(data.columns.background, data.columns.background_error, "background (scaled)", COLORS.background));
  }
  return {traces, layout: {
    xaxis: {title: {text: hasEnergy ? "Energy (keV)" : "Channel"}, ...(hasEnergy ? LOG : {type: "linear"})},
    yaxis: {title: {text: `Rate (${data.units.rate})`}, ...LOG}}};
}

function steps(lo, hi, values) {
  const x = [];
  const y = [];
  lo.forEach((e, i) => {
    x.push(e, hi[i], null);
    y.push(values[i], values[i], null);
  });
  return {x, y};
}

export function fitFigure(data) {
  const c = data.columns;
  const {x, half} = centres(data);
  const model = steps(c.e_min, c.e_max, c.model);
  const traces = [
    {type: "scatter", mode: "markers", name: "data (net)", x, y: c.data, error_y: errorBars(c.data_error),
      error_x: errorBars(half), marker: {size: 4, color: COLORS.source}},
    {type: "scatter", mode: "lines", name: "folded model", x: model.x, y: model.y,
      line: {color: COLORS.model, width: 2}, connectgaps: false},
    {type: "scatter", mode: "markers", name: "residuals", x, y: c.residual, yaxis: "y2", showlegend: false,
      error_y: errorBars(c.residual.map(() => 1)), error_x: errorBars(half), marker: {size: 4, color: COLORS.source}},
  ];
  if (c.background && c.background.some((v) => v > 0)) {
    const bkg = steps(c.e_min, c.e_max, c.background);
    traces.splice(2, 0, {type: "scatter", mode: "lines", name: "background", x: bkg.x, y: bkg.y,
      line: {color: COLORS.background, width: 1}, connectgaps: false});
  }
  return {traces, layout: {
    xaxis: {title: {text: "Energy (keV)"}, ...LOG, anchor: "y2"},
    yaxis: {title: {text: `Rate (${data.units.data || "count/s/keV"})`}, ...LOG, domain: [0.34, 1]},
    yaxis2: {title: {text: "(data − model)/σ"}, domain: [0, 0.26], zeroline: true, zerolinecolor: COLORS.model}}};
}

// A light curve with good intervals shaded (and pending user intervals outlined); box
// selection along time is enabled so the GTI step can take new intervals from the plot.
// Returns the figure and its T0, to turn selected x ranges back into absolute times.
export function gtiFigure(curve, intervals, userIntervals) {
  const origin = timeOrigin([curve]);
  const t0 = origin.t0;
  const trace = {type: "scatter", mode: curve.rows > 4000 ? "lines" : "markers", name: "raw rate",
    x: curve.columns.time.map((t) => t - t0), y: curve.columns.rate, error_y: errorBars(curve.columns.error),
    marker: {size: 3, color: COLORS.raw}, line: {width: 1}};
  const shade = (pair, style) => ({type: "rect", xref: "x", yref: "paper", x0: pair[0] - t0, x1: pair[1] - t0,
    y0: 0, y1: 1, layer: "below", ...style});
  const shapes = [
    ...intervals.map((pair) => shade(pair, {fillcolor: "rgba(40, 167, 69, 0.18)", line: {width: 0}})),
    ...userIntervals.map((pair) => shade(pair, {fillcolor: "rgba(0, 0, 0, 0)",
      line: {color: "#e67e00", width: 2, dash: "dash"}})),
  ];
  return {t0, traces: [trace], layout: {shapes, dragmode: "select", selectdirection: "h", showlegend: false,
    xaxis: {title: {text: origin.title}}, yaxis: {title: {text: "Rate (count/s)"}}}};
}
