// The Ask page: a chat whose answers stream token by token from /v1/chat/completions, with
// numbered citations that open their source (the cited passage highlighted in its document).
import { call, collectionPath, collections, element, getJson, showProblem } from "./api.js";

const turns = [];
let controller = null;

function byId(id) {
  return document.getElementById(id);
}

export async function showAsk() {
  const picker = byId("ask-collection");
  const chosen = picker.value;
  const names = (await collections()).map((c) => c.name);
  picker.replaceChildren(...names.map((name) => element("option", name, { value: name })));
  if (names.includes(chosen)) picker.value = chosen;
}

function renderAnswer(node, text, own) {
  // "[n]" becomes a button opening source n; the rest stays text.
  node.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(/\[(\d+)\]/g)) {
    node.append(text.slice(last, match.index));
    const number = Number(match[1]);
    const known = own.sources.some((s) => s.number === number);
    if (known) {
      const link = element("button", `[${number}]`, { type: "button", class: "cite" });
      link.setAttribute("aria-label", `Source ${number}`);
      link.addEventListener("click", () => openSource(own, number));
      node.append(link);
    } else {
      node.append(match[0]);
    }
    last = match.index + match[0].length;
  }
  node.append(text.slice(last));
}

function renderSources(own) {
  const list = byId("sources");
  list.replaceChildren();
  for (const source of own.sources) {
    const where = [source.metadata.source || source.document_id];
    if (source.metadata.page !== undefined) where.push(`p. ${source.metadata.page}`);
    if (source.metadata.section) where.push(source.metadata.section);
    const button = element("button", `[${source.number}] ${where.join(", ")} \u2014 ${source.text.slice(0, 140)}`, {
      type: "button",
    });
    button.addEventListener("click", () => openSource(own, source.number));
    const item = element("li");
    item.append(button);
    list.append(item);
  }
}

async function openSource(own, number) {
  const source = own.sources.find((s) => s.number === number);
  if (!source) return;
  const panel = byId("source-panel");
  const meta = source.metadata;
  byId("source-title").textContent = `Source [${number}]: ${meta.source || source.document_id}`;
  const where = [`document ${source.document_id}`];
  if (meta.page !== undefined) where.push(`page ${meta.page}`);
  if (meta.section) where.push(`section ${meta.section}`);
  byId("source-where").textContent = where.join(" \u00b7 ");
  const text = byId("source-text");
  text.replaceChildren(element("mark", source.text));
  panel.hidden = false;
  try {
    const path = collectionPath(own.collection, `/documents/${encodeURIComponent(source.document_id)}`);
    const document_ = await getJson(path);
    text.replaceChildren(
      ...document_.chunks.map((chunk) => {
        const block = element("p", null, { class: "chunk" });
        block.append(chunk.chunk_id === source.chunk_id ? element("mark", chunk.text) : chunk.text);
        return block;
      }),
    );
  } catch (error) {
    // the passage alone is still shown
  }
  const marked = text.querySelector("mark");
  if (marked) marked.scrollIntoView({ block: "center" });
  text.focus();
}

async function* events(response) {
  // Server-sent events of /v1/chat/completions, one parsed JSON object each.
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 2);
      if (!line.startsWith("data: ")) continue;
      const data = line.slice(6);
      if (data === "[DONE]") return;
      yield JSON.parse(data);
    }
  }
}

function stats(cache, timings) {
  const parts = [`cache: ${cache || "none"}`];
  for (const [name, ms] of Object.entries(timings || {})) {
    if (ms > 0) parts.push(`${name.replace(/_ms$/, "")} ${ms.toFixed(0)} ms`);
  }
  byId("ask-stats").textContent = parts.join(" \u00b7 ");
}

async function ask(question) {
  const collection = byId("ask-collection").value;
  const own = { sources: [], collection };
  const log = byId("answer");
  log.append(element("div", question, { class: "turn user" }));
  const node = element("div", "", { class: "turn assistant" });
  log.append(node);
  byId("stop-button").disabled = false;
  byId("ask-button").disabled = true;
  controller = new AbortController();
  let text = "";
  let cache = "";
  const body = {
    model: "ragmesh", stream: true, collection, search_mode: byId("ask-mode").value,
    top_k: Number(byId("ask-top-k").value) || undefined,
    messages: [...turns, { role: "user", content: question }],
  };
  try {
    const response = await call("/v1/chat/completions", {
      method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" },
      signal: controller.signal,
    });
    for await (const chunk of events(response)) {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.sources) {
        own.sources = chunk.sources;
        cache = chunk.ragmesh.cache;
        renderSources(own);
      }
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta.content;
      if (delta) {
        text += delta;
        renderAnswer(node, text, own);
        log.scrollTop = log.scrollHeight;
      }
      if (chunk.ragmesh && chunk.ragmesh.timings_ms) {
        if (chunk.ragmesh.cited_answer) text = chunk.ragmesh.cited_answer;
        renderAnswer(node, text, own);
        stats(cache, chunk.ragmesh.timings_ms);
      }
    }
  } catch (error) {
    if (error.name === "AbortError") node.append(element("em", " (stopped)"));
    else showProblem(error);
  } finally {
    controller = null;
    byId("stop-button").disabled = true;
    byId("ask-button").disabled = false;
  }
  if (text) turns.push({ role: "user", content: question }, { role: "assistant", content: text });
}

export function setUpAsk() {
  const form = byId("ask-form");
  const question = byId("question");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text || controller) return;
    question.value = "";
    showProblem(null);
    ask(text);
  });
  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  byId("stop-button").addEventListener("click", () => controller && controller.abort());
  byId("source-close").addEventListener("click", () => {
    byId("source-panel").hidden = true;
    question.focus();
  });
  byId("new-chat").addEventListener("click", () => {
    turns.length = 0;
    byId("answer").replaceChildren();
    renderSources({ sources: [], collection: "" });
    byId("ask-stats").textContent = "";
    question.focus();
  });
}
