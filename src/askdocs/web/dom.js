// DOM helpers shared by the page's modules.
// Everything the server sends is inserted with textContent or text nodes, never as HTML.

export const $ = (id) => document.getElementById(id);

// ---------- small DOM helpers ----------

export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function setStatus(message, kind = "info") {
  const status = $("status");
  status.textContent = message;
  status.dataset.kind = kind;
}

export function pageLabel(page) {
  return page === null || page === undefined ? "" : `page ${page}`;
}

export function describe(error) {
  if (error instanceof TypeError) return "Cannot reach the askdocs server. Is `askdocs serve` running?";
  return error && error.message ? error.message : String(error);
}

// Text with the given [start, end) ranges (offsets into `text`) wrapped in <mark>.
export function highlighted(text, ranges) {
  const merged = [];
  for (const [s, e] of ranges
    .map(([s, e]) => [Math.max(0, s), Math.min(text.length, e)])
    .filter(([s, e]) => e > s)
    .sort((a, b) => a[0] - b[0])) {
    const top = merged[merged.length - 1];
    if (top && s <= top[1]) top[1] = Math.max(top[1], e);
    else merged.push([s, e]);
  }
  const nodes = [];
  let cursor = 0;
  for (const [s, e] of merged) {
    nodes.push(document.createTextNode(text.slice(cursor, s)), el("mark", { text: text.slice(s, e) }));
    cursor = e;
  }
  nodes.push(document.createTextNode(text.slice(cursor)));
  return nodes;
}

// The named number fields of a form that are not empty, e.g. {k: 4}; empty ones are left out.
export function numbers(form, names) {
  const out = {};
  for (const [key, name] of Object.entries(names)) {
    const value = form.elements[name].value.trim();
    if (value !== "") out[key] = Number(value);
  }
  return out;
}
