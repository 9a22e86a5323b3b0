// The Ask tab: a streamed answer, then the checked answer with clickable citations.
// Everything the server sends is inserted with textContent or text nodes, never as HTML.

import { api, loadHealth, modelStatus } from "./api.js";
import { $, describe, el, numbers, pageLabel, setStatus } from "./dom.js";
import { openPassage } from "./passage.js";
import { readEvents } from "./sse.js";

let asking = null; // the AbortController of the answer being streamed
// The conversation: each earlier question as it was searched for (the server makes a
// follow-up such as "And how long does it keep?" standalone from these), most recent last.
const history = [];

export function newConversation() {
  history.length = 0;
  $("thread").replaceChildren();
  $("answer").replaceChildren();
  $("answer-state").textContent = "";
  $("sources").hidden = true;
  $("new-conversation").hidden = true;
}

// The answer on screen moves up into the thread before the next question is asked.
function keepInThread() {
  const current = $("answer");
  const state = current.dataset.state;
  if (!current.dataset.question || (state !== "answered" && state !== "refused")) return;
  const item = el("li", { class: "turn" }, el("p", { class: "turn-question", text: current.dataset.question }));
  for (const node of [...current.childNodes]) {
    if (node.id) node.removeAttribute("id");
    item.append(node);
  }
  $("thread").append(item);
}

export function stopAsking() {
  asking?.abort();
}

// Empty fields are left out: the server then uses its configured defaults.
function decodingFrom(form) {
  return numbers(form, { temperature: "temperature", top_k: "top_k", top_p: "top_p", max_tokens: "max_tokens" });
}

function setAsking(busy) {
  $("answer-region").setAttribute("aria-busy", String(busy));
  $("ask-button").disabled = busy;
  $("ask-stop").hidden = !busy;
}

export async function ask(event) {
  event.preventDefault();
  const form = $("ask-form");
  const question = form.elements.question.value.trim();
  if (!question) return;
  asking?.abort();
  asking = new AbortController();
  keepInThread();
  const body = {
    question,
    history: [...history],
    style: form.elements.style.value,
    mode: form.elements.mode.value,
    ...numbers(form, { k: "k" }),
    strict: form.elements.strict.checked,
    extractive: form.elements.extractive.checked,
    stream: true,
    decoding: decodingFrom(form),
  };
  const answer = $("answer");
  answer.replaceChildren();
  answer.dataset.question = question;
  answer.dataset.state = "streaming";
  answer.dataset.tokens = "0"; // how many tokens were streamed: shown in tests and in the facts
  $("sources").hidden = true;
  $("answer-state").textContent =
    !body.extractive && modelStatus === "not loaded"
      ? "Loading the language model (the first answer only, about 10 s)…"
      : "Searching the documents…";
  setAsking(true);
  let draft = null;
  let finished = false;
  try {
    const response = await api("/ask", {
      method: "POST",
      json: body,
      signal: asking.signal,
      accept: "text/event-stream",
    });
    await readEvents(response.body, (name, data) => {
      if (name === "passages") {
        $("answer-state").textContent = `Answering from ${data.passages.length} passage(s)…`;
        showSources(data.passages, "Passages being read");
      } else if (name === "token") {
        if (!draft) {
          draft = el("p", { class: "draft", id: "draft" });
          answer.append(draft);
        }
        draft.append(document.createTextNode(data.text));
        answer.dataset.tokens = String(Number(answer.dataset.tokens) + 1);
      } else if (name === "final") {
        finished = true;
        const final = data.answer ?? data;
        history.push(final.question || question);
        $("new-conversation").hidden = false;
        renderAnswer(final);
        if (final.question && final.question !== question) {
          answer.prepend(el("p", { class: "muted searched", text: `Searched for: ${final.question}` }));
        }
      } else if (name === "error") {
        finished = true;
        showAnswerError(data.error || "The answer failed.");
      }
    });
    if (!finished) showAnswerError("The answer stream ended before the final answer arrived.");
  } catch (error) {
    if (error.name === "AbortError") {
      $("answer-state").textContent = "Stopped.";
      answer.dataset.state = "stopped";
    } else showAnswerError(describe(error));
  } finally {
    setAsking(false);
    if (!body.extractive) loadHealth(); // the model is loaded on the first generated answer
  }
}

function showAnswerError(message) {
  $("answer-state").textContent = "";
  $("answer").dataset.state = "error";
  $("answer").replaceChildren(el("p", { class: "error", text: message }));
  setStatus(message, "error");
}

// `[1]`, `[1, 2]` and `[1][2]` in the answer text become buttons that open the passage.
const MARKER = /\[(\d+(?:\s*,\s*\d+)*)\]/g;

function citeButton(number, citation, spans) {
  const button = el("button", {
    type: "button",
    class: "cite",
    text: `[${number}]`,
    dataset: { n: number },
    "aria-label": citation ? `Source ${number}: ${citation.title || citation.path}` : `Source ${number} (missing)`,
  });
  // Hovering a marker previews what it cites: the title, the page and the passage's text.
  if (citation) button.title = [citation.title || citation.path, pageLabel(citation.page), citation.text].filter(Boolean).join(" · ");
  if (citation) button.addEventListener("click", () => openPassage(citation, spans));
  else {
    button.disabled = true;
    button.classList.add("missing");
  }
  return button;
}

function withMarkers(text, byNumber, spansFor) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(MARKER)) {
    parts.push(text.slice(last, match.index));
    for (const n of match[1].split(",").map((s) => Number(s.trim()))) {
      parts.push(citeButton(n, byNumber.get(n), spansFor(n)));
    }
    last = match.index + match[0].length;
  }
  parts.push(text.slice(last));
  return parts;
}

function citationSpans(citation) {
  if (!citation) return [];
  return citation.spans?.length ? citation.spans : [[citation.start, citation.end]];
}

function renderAnswer(answer) {
  const box = $("answer");
  const known = [...(answer.passages || []), ...(answer.citations || [])];
  const byNumber = new Map(known.map((c) => [c.number, c]));
  box.replaceChildren();
  box.dataset.state = answer.answered ? "answered" : "refused";
  box.dataset.mode = answer.mode || "";
  if (!answer.answered) {
    box.append(
      el("p", { class: "refusal" }, el("strong", { text: "Not in the documents. " }), answer.text || ""),
    );
    if (answer.reason) box.append(el("p", { class: "muted", text: `Why: ${answer.reason}` }));
    if (answer.draft) {
      box.append(
        el("details", { class: "draft-box" }, el("summary", { text: "What the model wrote (not supported)" }), el("p", { class: "draft", text: answer.draft })),
      );
    }
    $("answer-state").textContent = "The documents do not answer this question.";
    showSources(answer.passages?.length ? answer.passages : answer.citations || [], "Closest passages");
    return;
  }
  const paragraph = el("p", { class: "final", id: "final-answer" });
  const sentences = answer.sentences || [];
  const aligned = sentences.every((s) => answer.text.slice(s.start, s.end) === s.text);
  let unsupported = 0;
  let cursor = 0;
  for (const sentence of sentences) {
    if (aligned) paragraph.append(answer.text.slice(cursor, sentence.start));
    else if (cursor) paragraph.append(" ");
    cursor = sentence.end;
    paragraph.append(renderSentence(sentence, byNumber));
    if (!sentence.supported) unsupported += 1;
  }
  if (!sentences.length) paragraph.append(...withMarkers(answer.text, byNumber, (n) => citationSpans(byNumber.get(n))));
  else if (aligned) paragraph.append(answer.text.slice(cursor));
  box.append(paragraph);
  if (answer.note) box.append(el("p", { class: "muted", id: "answer-note", text: `Note: ${answer.note}.` }));
  if (answer.draft && answer.draft !== answer.text) {
    box.append(
      el("details", { class: "draft-box" }, el("summary", { text: "What the model wrote before the check" }), el("p", { class: "draft", text: answer.draft })),
    );
  }
  const seconds = answer.timings?.total;
  const corrected = sentences.filter((s) => s.supported && s.added?.length).length;
  const facts = [
    {
      extractive: "Quoted from the documents",
      compared: "Dates read from the passages and compared",
      summary: "A summary quoted from the document",
      steps: "Steps quoted from the document",
      chained: "Read from the passages, one link at a time",
      table: "Rows read from a table in the documents",
    }[answer.mode] ?? "Generated answer, checked against the passages",
    unsupported
      ? `${unsupported} sentence(s) not supported by the passages they cite`
      : corrected
        ? `every sentence is supported; ${corrected} citation(s) corrected by the checker`
        : "every sentence is supported by the passage it cites",
    seconds === undefined ? "" : `${seconds.toFixed(1)} s`,
  ].filter(Boolean);
  box.append(el("p", { class: "muted", id: "answer-facts", text: facts.join(" · ") }));
  box.append(copyButton(answer));
  $("answer-state").textContent = "Answer:";
  showSources(answer.citations || [], "Sources");
}

// Copies the answer with its numbered sources underneath, as plain text.
function copyButton(answer) {
  const button = el("button", { type: "button", class: "secondary copy", text: "Copy answer" });
  button.addEventListener("click", async () => {
    const sources = (answer.citations || []).map(
      (c) => `[${c.number}] ${[c.title || c.path, c.path, pageLabel(c.page)].filter(Boolean).join(", ")}`,
    );
    const text = [answer.text, "", ...sources].join("\n").trim();
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed: select the text instead";
    }
  });
  return button;
}

function renderSentence(sentence, byNumber) {
  const spansFor = (n) => {
    const ev = sentence.evidence;
    return ev && ev[0] === n ? [[ev[1], ev[2]]] : citationSpans(byNumber.get(n));
  };
  const span = el("span", { class: sentence.supported ? "sentence" : "sentence unsupported" });
  span.append(...withMarkers(sentence.text, byNumber, spansFor));
  const shown = new Set([...sentence.text.matchAll(MARKER)].flatMap((m) => m[1].split(",").map(Number)));
  const added = (sentence.added || []).filter((n) => !shown.has(n));
  if (added.length) {
    span.append(" ", el("span", { class: "added", text: "(source found by the checker: " }));
    for (const n of added) span.append(citeButton(n, byNumber.get(n), spansFor(n)));
    span.append(el("span", { class: "added", text: ")" }));
  }
  if (!sentence.supported) {
    const why = sentence.problems?.length ? sentence.problems.join("; ") : "not supported by the cited passages";
    span.append(" ", el("span", { class: "flag", text: `⚠ Unsupported: ${why}` }));
  }
  return span;
}

function showSources(citations, title) {
  $("sources-title").textContent = title;
  const list = $("sources-list");
  list.replaceChildren();
  for (const citation of citations) {
    const meta = [citation.path, pageLabel(citation.page)].filter(Boolean).join(" · ");
    const open = el("button", {
      type: "button",
      class: "secondary",
      text: "Open passage",
      "aria-label": `Open passage ${citation.number}: ${citation.title || citation.path}`,
    });
    open.addEventListener("click", () => openPassage(citation, citationSpans(citation)));
    list.append(
      el(
        "li",
        { class: "card" },
        el("h3", {}, el("span", { class: "num", text: `[${citation.number}] ` }), citation.title || citation.path),
        el("p", { class: "meta", text: meta }),
        el("p", { class: "snippet", text: citation.text }),
        open,
      ),
    );
  }
  $("sources").hidden = citations.length === 0;
}

