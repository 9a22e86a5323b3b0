// Talking to the askdocs server: the bearer token, JSON requests, uploads, health.
// Everything the server sends is inserted with textContent or text nodes, never as HTML.

import { $, describe, setStatus } from "./dom.js";

const TOKEN_KEY = "askdocs.token";
const NEED_TOKEN = "This server needs a valid API token: enter it under Settings, save, and try again.";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function authHeaders(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

export function needToken() {
  const settings = $("settings");
  settings.open = true;
  settings.classList.add("attention");
  $("token-note").textContent =
    "This server needs an API token (the one given to `askdocs serve --token`). Enter it, save, and try again.";
  $("token").focus();
  setStatus(NEED_TOKEN, "error");
}

export function errorText(status, payload) {
  if (status === 401) return NEED_TOKEN;
  if (payload && typeof payload === "object") {
    if (typeof payload.error === "string") return payload.error;
    if (typeof payload.detail === "string") return payload.detail;
    if (Array.isArray(payload.detail)) return payload.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  }
  return `The server answered ${status}.`;
}

async function failure(response) {
  if (response.status === 401) needToken();
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = null;
  }
  return new ApiError(response.status, errorText(response.status, payload));
}

export async function api(path, { method = "GET", json, signal, accept } = {}) {
  const headers = authHeaders(json === undefined ? {} : { "Content-Type": "application/json" });
  if (accept) headers.Accept = accept;
  const response = await fetch(path, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    signal,
  });
  if (!response.ok) throw await failure(response);
  return response;
}

export async function getJson(path, options) {
  return (await api(path, options)).json();
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Poll a background task (GET /tasks/{id}) until it is done, telling `onProgress(task)` of
// each state; its result, or an Error with the task's own message when it failed.
export async function waitForTask(id, onProgress) {
  for (;;) {
    const task = await getJson(`/tasks/${encodeURIComponent(id)}`);
    onProgress(task);
    if (task.state === "failed") throw new Error(task.error || `the ${task.kind} task failed`);
    if (task.state === "done") return task.result;
    await sleep(500);
  }
}

// XMLHttpRequest rather than fetch: only it reports upload progress.
export function uploadFiles(files) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    const data = new FormData();
    for (const file of files) data.append("files", file, file.name);
    request.open("POST", "/documents");
    for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
    request.responseType = "json";
    const bar = $("upload-progress");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = Math.round((100 * event.loaded) / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) {
        bar.value = 100;
        resolve(request.response);
      } else {
        if (request.status === 401) needToken();
        reject(new ApiError(request.status, errorText(request.status, request.response)));
      }
    });
    request.addEventListener("error", () => reject(new TypeError("network error")));
    request.send(data);
  });
}

export let modelStatus = "";

export async function loadHealth() {
  try {
    const health = await getJson("/health");
    modelStatus = health.generator;
    $("health").textContent =
      `${health.documents} document(s) · ${health.chunks} chunk(s) · language model: ${health.generator}`;
  } catch (error) {
    $("health").textContent = describe(error);
  }
}


export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function saveToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}
