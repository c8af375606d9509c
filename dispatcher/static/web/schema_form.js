// Forms generated from the JSON Schemas the API validates with: one field per parameter,
// with its title, unit, bounds, default and description; enums as menus, booleans as
// checkboxes, lists and [start, stop] interval lists as text. The shared vocabulary of
// dataserver.params gets a little more: a Resolve button by the source name (fills RA/DEC),
// and a time-format menu that converts the times on display (server-side, with astropy).
// The browser does not validate: the server does, and its problems are shown by the fields.

import {el, clear, num} from "./dom.js";
import {getJSON, queryString} from "./api.js";

const GROUPS = ["Source", "Time", "Energy band", "Parameters"];
const LONG_TEXT = 1000;      // strings allowed this long (expressions) get a text area

function types(prop) {
  if (prop.type === undefined) return [];
  return Array.isArray(prop.type) ? prop.type : [prop.type];
}

export function widgetOf(prop) {
  const kinds = types(prop);
  if (prop.enum) return "select";
  if (prop["x-time"]) return "time";
  if (kinds.includes("boolean")) return "checkbox";
  if (kinds.includes("array")) {
    const items = prop.items || {};
    return types(items).includes("array") ? "intervals" : "list";
  }
  if (kinds.includes("object")) return "json";
  // Text or a number (e.g. a date or mission seconds): a text field, the server reads either.
  if (!kinds.includes("string") && (kinds.includes("number") || kinds.includes("integer"))) return "number";
  return (prop.maxLength || 0) >= LONG_TEXT ? "long" : "text";
}

function groupOf(name, prop) {
  if (name === "src_name" || prop.title === "RA" || prop.title === "DEC") return "Source";
  if (prop["x-time"] || prop["x-time-formats"]) return "Time";
  if (prop.unit === "keV") return "Energy band";
  return "Parameters";
}

export function bounds(prop) {
  const parts = [];
  if (prop.minimum !== undefined) parts.push(`≥ ${num(prop.minimum)}`);
  else if (prop.exclusiveMinimum !== undefined) parts.push(`> ${num(prop.exclusiveMinimum)}`);
  if (prop.maximum !== undefined) parts.push(`≤ ${num(prop.maximum)}`);
  else if (prop.exclusiveMaximum !== undefined) parts.push(`< ${num(prop.exclusiveMaximum)}`);
  return parts.length ? parts.join(", ") + (prop.unit ? ` ${prop.unit}` : "") : "";
}

function helpOf(prop) {
  const parts = [prop.description || ""];
  const range = bounds(prop);
  if (range) parts.push(`range: ${range}`);
  if (prop.default !== undefined && !(Array.isArray(prop.default) && !prop.default.length)) {
    parts.push(`default: ${Array.isArray(prop.default) ? JSON.stringify(prop.default) : prop.default}`);
  }
  return parts.filter(Boolean).join(" · ");
}

function makeInput(id, prop, kind) {
  if (kind === "select") {
    const select = el("select", {id});
    if (prop.default === undefined) select.append(el("option", {value: ""}, "(any)"));
    for (const value of prop.enum) select.append(el("option", {value: String(value)}, String(value)));
    return select;
  }
  if (kind === "checkbox") return el("input", {id, type: "checkbox"});
  if (kind === "intervals" || kind === "json" || kind === "long") {
    return el("textarea", {id, rows: kind === "long" ? 2 : 3, spellcheck: "false", maxlength: prop.maxLength,
      placeholder: kind === "intervals" ? "start stop — one interval per line" : kind === "json" ? "{}" : undefined});
  }
  if (kind === "number") {
    return el("input", {id, type: "number", step: "any", min: prop.minimum, max: prop.maximum});
  }
  return el("input", {id, type: "text", spellcheck: "false", maxlength: prop.maxLength,
    placeholder: kind === "list" ? "comma-separated" : undefined});
}

function display(field, value) {
  const {input, kind} = field;
  if (kind === "checkbox") input.checked = Boolean(value);
  else if (value === undefined || value === null) input.value = "";
  else if (kind === "intervals") input.value = value.map((pair) => pair.join(" ")).join("\n");
  else if (kind === "list") input.value = Array.isArray(value) ? value.join(", ") : String(value);
  else if (kind === "json") input.value = JSON.stringify(value);
  else input.value = String(value);
}

function itemValue(text, items) {
  const kinds = types(items || {});
  if ((kinds.includes("number") || kinds.includes("integer")) && text !== "" && !Number.isNaN(Number(text))) {
    return Number(text);
  }
  return text;
}

// {value} or {problem}; value undefined means "not given" (the server fills the default).
function read(field) {
  const {input, kind, prop} = field;
  const text = kind === "checkbox" ? "" : input.value.trim();
  if (kind === "checkbox") return {value: input.checked};
  if (kind === "number") {
    if (input.validity.badInput) return {problem: "is not a number"};
    return {value: text === "" ? undefined : Number(text)};
  }
  if (text === "") return {value: undefined};
  if (kind === "list") return {value: text.split(/[\s,]+/).filter(Boolean).map((t) => itemValue(t, prop.items))};
  if (kind === "json") {
    try {
      return {value: JSON.parse(text)};
    } catch (error) {
      return {problem: "is not valid JSON"};
    }
  }
  if (kind === "intervals") {
    const pairs = [];
    const lines = text.split(/[\n;]+/).map((line) => line.trim()).filter(Boolean);
    for (const [index, line] of lines.entries()) {
      const numbers = line.split(/[\s,]+/).filter(Boolean).map(Number);
      if (numbers.length !== 2 || numbers.some(Number.isNaN)) {
        return {problem: `line ${index + 1} (“${line}”): expected two numbers, start and stop`};
      }
      pairs.push(numbers);
    }
    return {value: pairs};
  }
  const kinds = types(prop);
  if (kinds.includes("number") && text !== "" && Number.isFinite(Number(text))) return {value: Number(text)};
  return {value: text};
}

// Builds the form of `schema` into `container`. Options: idPrefix, only (names), hide
// (names), grouped (fieldsets by the vocabulary's groups), api and timesUrl (resolver and
// time conversion), onChange(name), onSubmit().
export function buildForm(container, schema, values, options = {}) {
  const properties = schema.properties || {};
  const hide = new Set(options.hide || []);
  const names = (options.only || Object.keys(properties)).filter((n) => properties[n] && !hide.has(n));
  const prefix = options.idPrefix || "form";
  const form = el("form", {class: "schema-form", novalidate: true});
  const general = el("ul", {class: "form-errors", role: "alert", hidden: true});
  form.append(general);
  const fields = new Map();
  const groups = new Map();

  for (const name of names) {
    const prop = properties[name];
    const kind = widgetOf(prop);
    const id = `${prefix}-${name}`;
    const input = makeInput(id, prop, kind);
    input.name = name;
    const unit = prop.unit ? el("span", {class: "unit"}, prop.unit) : null;
    const control = el("div", {class: "control"}, input);
    const hint = el("span", {class: "format-hint"});
    const help = el("div", {class: "help"}, helpOf(prop), " ", hint);
    const error = el("div", {class: "field-error", id: `${id}-error`, "aria-live": "polite"});
    const row = el("div", {class: `field field-${kind}`, dataset: {param: name}},
      el("label", {for: id}, prop.title || name, unit ? " " : "", unit), control, help, error);
    const field = {name, prop, kind, input, row, control, error, help, hint};
    fields.set(name, field);
    display(field, values[name] !== undefined ? values[name] : prop.default);
    input.addEventListener(kind === "checkbox" || kind === "select" ? "change" : "input", () => {
      row.classList.remove("invalid");
      error.textContent = "";
      if (options.onChange) options.onChange(name);
    });
    const group = options.grouped === false ? "" : groupOf(name, prop);
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(row);
  }
  const order = [...groups.keys()].sort((a, b) => GROUPS.indexOf(a) - GROUPS.indexOf(b));
  for (const group of order) {
    const grid = el("div", {class: "grid"}, groups.get(group));
    form.append(group ? el("fieldset", {}, el("legend", {}, group), grid) : grid);
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (options.onSubmit) options.onSubmit();
  });
  // Enter in a one-line field submits: the browser's implicit submission does nothing in a
  // form of several fields without a submit button (its buttons are outside, or "button").
  form.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.key !== "Enter" || event.isComposing || !options.onSubmit || target.tagName !== "INPUT" ||
      ["checkbox", "radio", "button", "submit"].includes(target.type)) return;
    event.preventDefault();
    options.onSubmit();
  });
  clear(container).append(form);

  const api = {
    element: form,
    fields,
    set(name, value) {
      const field = fields.get(name);
      if (field) display(field, value);
      if (field && field.prop["x-time-formats"]) field.input.dataset.current = field.input.value;
      if (field) updateHints();
    },
    // {values, problems}: typed values of the filled fields, and the ones that cannot be read.
    read() {
      const result = {};
      const problems = [];
      for (const field of fields.values()) {
        const {value, problem} = read(field);
        if (problem) problems.push({parameter: field.name, path: `/${field.name}`, reason: problem});
        else if (value !== undefined) result[field.name] = value;
      }
      return {values: result, problems};
    },
    clearErrors() {
      general.hidden = true;
      clear(general);
      for (const field of fields.values()) {
        field.row.classList.remove("invalid");
        field.error.textContent = "";
      }
    },
    // Each problem next to its field; the others (or all, if none matches) above the form.
    showErrors(problems, message) {
      api.clearErrors();
      let first = null;
      for (const problem of problems) {
        const name = problem.parameter || (problem.path || "").split("/")[1];
        const field = fields.get(name);
        if (field) {
          field.row.classList.add("invalid");
          field.error.textContent = [field.error.textContent, problem.reason].filter(Boolean).join("; ");
          first = first || field;
        } else {
          general.append(el("li", {}, name ? `${name}: ${problem.reason}` : problem.reason));
        }
      }
      if (!problems.length && message) general.append(el("li", {}, message));
      general.hidden = !general.children.length;
      const target = first ? first.row : general;
      if (target.scrollIntoView && (first || !general.hidden)) target.scrollIntoView({block: "center"});
      return first !== null;
    },
  };

  function timeFields(formatName) {
    return [...fields.values()].filter((f) => f.prop["x-time"] &&
      (f.prop["x-time"].format_parameter || "T_format") === formatName);
  }

  function updateHints() {
    for (const field of fields.values()) {
      if (!field.prop["x-time"]) continue;
      const formatField = fields.get(field.prop["x-time"].format_parameter || "T_format");
      const spec = formatField && (formatField.prop["x-time-formats"] || {})[formatField.input.value];
      field.hint.textContent = spec && spec.description ? `(${formatField.input.value}: ${spec.description})` : "";
    }
  }

  for (const field of fields.values()) {
    if (!field.prop["x-time-formats"]) continue;
    field.input.dataset.current = field.input.value;
    field.input.addEventListener("change", async () => {
      const from = field.input.dataset.current;
      const to = field.input.value;
      if (!options.timesUrl) {
        // No converter (e.g. a search form): the values are read in the new format.
        field.input.dataset.current = to;
        updateHints();
        return;
      }
      const params = {[field.name]: from, to};
      for (const time of timeFields(field.name)) params[time.name] = time.input.value.trim();
      try {
        const reply = await getJSON(`${options.timesUrl}?${queryString(params)}`);
        for (const [name, value] of Object.entries(reply.values)) display(fields.get(name), value);
        field.input.dataset.current = to;
        updateHints();
        if (options.onChange) [field.name, ...Object.keys(reply.values)].forEach((name) => options.onChange(name));
      } catch (error) {
        field.input.value = from;
        api.showErrors(error.problems && error.problems.length ? error.problems :
          [{parameter: field.name, reason: error.message}]);
      }
    });
  }
  updateHints();

  const source = fields.get("src_name");
  const ra = [...fields.values()].find((f) => f.prop.title === "RA");
  const dec = [...fields.values()].find((f) => f.prop.title === "DEC");
  if (source && ra && dec && options.api) {
    const button = el("button", {type: "button", class: "resolve"}, "Resolve");
    source.control.append(button);
    // `quiet`: RA/DEC are already filled (e.g. from a picked observation's pointing), so a
    // name the resolver does not know (a blank field, a new transient) is not an error.
    const resolve = async (quiet = false) => {
      const name = source.input.value.trim();
      button.disabled = true;
      try {
        const found = await getJSON(`${options.api}/resolve?${queryString({name})}`);
        display(ra, found.ra);
        display(dec, found.dec);
        source.error.textContent = "";
        source.row.classList.remove("invalid");
        source.hint.textContent = `→ ${found.name}: RA ${found.ra}, Dec ${found.dec} (${found.origin})`;
        if (options.onChange) ["src_name", ra.name, dec.name].forEach(options.onChange);
      } catch (error) {
        if (quiet && error.status === 404) {
          source.hint.textContent = `(not resolved: RA ${ra.input.value}, Dec ${dec.input.value} kept)`;
          return;
        }
        const suggestions = (error.body && error.body.suggestions) || [];
        source.row.classList.add("invalid");
        source.error.textContent = error.message + (suggestions.length && !error.message.includes(suggestions[0]) ?
          ` (close: ${suggestions.join(", ")})` : "");
      } finally {
        button.disabled = false;
      }
    };
    button.addEventListener("click", () => resolve());
    api.resolve = resolve;
  }
  return api;
}
