// The REST API as the page uses it: JSON in and out, one error type carrying the server's
// problems ({parameter, path, reason}) so that forms can show each next to its field. Every
// call carries the tab's token, if any, as `Authorization: Bearer` (session.js); a refused
// token (401) is also announced to the token panel, and a 403 says only that the data are
// not available to the user, whatever the server's message.

import {authorization, notAvailableMessage, storedToken, TOKEN_REFUSED} from "./session.js";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the server answered HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.problems = (body && body.errors) || [];
    this.body = body || {};
  }
}

// `token`: the token the request carried (null for none), to know whether a 401 is about the
// stored one (announced) or about a token being checked before it is kept (not announced).
async function answer(response, token) {
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (error) {
    body = {error: `unexpected answer from the server: ${text.slice(0, 200)}`};
  }
  if (response.ok) return body;
  const error = new ApiError(response.status, body);
  if (response.status === 403) {
    error.message = notAvailableMessage();
    error.problems = [];
  } else if (response.status === 401 && token) {
    if (token === storedToken()) {
      document.dispatchEvent(new CustomEvent(TOKEN_REFUSED, {detail: {message: error.body.error || error.message}}));
    }
    error.message = `Your token was refused: ${error.message}`;
  }
  throw error;
}

// Options: signal (AbortSignal); token (check this token instead of the stored one; null: none).
export async function getJSON(url, {signal, token} = {}) {
  const sent = token === undefined ? storedToken() : token;
  return answer(await fetch(url, {headers: {Accept: "application/json", ...authorization(sent)}, signal}), sent);
}

export async function postJSON(url, data, {signal} = {}) {
  const sent = storedToken();
  return answer(await fetch(url, {
    method: "POST", signal,
    headers: {"Content-Type": "application/json", Accept: "application/json", ...authorization(sent)},
    body: JSON.stringify(data),
  }), sent);
}

// The file name of a Content-Disposition header (RFC 6266: filename* first, then filename).
export function attachmentName(header) {
  if (!header) return null;
  const extended = /filename\*\s*=\s*[^']*'[^']*'([^;]+)/i.exec(header);
  if (extended) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch (error) {
      // A badly encoded name: fall back to the plain parameter.
    }
  }
  const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/i.exec(header);
  return plain ? (plain[2] !== undefined ? plain[2] : plain[1].trim()) : null;
}

// A file the API serves, downloaded with the tab's token: a plain link cannot send a header,
// so the page fetches it and hands the browser a Blob URL under the file's own name (from
// the server's Content-Disposition, else `fallbackName`). The file passes through memory.
export async function downloadWithToken(url, fallbackName) {
  const sent = storedToken();
  const response = await fetch(url, {headers: authorization(sent)});
  if (!response.ok) await answer(response, sent);
  const blob = await response.blob();
  const name = attachmentName(response.headers.get("Content-Disposition")) || fallbackName;
  const href = URL.createObjectURL(blob);
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.download = name;
  anchor.hidden = true;
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  // The browser starts reading the blob after click() returns: release it a while later.
  setTimeout(() => URL.revokeObjectURL(href), 60000);
  return name;
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

// Follows a job until it is done or failed, long-polling: the server answers as soon as the
// job finishes or moves (a step ended), else after `wait` seconds, so the status table moves
// with the steps while an idle job costs one request per `wait`. onUpdate sees every state.
// Stops when aborted.
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
