// The Topics tab: find the topics of the stored documents (a background task with
// progress), then the map (each point a document, coloured by topic, its title on hover)
// and the topic table; choosing a topic lists its documents.
// Everything the server sends is inserted with textContent or text nodes, never as HTML.

import { getJson, waitForTask } from "./api.js";
import { $, describe, el, setStatus } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
// Okabe-Ito and Tableau colours, told apart by colour-blind readers; outliers are grey.
const PALETTE = [
  "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
  "#4E79A7", "#F28E2B", "#59A14F", "#E15759", "#B07AA1", "#76B7B2", "#EDC948", "#9C755F",
];
const OUTLIER = "#b8b8b8";

let shown = null; // the topics as GET /topics gave them
let selected = null; // the chosen topic id, or null

export const colour = (id) => (id < 0 ? OUTLIER : PALETTE[id % PALETTE.length]);

export async function loadTopics() {
  try {
    show(await getJson("/topics"));
  } catch (error) {
    if (error.status === 404) {
      shown = null;
      $("topics-summary").textContent = "No topics yet: choose “Find topics” to group the stored documents.";
      $("topics-table").replaceChildren();
      $("topic-map").replaceChildren();
      $("topic-documents").replaceChildren();
    } else {
      $("topics-summary").textContent = describe(error);
    }
  }
}

export async function findTopics(event) {
  event.preventDefault();
  const form = $("topics-form");
  const button = $("topics-button");
  const bar = $("topics-progress");
  const body = { seed: Number(form.elements.seed.value || 0) };
  const wanted = form.elements.n_topics.value.trim();
  if (wanted) body.n_topics = Number(wanted);
  if (form.elements.reassign.checked) body.reassign = true;
  if (form.elements.llm_labels.checked) body.label_with_llm = true;
  button.disabled = true;
  $("topics-progress-row").hidden = false;
  bar.value = 0;
  try {
    const { task_id: id } = await getJson("/topics", { method: "POST", json: body });
    await waitForTask(id, (task) => {
      bar.value = task.fraction || 0;
      $("topics-state").textContent = task.stage ? `${task.stage}…` : `Topics ${task.state}…`;
    });
    $("topics-state").textContent = "";
    await loadTopics();
    setStatus("Topics found and saved: searches can now filter by topic.");
  } catch (error) {
    $("topics-state").textContent = describe(error);
    setStatus(describe(error), "error");
  } finally {
    button.disabled = false;
    $("topics-progress-row").hidden = true;
  }
}

function show(data) {
  shown = data;
  selected = null;
  const outliers = data.outliers || 0;
  $("topics-summary").textContent =
    `${data.topics.length} topic(s) over ${data.documents} document(s); ` +
    `${outliers} document(s) fit no topic.`;
  $("topics-table").replaceChildren(...data.topics.map(topicRow));
  drawMap(data.points || []);
  $("topic-documents").replaceChildren();
}

function topicName(topic) {
  return topic.label || topic.keywords.slice(0, 4).join(", ") || `topic ${topic.id}`;
}

function topicRow(topic) {
  const swatch = el("span", { class: "swatch", "aria-hidden": "true" });
  swatch.style.background = colour(topic.id);
  const button = el(
    "button",
    { type: "button", class: "topic-choice", "aria-pressed": "false", dataset: { topic: String(topic.id) } },
    swatch,
    `${topicName(topic)} (${topic.size})`,
  );
  button.addEventListener("click", () => choose(topic.id));
  return el(
    "tr",
    {},
    el("td", {}, button),
    el("td", { class: "muted", text: topic.keywords.join(", ") }),
  );
}

function choose(id) {
  selected = selected === id ? null : id;
  for (const button of document.querySelectorAll(".topic-choice")) {
    button.setAttribute("aria-pressed", String(button.dataset.topic === String(selected)));
  }
  for (const dot of $("topic-map").querySelectorAll("circle")) {
    dot.classList.toggle("faded", selected !== null && dot.dataset.topic !== String(selected));
  }
  const list = $("topic-documents");
  if (selected === null) {
    list.replaceChildren();
    return;
  }
  const topic = shown.topics.find((t) => t.id === selected);
  const members = (shown.points || []).filter((p) => p.topic === selected);
  const searchHere = el("button", { type: "button", class: "secondary", text: "Search in this topic" });
  searchHere.addEventListener("click", () => {
    $("search-tag").value = `topic=${selected}`;
    $("tab-search").click();
    $("query").focus();
  });
  list.replaceChildren(
    el("h3", { id: "topic-documents-title", text: `${topicName(topic)}: ${members.length} document(s)` }),
    searchHere,
    el(
      "ul",
      { class: "cards", "aria-labelledby": "topic-documents-title" },
      ...members.map((p) => el("li", { class: "card doc" }, el("h4", { text: p.title || p.path }), el("p", { class: "meta", text: p.path }))),
    ),
  );
}

function drawMap(points) {
  const box = $("topic-map");
  if (!points.length) {
    box.replaceChildren();
    return;
  }
  const width = 640;
  const height = 420;
  const pad = 12;
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const sy = (y) => height - pad - ((y - y0) / (y1 - y0 || 1)) * (height - 2 * pad);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Map of ${points.length} documents coloured by topic`);
  // Outliers first, so the topics are drawn over them.
  const ordered = [...points].sort((a, b) => (a.topic < 0 ? -1 : 0) - (b.topic < 0 ? -1 : 0));
  for (const p of ordered) {
    const dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", sx(p.x).toFixed(1));
    dot.setAttribute("cy", sy(p.y).toFixed(1));
    dot.setAttribute("r", points.length > 2000 ? "2" : "3.5");
    dot.setAttribute("fill", colour(p.topic));
    dot.dataset.topic = String(p.topic);
    const title = document.createElementNS(SVG, "title");
    title.textContent = p.title || p.path;
    dot.append(title);
    if (p.topic >= 0) dot.addEventListener("click", () => choose(p.topic));
    svg.append(dot);
  }
  box.replaceChildren(svg);
}
