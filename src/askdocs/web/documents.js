// The Documents tab: the stored documents, uploads with progress, the ingest report.
// Everything the server sends is inserted with textContent or text nodes, never as HTML.

import { getJson, loadHealth, sleep, uploadFiles } from "./api.js";
import { $, describe, el, setStatus } from "./dom.js";

export async function loadDocuments() {
  const list = $("documents");
  try {
    const { documents } = await getJson("/documents");
    list.replaceChildren(...documents.map(renderDocument));
    $("documents-summary").textContent = documents.length
      ? `${documents.length} document(s).`
      : "No documents yet: upload some above.";
  } catch (error) {
    $("documents-summary").textContent = describe(error);
  }
}

function renderDocument(doc) {
  const remove = el("button", { type: "button", class: "danger", text: "Delete", "aria-label": `Delete ${doc.path}` });
  remove.addEventListener("click", async () => {
    if (!window.confirm(`Remove ${doc.path} from the knowledge base? The file itself is not touched.`)) return;
    try {
      const { removed } = await getJson(`/documents?path=${encodeURIComponent(doc.path)}`, { method: "DELETE" });
      setStatus(`Removed ${removed} document(s): ${doc.path}`);
      await Promise.all([loadDocuments(), loadHealth()]);
    } catch (error) {
      setStatus(describe(error), "error");
    }
  });
  const meta = [doc.kind, `${doc.chunks} chunk(s)`].filter(Boolean).join(" · ");
  return el(
    "li",
    { class: "card doc" },
    el("div", { class: "doc-text" }, el("h3", { text: doc.title || doc.path }), el("p", { class: "meta", text: doc.path }), el("p", { class: "muted", text: meta })),
    remove,
  );
}

export async function upload(event) {
  event.preventDefault();
  const files = [...$("files").files];
  if (!files.length) return;
  const button = $("upload-button");
  button.disabled = true;
  $("report").hidden = true;
  $("upload-progress-row").hidden = false;
  $("job-progress-row").hidden = true;
  $("upload-progress").value = 0;
  $("job-state").textContent = `Uploading ${files.length} file(s)…`;
  try {
    const { job_id: id } = await uploadFiles(files);
    $("job-progress-row").hidden = false;
    const job = await followJob(id);
    showReport(job);
    $("upload-form").reset();
    await Promise.all([loadDocuments(), loadHealth()]);
  } catch (error) {
    $("job-state").textContent = describe(error);
    setStatus(describe(error), "error");
  } finally {
    button.disabled = false;
  }
}

async function followJob(id) {
  const bar = $("job-progress");
  for (;;) {
    const job = await getJson(`/jobs/${encodeURIComponent(id)}`);
    bar.max = Math.max(1, job.files || 0);
    bar.value = job.done_files || 0;
    $("job-state").textContent =
      `Ingest ${job.state}: ${job.done_files || 0} of ${job.files || 0} file(s), ${job.chunks || 0} chunk(s).`;
    if (job.state === "done" || job.state === "failed") return job;
    await sleep(400);
  }
}

function showReport(job) {
  const box = $("report");
  box.replaceChildren();
  box.hidden = false;
  box.dataset.state = job.state;
  if (job.error) box.append(el("p", { class: "error", text: `Ingest failed: ${job.error}` }));
  const report = job.report;
  if (report) {
    const failed = report.failed || [];
    box.append(
      el("p", {
        id: "report-summary",
        text: `Added ${report.added}, updated ${report.updated}, unchanged ${report.unchanged}, removed ${report.removed}, failed ${failed.length}.`,
      }),
    );
    if (failed.length) {
      box.append(
        el("h3", { text: "Files that could not be read" }),
        el("ul", { class: "failed" }, ...failed.map((f) => el("li", {}, el("code", { text: f.path }), `: ${f.reason}`))),
      );
    }
  }
  $("job-state").textContent = job.state === "done" ? "Ingest finished." : "Ingest failed.";
  const failures = report?.failed?.length || 0;
  if (job.state !== "done") setStatus(`Ingest failed: ${job.error || "see the report"}`, "error");
  else if (failures) setStatus(`Ingest finished; ${failures} file(s) could not be read (see the report).`, "error");
  else setStatus(`Ingest finished: ${report ? report.added + report.updated : 0} document(s) added or updated.`);
}

