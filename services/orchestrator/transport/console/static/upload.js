// The Upload page: files dropped or picked become one ingestion job; each file's state is
// followed until the job ends (rejected files show why).
import { call, collectionPath, collections, element, getJson, showProblem } from "./api.js";

const ACCEPTED = [".pdf", ".docx", ".html", ".htm", ".md", ".markdown"];
const MAX_FILE_BYTES = 16 * 1024 * 1024;
const POLL_MS = 500;
const MAX_POLLS = 1200; // ten minutes at most

let picked = [];

function byId(id) {
  return document.getElementById(id);
}

export async function showUpload() {
  const names = (await collections()).map((c) => c.name);
  byId("collection-names").replaceChildren(...names.map((name) => element("option", null, { value: name })));
}

function problem(file) {
  const name = file.name.toLowerCase();
  if (!ACCEPTED.some((suffix) => name.endsWith(suffix))) return `not a PDF, DOCX, HTML or Markdown file`;
  if (file.size > MAX_FILE_BYTES) return `larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB`;
  if (file.size === 0) return "empty";
  return "";
}

function show(file, state, reason = "") {
  let item = byId("upload-files-list").querySelector(`li[data-name="${CSS.escape(file)}"]`);
  if (!item) {
    item = element("li", null, { "data-name": file });
    byId("upload-files-list").append(item);
  }
  item.className = `state-${state}`;
  item.textContent = `${file}: ${state}${reason ? ` \u2014 ${reason}` : ""}`;
}

function pick(files) {
  picked = [];
  byId("upload-files-list").replaceChildren();
  for (const file of files) {
    const why = problem(file);
    if (why) show(file.name, "rejected", why);
    else {
      picked.push(file);
      show(file.name, "ready");
    }
  }
}

async function follow(jobId, order) {
  for (let poll = 0; poll < MAX_POLLS; poll++) {
    const job = await getJson(`/v1/jobs/${encodeURIComponent(jobId)}`);
    const rejected = new Map(job.errors.map((e) => [e.document_id, e.reason]));
    const handled = job.documents_done + job.documents_failed;
    order.forEach((name, index) => {
      if (rejected.has(name)) show(name, "rejected", rejected.get(name));
      else if (index < handled || job.state === "succeeded") show(name, "indexed");
      else if (job.state === "failed") show(name, "failed", job.error);
      else show(name, job.state === "running" ? "indexing" : "queued");
    });
    byId("upload-status").textContent =
      `Job ${job.state}: ${job.documents_done} of ${job.documents_total} indexed, ${job.documents_failed} rejected, ${job.chunks_done} chunks.`;
    if (job.state === "succeeded" || job.state === "failed") return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  byId("upload-status").textContent += " Still running: check the job later on this page.";
}

async function upload() {
  const collection = byId("upload-collection").value.trim();
  if (!picked.length) {
    byId("upload-status").textContent = "No file to upload: pick or drop PDF, DOCX, HTML or Markdown files.";
    return;
  }
  const form = new FormData();
  for (const file of picked) form.append("files", file, file.name);
  byId("upload-button").disabled = true;
  try {
    picked.forEach((file) => show(file.name, "uploading"));
    const response = await call(collectionPath(collection, "/jobs"), { method: "POST", body: form });
    const submitted = await response.json();
    await follow(submitted.job_id, submitted.document_ids);
  } catch (error) {
    showProblem(error);
    byId("upload-status").textContent = "The upload was refused.";
  } finally {
    byId("upload-button").disabled = false;
  }
}

export function setUpUpload() {
  const zone = byId("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    pick(event.dataTransfer.files);
  });
  byId("upload-files").addEventListener("change", (event) => pick(event.target.files));
  byId("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showProblem(null);
    upload();
  });
}
