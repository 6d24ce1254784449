// The Experiments page (a report from /v1/experiments/{name}/report with its chart) and the
// Evaluation page (a report.json of `ragmesh eval`, read in the browser, drawn as bars).
import { element, getJson, showProblem } from "./api.js";

function byId(id) {
  return document.getElementById(id);
}

function number(value) {
  return value === null || value === undefined ? "\u2014" : Number(value).toFixed(value % 1 === 0 ? 0 : 4);
}

function table(caption, columns, rows) {
  const node = element("table");
  node.append(element("caption", caption));
  const head = element("tr");
  for (const column of columns) head.append(element("th", column, { scope: "col" }));
  const thead = element("thead");
  thead.append(head);
  const body = element("tbody");
  for (const values of rows) {
    const tr = element("tr");
    values.forEach((value, index) => tr.append(element(index ? "td" : "th", value, index ? {} : { scope: "row" })));
    body.append(tr);
  }
  node.append(thead, body);
  return node;
}

export async function showExperiments() {
  const found = await getJson("/v1/experiments");
  const names = byId("experiment-name");
  names.replaceChildren(...found.experiments.map((name) => element("option", name, { value: name })));
  const metrics = byId("experiment-metric");
  if (!metrics.children.length) metrics.replaceChildren(...found.metrics.map((m) => element("option", m, { value: m })));
  if (!found.experiments.length) byId("experiment-report").replaceChildren(element("p", "No experiment is declared for your collections."));
}

async function showReport() {
  const name = byId("experiment-name").value;
  const metric = byId("experiment-metric").value;
  const report = await getJson(`/v1/experiments/${encodeURIComponent(name)}/report?metric=${encodeURIComponent(metric)}`);
  const out = byId("experiment-report");
  out.replaceChildren(element("p", `${report.experiment}: ${report.metric} over ${report.records} records`));
  const summary = ["variant", "count", "mean", "p50", "p95", "95% CI"];
  out.append(table(`Variants (${report.metric})`, summary, report.variants.map((v) => [
    v.variant, String(v.count), number(v.mean), number(v.p50), number(v.p95), `${number(v.ci_low)} \u2013 ${number(v.ci_high)}`,
  ])));
  const against = ["variant", "difference", "Welch p", "Mann-Whitney p", "Cohen's d", "needed per variant"];
  out.append(table("Against the control", against, report.comparisons.map((c) => [
    `${c.variant} vs ${c.control}`, number(c.difference), number(c.welch_p), number(c.mann_whitney_p), number(c.cohens_d),
    number(c.required_per_variant),
  ])));
  if (report.chart_png_base64) {
    out.append(element("img", null, { class: "chart", src: `data:image/png;base64,${report.chart_png_base64}`,
      alt: `Chart of ${report.metric} per variant of ${report.experiment}` }));
  }
}

function bars(metrics) {
  // Grouped bars, one group per metric (@k cutoffs), one bar per variant; values in [0, 1].
  const names = [...new Set(Object.values(metrics).flatMap((m) => Object.keys(m).filter((k) => k.includes("@"))))].sort();
  const variants = Object.keys(metrics);
  const width = 60 * names.length + 40;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} 240`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Metrics per variant: ${variants.join(", ")}`);
  const bar = 44 / Math.max(variants.length, 1);
  names.forEach((name, group) => {
    variants.forEach((variant, index) => {
      const value = Number(metrics[variant][name] || 0);
      const rect = document.createElementNS(svg.namespaceURI, "rect");
      rect.setAttribute("x", String(30 + group * 60 + index * bar));
      rect.setAttribute("y", String(200 - value * 180));
      rect.setAttribute("width", String(bar - 2));
      rect.setAttribute("height", String(value * 180));
      rect.setAttribute("class", `bar b${index % 4}`);
      const title = document.createElementNS(svg.namespaceURI, "title");
      title.textContent = `${variant} ${name}: ${value.toFixed(4)}`;
      rect.append(title);
      svg.append(rect);
    });
    const label = document.createElementNS(svg.namespaceURI, "text");
    label.setAttribute("x", String(30 + group * 60));
    label.setAttribute("y", "220");
    label.textContent = name;
    svg.append(label);
  });
  return svg;
}

function showEvaluation(report) {
  const variants = report.variants || { default: { metrics: report } };
  const metrics = Object.fromEntries(Object.entries(variants).map(([name, body]) => [name, body.metrics || {}]));
  const names = [...new Set(Object.values(metrics).flatMap((m) => Object.keys(m).filter((k) => k.includes("@"))))].sort();
  const out = byId("evaluation-report");
  out.replaceChildren(element("p", `Dataset: ${report.dataset || "?"}`));
  out.append(table("Metrics per variant", ["metric", ...Object.keys(metrics)],
    names.map((name) => [name, ...Object.values(metrics).map((m) => number(m[name]))])));
  out.append(bars(metrics));
}

export function setUpReports() {
  byId("experiment-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showProblem(null);
    showReport().catch(showProblem);
  });
  byId("evaluation-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      showEvaluation(JSON.parse(await file.text()));
    } catch (error) {
      showProblem(new Error(`${file.name} is not an evaluation report: ${error.message}`));
    }
  });
}
