// The Classify tab: label the stored documents with labels the reader names, by meaning
// (the labels' embeddings) or by the language model, and optionally keep each document's
// label as a tag that searches can filter on.
// Everything the server sends is inserted with textContent or text nodes, never as HTML.

import { getJson, waitForTask } from "./api.js";
import { $, describe, el, setStatus } from "./dom.js";

// One label per line, or comma-separated on one line; blanks and repeats dropped.
export function parseLabels(text) {
  const parts = text.includes("\n") ? text.split("\n") : text.split(",");
  return [...new Set(parts.map((part) => part.trim()).filter(Boolean))];
}

export async function classifyDocuments(event) {
  event.preventDefault();
  const form = $("classify-form");
  const labels = parseLabels(form.elements.labels.value);
  if (labels.length < 2) {
    $("classify-summary").textContent = "Name two labels or more, one per line.";
    return;
  }
  const body = { method: form.elements.method.value, labels, from_store: { unit: "document" } };
  const floor = form.elements.min_score.value.trim();
  if (floor !== "" && body.method === "zero-shot") body.min_score = Number(floor);
  const tag = form.elements.tag.value.trim();
  if (tag) body.write_tag = tag;
  if (form.elements.learn.checked && body.method === "zero-shot") body.self_train = true;
  const button = $("classify-button");
  button.disabled = true;
  $("classify-summary").textContent =
    body.method === "llm" ? "Asking the language model about each document…" : "Labelling…";
  try {
    const [found, listed] = await Promise.all([labelled(body), getJson("/documents")]);
    const titles = new Map(listed.documents.map((d) => [d.path, d.title]));
    show(found, labels, titles, tag);
    if (tag) setStatus(`Labels saved as the tag “${tag}”: searches can now filter on it.`);
  } catch (error) {
    $("classify-summary").textContent = describe(error);
    setStatus(describe(error), "error");
  } finally {
    button.disabled = false;
    $("classify-progress-row").hidden = true;
  }
}

// POST /classify's answer; with self-training, that of the background task it starts.
async function labelled(body) {
  const answer = await getJson("/classify", { method: "POST", json: body });
  if (!body.self_train) return answer;
  const bar = $("classify-progress");
  bar.value = 0;
  $("classify-progress-row").hidden = false;
  return waitForTask(answer.task_id, (task) => {
    bar.value = task.fraction || 0;
    $("classify-summary").textContent = task.stage ? `${task.stage}…` : `Learning: ${task.state}…`;
  });
}

function show(found, labels, titles, tag) {
  const predictions = found.predictions;
  const counts = new Map(labels.map((label) => [label, 0]));
  let none = 0;
  for (const p of predictions) {
    if (p.label === null) none += 1;
    else counts.set(p.label, (counts.get(p.label) || 0) + 1);
  }
  const parts = [...counts].map(([label, n]) => `${label}: ${n}`);
  if (none) parts.push(`none of these: ${none}`);
  const saved = tag ? ` Saved as the tag “${tag}” on ${found.tagged} document(s).` : "";
  $("classify-summary").textContent = `${predictions.length} document(s) labelled. ${parts.join(" · ")}.${saved}`;
  const ordered = [...predictions].sort((a, b) => b.score - a.score);
  $("classify-table").replaceChildren(
    ...ordered.map((p) =>
      el(
        "tr",
        { dataset: { label: p.label ?? "" } },
        el("td", {}, el("span", { text: titles.get(p.id) || p.id }), el("span", { class: "meta block", text: p.id })),
        el("td", { class: "label-cell", text: p.label ?? "none of these" }),
        el("td", { class: "number nowrap", text: Number(p.score).toFixed(2) }),
      ),
    ),
  );
}
