// Pages by URL fragment (#ask, #documents, #upload, #experiments, #evaluation), the API key
// form, and each page's set-up.
import { apiKey, setApiKey, showProblem } from "./api.js";
import { setUpAsk, showAsk } from "./ask.js";
import { setUpDocuments, showDocuments } from "./documents.js";
import { setUpUpload, showUpload } from "./upload.js";
import { setUpReports, showExperiments } from "./reports.js";

const PAGES = {
  ask: showAsk,
  documents: showDocuments,
  upload: showUpload,
  experiments: showExperiments,
  evaluation: async () => {},
};

async function route() {
  const name = (location.hash || "#ask").slice(1);
  const page = name in PAGES ? name : "ask";
  for (const key of Object.keys(PAGES)) {
    document.getElementById(`page-${key}`).hidden = key !== page;
    const link = document.querySelector(`nav a[href="#${key}"]`);
    if (key === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  showProblem(null);
  try {
    await PAGES[page]();
  } catch (error) {
    showProblem(error);
  }
}

function setUpKey() {
  const form = document.getElementById("key-form");
  const field = document.getElementById("api-key");
  form.hidden = !apiKey();
  field.value = apiKey();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(field.value.trim());
    route();
  });
  document.getElementById("forget-key").addEventListener("click", () => {
    setApiKey("");
    field.value = "";
    route();
  });
}

setUpKey();
setUpAsk();
setUpDocuments();
setUpUpload();
setUpReports();
window.addEventListener("hashchange", route);
route();
