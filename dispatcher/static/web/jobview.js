// The job view, like the ODA status view: progress, and one row per data unit with one
// cell per analysis step (computed / restored from the cache / failed, the message as a
// tooltip, a failure's message in full). Redrawn from each job record the long poll brings.

import {el, clear, num} from "./dom.js";

const STATUS_TEXT = {submitted: "queued", progress: "running", done: "done", failed: "failed"};

function shortStep(step) {
  return step.includes(".") ? step.slice(step.lastIndexOf(".") + 1) : step;
}

export function createJobView(root) {
  const heading = el("h3", {class: "job-heading"});
  const bar = el("progress", {class: "job-progress", max: 1, value: 0});
  const counts = el("span", {class: "job-counts"});
  const errorBox = el("div", {class: "job-error", role: "alert", hidden: true});
  const table = el("div", {class: "table-box job-table"});
  const progressRow = el("div", {class: "job-bar"}, bar, counts);
  clear(root).append(heading, progressRow, errorBox, table);

  function renderError(job) {
    errorBox.hidden = !job.error;
    if (!job.error) return;
    const failures = job.error.failures || [];
    clear(errorBox).append(el("strong", {}, "The job failed: "), job.error.message,
      failures.length ? el("ul", {class: "failures"}, failures.map((failure) => el("li", {},
        failure.unit ? el("strong", {class: "unit"}, failure.unit) : "(no unit)", ", step ",
        el("code", {}, failure.step), ": ", el("span", {class: "message"}, failure.message)))) : null);
  }

  function renderTable(job) {
    const report = job.report || [];
    const running = job.status === "submitted" || job.status === "progress";
    if (!report.length) {
      clear(table).append(el("p", {class: "muted"},
        job.status === "submitted" ? "Waiting for a worker…" : "No step has finished yet."));
      return;
    }
    const steps = [...new Set(report.map((entry) => entry.step))];
    const labels = new Map((job.units || []).map((unit) => [unit.id, unit.label]));
    const units = [...(job.units || []).map((unit) => unit.id)];
    report.forEach((entry) => {
      const unit = entry.unit || "";
      if (!units.includes(unit)) units.push(unit);
    });
    const cell = new Map(report.map((entry) => [`${entry.unit || ""}\u0000${entry.step}`, entry]));
    // The failures themselves (the job's error lists them) get their message in full; the
    // steps that failed only because an input did say so briefly (the message is the tooltip).
    const roots = new Set(((job.error && job.error.failures) || []).map((f) => `${f.unit || ""}\u0000${f.step}`));
    const inFull = (entry) => !roots.size || roots.has(`${entry.unit || ""}\u0000${entry.step}`);
    const head = el("tr", {}, el("th", {}, "Data unit"),
      steps.map((step) => el("th", {title: step}, shortStep(step))));
    const rows = units.map((unit) => el("tr", {dataset: {unit}},
      el("th", {title: labels.get(unit) || ""}, unit || "all units"),
      steps.map((step) => {
        const entry = cell.get(`${unit}\u0000${step}`);
        // A step this unit does not run, or one not reached yet.
        if (!entry) return running ? el("td", {class: "pending", title: "not yet"}, "·") : el("td", {class: "none"});
        const elapsed = entry.elapsed_s !== null && entry.elapsed_s !== undefined ? ` (${num(entry.elapsed_s, 2)} s)` : "";
        return el("td", {class: entry.state, title: `${entry.step} v${entry.version}: ${entry.message}${elapsed}`},
          entry.state, entry.state !== "failed" ? null : inFull(entry) ? el("div", {class: "message"}, entry.message) :
            el("div", {class: "message upstream"}, "(an input failed)"));
      })));
    clear(table).append(el("table", {class: "status"}, el("thead", {}, head), el("tbody", {}, rows)));
  }

  return {
    // A message instead of a job (no job to show: unavailable, or not available to the user).
    showError(message) {
      clear(heading);
      clear(table);
      progressRow.hidden = true;
      errorBox.hidden = false;
      clear(errorBox).append(message);
    },
    show(job) {
      const progress = job.progress || {};
      progressRow.hidden = false;
      clear(heading).append(`${job.instrument} / ${job.product}: `,
        el("span", {class: `badge status-${job.status}`, id: "job-status"}, STATUS_TEXT[job.status] || job.status),
        el("small", {class: "muted"}, ` job ${job.job_id.slice(0, 12)}…`));
      bar.max = Math.max(1, progress.steps_total || 0);
      bar.value = progress.steps_done || 0;
      const elapsed = job.elapsed_s ? ` · ${num(job.elapsed_s, 3)} s` : "";
      counts.textContent = `${progress.steps_done || 0} of ${progress.steps_total || 0} steps · ` +
        `${progress.computed || 0} computed · ${progress.restored || 0} restored · ${progress.failed || 0} failed · ` +
        `units ${progress.units_done || 0}/${progress.units_total || 0}${elapsed}`;
      renderError(job);
      renderTable(job);
    },
  };
}
