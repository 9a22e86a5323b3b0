// askdocs web page: Ask (streamed, checked answers with citations), Search, Documents, Topics,
// Classify.
// Everything the server sends is inserted with textContent or text nodes, never as HTML.

import { getJson, loadHealth, saveToken, savedToken } from "./api.js";
import { ask, newConversation, stopAsking } from "./answer.js";
import { classifyDocuments } from "./classify.js";
import { loadDocuments, upload } from "./documents.js";
import { $, describe, el, numbers, pageLabel, setStatus } from "./dom.js";
import { setupDialog } from "./passage.js";
import { findTopics, loadTopics } from "./topics.js";

// ---------- tabs: a tablist with roving tabindex and arrow keys ----------

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab, focus) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      $(other.getAttribute("aria-controls")).hidden = !selected;
    }
    if (focus) tab.focus();
    if (tab.id === "tab-documents") loadDocuments();
    if (tab.id === "tab-topics") loadTopics();
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab, false));
    tab.addEventListener("keydown", (event) => {
      const at = tabs.indexOf(tab);
      const next = {
        ArrowRight: tabs[(at + 1) % tabs.length],
        ArrowLeft: tabs[(at - 1 + tabs.length) % tabs.length],
        Home: tabs[0],
        End: tabs[tabs.length - 1],
      }[event.key];
      if (next) {
        event.preventDefault();
        select(next, true);
      }
    });
  }
}

// ---------- Search ----------

// "topic=2" -> {topic: "2"}; empty -> null; anything else throws.
export function tagFilter(text) {
  const wanted = text.trim();
  if (!wanted) return null;
  const at = wanted.indexOf("=");
  if (at <= 0) throw new Error(`Write the tag as name=value (for example topic=2), not “${wanted}”.`);
  return { [wanted.slice(0, at).trim()]: wanted.slice(at + 1).trim() };
}

async function search(event) {
  event.preventDefault();
  const form = $("search-form");
  const query = form.elements.query.value.trim();
  if (!query) return;
  const summary = $("search-summary");
  const results = $("results");
  summary.textContent = "Searching…";
  try {
    const json = { query, mode: form.elements.mode.value, ...numbers(form, { k: "k" }) };
    const tags = tagFilter(form.elements.tag.value);
    if (tags) json.filters = { tags };
    const { hits } = await getJson("/search", { method: "POST", json });
    results.replaceChildren(...hits.map(renderHit));
    const within = tags ? ` in documents tagged ${form.elements.tag.value.trim()}` : "";
    summary.textContent = hits.length
      ? `${hits.length} result(s) for “${query}”${within}.`
      : `Nothing found for “${query}”${within}.`;
  } catch (error) {
    summary.textContent = describe(error);
    setStatus(describe(error), "error");
  }
}

function renderHit(hit) {
  const scores = Object.entries(hit.scores || {})
    .map(([name, value]) => `${name} ${Number(value).toFixed(3)}`)
    .join(", ");
  const meta = [hit.path, pageLabel(hit.page), `score ${Number(hit.score).toFixed(4)}`, scores && `(${scores})`]
    .filter(Boolean)
    .join(" · ");
  return el(
    "li",
    { class: "card hit" },
    el("h3", { text: hit.title || hit.path }),
    el("p", { class: "meta", text: meta }),
    hit.heading ? el("p", { class: "muted", text: hit.heading }) : null,
    el("p", { class: "snippet", text: hit.text }),
  );
}

// ---------- settings, start ----------

function setupSettings() {
  const input = $("token");
  input.value = savedToken();
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = input.value.trim();
    saveToken(token);
    $("settings").classList.remove("attention");
    $("settings").open = false;
    setStatus(token ? "Token saved for this tab." : "Token cleared.");
    loadHealth();
    loadDocuments();
  });
  $("token-clear").addEventListener("click", () => {
    saveToken("");
    input.value = "";
    setStatus("Token forgotten.");
  });
}

function start() {
  setupTabs();
  setupDialog();
  setupSettings();
  $("ask-form").addEventListener("submit", ask);
  $("ask-stop").addEventListener("click", stopAsking);
  $("new-conversation").addEventListener("click", newConversation);
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("ask-form").requestSubmit();
    }
  });
  $("search-form").addEventListener("submit", search);
  $("upload-form").addEventListener("submit", upload);
  $("documents-refresh").addEventListener("click", loadDocuments);
  $("topics-form").addEventListener("submit", findTopics);
  $("classify-form").addEventListener("submit", classifyDocuments);
  loadHealth();
}

start();
