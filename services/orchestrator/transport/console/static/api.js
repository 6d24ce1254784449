// The HTTP API as the console calls it: the API key from the tab's session storage, the
// server's error messages shown with what to do about them.
const KEY = "ragmesh.apiKey";

export function apiKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, message, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

const ADVICE = {
  401: "Type a valid API key into the \u201cAPI key\u201d field above (your administrator issues keys with `ragmesh keys`).",
  403: "This key may not do that: pick one of your collections, or use a key that grants it (a write key for uploads and deletions).",
  404: "It does not exist (any more): refresh the list and pick another.",
  429: "Your tenant is over its request or stream quota: wait a moment and try again.",
  503: "The service is starting or a component is down: try again in a moment.",
};

export function headers(extra = {}) {
  const sent = { ...extra };
  const key = apiKey();
  if (key) sent.authorization = `Bearer ${key}`;
  return sent;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    message = (body.error && body.error.message) || message;
  } catch (_) {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, response.headers.get("retry-after"));
}

export async function call(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (!response.ok) throw await failure(response);
  return response;
}

export async function getJson(path, options = {}) {
  return (await call(path, options)).json();
}

export function showProblem(error) {
  const box = document.getElementById("problem");
  if (!error) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  box.textContent = "";
  const what = document.createElement("strong");
  what.textContent = error instanceof ApiError ? `${error.status}: ${error.message}` : String(error.message || error);
  box.append(what);
  const advice = error instanceof ApiError ? ADVICE[error.status] : null;
  if (advice) {
    const more = document.createElement("p");
    const wait = error.status === 429 && error.retryAfter ? ` (retry after ${error.retryAfter} s)` : "";
    more.textContent = advice + wait;
    box.append(more);
  }
  box.hidden = false;
  if (error instanceof ApiError && error.status === 401) {
    const form = document.getElementById("key-form");
    form.hidden = false;
    document.getElementById("api-key").focus();
  }
}

export function collectionPath(collection, rest = "") {
  return `/v1/collections/${encodeURIComponent(collection)}${rest}`;
}

export async function collections() {
  return (await getJson("/v1/collections")).collections;
}

export function element(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}
