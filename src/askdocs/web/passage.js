// The dialog that shows a cited passage in its document, the cited span in <mark>.
// Everything the server sends is inserted with textContent or text nodes, never as HTML.

import { getJson } from "./api.js";
import { $, describe, el, highlighted, pageLabel } from "./dom.js";

// The passage route returns the chunk (document offsets start..end) and a context around it:
// context.text is document.text[context.start:context.end] and contains the chunk.
function passageParts(data) {
  const context = data.context;
  if (!context || typeof context.text !== "string") return { ...data, before: "", after: "" };
  const from = Math.max(0, data.start - context.start);
  const to = Math.min(context.text.length, data.end - context.start);
  return { ...data, before: context.text.slice(0, from), after: context.text.slice(to) };
}

let shown = 0; // the latest passage asked for: a slower earlier answer must not replace it

export async function openPassage(citation, spans) {
  const ticket = ++shown;
  const dialog = $("passage-dialog");
  const body = $("passage-body");
  $("passage-title").textContent = `[${citation.number}] ${citation.title || citation.path}`;
  $("passage-meta").textContent = [citation.path, pageLabel(citation.page)].filter(Boolean).join(" · ");
  body.replaceChildren(el("p", { class: "muted", text: "Loading the passage…" }));
  body.setAttribute("aria-busy", "true");
  if (!dialog.open) dialog.showModal();
  try {
    const part = passageParts(await getJson(`/passages/${encodeURIComponent(citation.chunk_id)}`));
    if (ticket !== shown) return;
    const ranges = spans.map(([s, e]) => [s - part.start, e - part.start]);
    const nodes = [];
    if (part.before) nodes.push(el("span", { class: "context", text: part.before }));
    nodes.push(el("span", { class: "chunk" }, ...highlighted(part.text, ranges)));
    if (part.after) nodes.push(el("span", { class: "context", text: part.after }));
    body.replaceChildren(el("p", {}, ...nodes));
    const also = (part.paths || []).filter((p) => p !== part.path);
    const where = [part.path, pageLabel(part.page), part.heading, also.length && `also in ${also.join(", ")}`]
      .filter(Boolean)
      .join(" · ");
    if (where) $("passage-meta").textContent = where;
  } catch (error) {
    if (ticket !== shown) return;
    // Still show what the answer was based on: the excerpt carried by the citation itself.
    body.replaceChildren(
      el("p", { class: "muted", text: `Could not load the full passage (${describe(error)}). The excerpt the answer used:` }),
      el("p", {}, el("mark", { text: citation.text })),
    );
  } finally {
    if (ticket === shown) body.setAttribute("aria-busy", "false");
  }
  body.querySelector("mark")?.scrollIntoView({ block: "nearest" });
}

export function setupDialog() {
  const dialog = $("passage-dialog");
  $("passage-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
}

