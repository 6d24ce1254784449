// The Documents page: the caller's collections, a collection's documents a page at a time
// (searchable by name), and deletion after a confirmation.
import { call, collectionPath, collections, element, getJson, showProblem } from "./api.js";

let current = "";
let nextToken = "";

function byId(id) {
  return document.getElementById(id);
}

export async function showDocuments() {
  const list = byId("collection-list");
  const found = await collections();
  list.replaceChildren(
    ...found.map((c) => {
      const button = element("button", `${c.name} (${c.chunks} chunks)`, { type: "button" });
      button.addEventListener("click", () => openCollection(c.name).catch(showProblem));
      const item = element("li");
      item.append(button);
      return item;
    }),
  );
  if (!found.length) list.append(element("li", "No collection is readable with this key."));
}

async function openCollection(name) {
  current = name;
  byId("documents-of").hidden = false;
  byId("documents-heading").textContent = `Collection ${name}`;
  byId("documents-caption").textContent = `Documents of ${name}`;
  byId("documents-rows").replaceChildren();
  nextToken = "";
  await loadPage();
}

async function loadPage() {
  const query = new URLSearchParams({ page_size: "50", page_token: nextToken, name_contains: byId("documents-name").value });
  const page = await getJson(collectionPath(current, `/documents?${query}`));
  const rows = byId("documents-rows");
  for (const document_ of page.documents) rows.append(row(document_));
  if (!rows.children.length) rows.append(emptyRow());
  nextToken = page.next_page_token;
  byId("documents-more").hidden = !nextToken;
}

function emptyRow() {
  const tr = element("tr");
  tr.append(element("td", "No document matches.", { colspan: "4" }));
  return tr;
}

function row(document_) {
  const tr = element("tr");
  tr.append(element("td", document_.document_id), element("td", document_.source), element("td", String(document_.chunks)));
  const cell = element("td");
  const remove = element("button", "Delete", { type: "button", "aria-label": `Delete ${document_.document_id}` });
  remove.addEventListener("click", () => confirmDelete(document_.document_id, tr, remove));
  cell.append(remove);
  tr.append(cell);
  return tr;
}

function confirmDelete(documentId, tr, opener) {
  const dialog = byId("confirm-delete");
  byId("confirm-text").textContent = `Delete ${documentId} and all its chunks from ${current}? This cannot be undone.`;
  const yes = byId("confirm-yes");
  const no = byId("confirm-no");
  const close = () => {
    dialog.close();
    yes.onclick = no.onclick = null;
    if (opener.isConnected) opener.focus();
  };
  no.onclick = close;
  yes.onclick = async () => {
    close();
    try {
      await call(collectionPath(current, `/documents/${encodeURIComponent(documentId)}`), { method: "DELETE" });
      tr.remove();
      byId("documents-rows").children.length || byId("documents-rows").append(emptyRow());
    } catch (error) {
      showProblem(error);
    }
  };
  dialog.showModal();
}

export function setUpDocuments() {
  byId("documents-search").addEventListener("submit", (event) => {
    event.preventDefault();
    if (current) openCollection(current).catch(showProblem);
  });
  byId("documents-more").addEventListener("click", () => loadPage().catch(showProblem));
}
