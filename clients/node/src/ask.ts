// Ask ragmesh a question from Node.js and stream the answer with its sources, through Envoy,
// with an API key and a deadline: the generated OrchestratorServiceClient (ts-proto on
// @grpc/grpc-js) and nothing else. docs/clients.md explains each step.
//
//   npm run build && node dist/ask.js -c ragmesh_docs "How does Envoy balance gRPC calls?"
//
// Options: --address host:port ($RAGMESH_ADDRESS, default 127.0.0.1:8080), --api-key KEY
// ($RAGMESH_API_KEY), --deadline SECONDS (60), -c/--collection, -k/--top-k, --max-new-tokens, --caller-id,
// --tls-ca / --tls-cert / --tls-key (PEM files: TLS or mTLS to Envoy), --json (one JSON object
// per event). Exit codes as the ragmesh CLI's: 0 answered, 1 the call failed, 2 bad usage,
// 3 unreachable or out of time (UNAVAILABLE, DEADLINE_EXCEEDED: retry later).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { OrchestratorServiceClient, QueryRequest, type QueryStreamResponse } from "./gen/ragmesh/v1/orchestrator";

const USAGE = "usage: node dist/ask.js [--address HOST:PORT] [--api-key KEY] [--deadline S] [-c COLLECTION] QUESTION";
const RETRY_LATER = new Set<number>([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]);

function options() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      address: { type: "string", default: process.env.RAGMESH_ADDRESS ?? "127.0.0.1:8080" },
      "api-key": { type: "string", default: process.env.RAGMESH_API_KEY },
      deadline: { type: "string", default: "60" },
      collection: { type: "string", short: "c", default: "" },
      "top-k": { type: "string", short: "k", default: "0" },
      "max-new-tokens": { type: "string", default: "0" },
      "caller-id": { type: "string", default: "node-example" },
      "tls-ca": { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const deadline = Number(values.deadline);
  const topK = Number(values["top-k"]);
  const maxNewTokens = Number(values["max-new-tokens"]);
  const counts = [topK, maxNewTokens].every((n) => Number.isInteger(n) && n >= 0);
  if (positionals.length !== 1 || !(deadline > 0) || !counts) {
    throw new UsageError(USAGE);
  }
  if (Boolean(values["tls-cert"]) !== Boolean(values["tls-key"])) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  return { ...values, question: positionals[0], deadline, topK, maxNewTokens };
}

class UsageError extends Error {}

/** Cleartext h2c, or TLS (mTLS with a client certificate) when a --tls-* file is given. */
function channelCredentials(ca?: string, cert?: string, key?: string) {
  if (!ca && !cert) return credentials.createInsecure();
  const read = (path?: string) => (path ? readFileSync(path) : null);
  return credentials.createSsl(read(ca), read(key), read(cert));
}

function main(): void {
  let args: ReturnType<typeof options>;
  try {
    args = options();
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    process.exit(2);
  }
  const client = new OrchestratorServiceClient(
    args.address,
    channelCredentials(args["tls-ca"], args["tls-cert"], args["tls-key"]),
  );
  // Auth: the key travels as gRPC metadata, exactly as an HTTP bearer token.
  const metadata = new Metadata();
  if (args["api-key"]) metadata.set("authorization", `Bearer ${args["api-key"]}`);
  const request = QueryRequest.fromPartial({
    query: args.question,
    collection: args.collection,
    topK: args.topK,
    context: { callerId: args["caller-id"] },
    // Unset (0): the server's defaults; options.sampling is where generation settings go.
    options: args.maxNewTokens ? { sampling: { maxNewTokens: args.maxNewTokens } } : undefined,
  });
  // The deadline covers the whole stream; the mesh passes what is left of it to every hop.
  const call = client.queryStream(request, metadata, { deadline: Date.now() + args.deadline * 1000 });
  const print = args.json
    ? (event: Event) => process.stdout.write(`${JSON.stringify(event)}\n`)
    : humanPrinter();
  call.on("data", (message: QueryStreamResponse) => {
    const event = toEvent(message);
    if (event) print(event);
  });
  call.on("error", (error: ServiceError) => {
    // status.UNAUTHENTICATED: no or a wrong key; INVALID_ARGUMENT: fix the request;
    // RESOURCE_EXHAUSTED: back off (a quota or a full queue); UNAVAILABLE: retry later.
    console.error(`error: ${status[error.code]}: ${error.details}`);
    client.close();
    process.exitCode = RETRY_LATER.has(error.code) ? 3 : 1;
  });
  call.on("end", () => client.close());
}

type Source = { number: number; document_id: string; score: number };
type Event =
  | { event: "sources"; trace_id: string; sources: Source[] }
  | { event: "delta"; text: string }
  | { event: "final"; finish_reason: number; completion_tokens: number; total_ms: number };

/** One stream message as a plain event: sources first, then deltas, then the final one. */
function toEvent(message: QueryStreamResponse): Event | undefined {
  const event = message.event;
  switch (event?.$case) {
    case "sources": {
      const sources = event.value.sources.map((s) => ({ number: s.number, document_id: s.documentId, score: s.score }));
      return { event: "sources", trace_id: event.value.traceId, sources };
    }
    case "delta":
      return { event: "delta", text: event.value.text };
    case "final": {
      const { finishReason, usage, timings } = event.value;
      return { event: "final", finish_reason: finishReason, completion_tokens: usage?.completionTokens ?? 0, total_ms: timings?.totalMs ?? 0 };
    }
  }
  return undefined;
}

/** Text as it streams, then the numbered sources. */
function humanPrinter() {
  let sources: Source[] = [];
  return (event: Event) => {
    if (event.event === "sources") sources = event.sources;
    if (event.event === "delta") process.stdout.write(event.text);
    if (event.event === "final") {
      process.stdout.write("\n\nSources:\n");
      for (const s of sources) process.stdout.write(`  [${s.number}] ${s.document_id} (${s.score.toFixed(3)})\n`);
    }
  };
}

main();
