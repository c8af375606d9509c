// The REST API as the page uses it: JSON in and out, one error type carrying the server's
// problems ({parameter, path, reason}) so that forms can show each next to its field.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the server answered HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.problems = (body && body.errors) || [];
    this.body = body || {};
  }
}

async function answer(response) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (error) {
    body = {error: `unexpected answer from the server: ${text.slice(0, 200)}`};
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export async function getJSON(url, {signal} = {}) {
  return answer(await fetch(url, {headers: {Accept: "application/json"}, signal}));
}

export async function postJSON(url, data, {signal} = {}) {
  return answer(await fetch(url, {
    method: "POST", signal,
    headers: {"Content-Type": "application/json", Accept: "application/json"},
    body: JSON.stringify(data),
  }));
}

// Query string of a parameter object; arrays as repeated keys, as the API reads them.
export function queryString(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((item) => search.append(name, String(item)));
    else search.append(name, String(value));
  }
  return search.toString();
}

export function isRunning(job) {
  return job.status === "submitted" || job.status === "progress";
}

// Follows a job until it is done or failed, long-polling (the server answers as soon as the
// job finishes, or after `wait` seconds); onUpdate sees every state. Stops when aborted.
export async function followJob(api, job, onUpdate, signal, wait = 10) {
  let current = job;
  onUpdate(current);
  while (isRunning(current)) {
    current = await getJSON(`${api}/jobs/${current.job_id}?wait=${wait}`, {signal});
    if (signal && signal.aborted) break;
    onUpdate(current);
  }
  return current;
}
