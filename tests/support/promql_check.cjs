// PromQL syntax check with Prometheus's own grammar (@prometheus-io/lezer-promql, the parser of
// Prometheus's web UI), from clients/node's node_modules: reads a JSON array of expressions on
// stdin, writes a JSON array with, per expression, null or the text around the first error.
const path = require("node:path");
const { createRequire } = require("node:module");
const fromClient = createRequire(path.join(__dirname, "..", "..", "clients", "node", "package.json"));
const { parser } = fromClient("@prometheus-io/lezer-promql");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const results = JSON.parse(input).map((expression) => {
    let error = null;
    parser.parse(expression).iterate({
      enter: (node) => {
        if (node.type.isError && error === null) error = `at ${node.from}: ${JSON.stringify(expression.slice(Math.max(0, node.from - 20), node.from + 20))}`;
      },
    });
    return error;
  });
  process.stdout.write(JSON.stringify(results));
});
