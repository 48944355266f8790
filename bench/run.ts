/**
 * `npm run bench`: every suite in one process (ratios are only compared within one run),
 * results as JSON in bench/results/ (one file per benny suite, plus summary.json) and a
 * markdown report in bench/results/summary.md, also printed.
 *
 *   npm run bench -- [--suites compile,matmul,attention,encoder,sink,precision,retrieval,throughput,scale,browser]
 *                    [--backends onnx,tfjs-wasm,...] [--frames 4,8,16] [--quick]
 *
 * Defaults: all suites; attention on onnx, tfjs-wasm, tfjs-cpu and gpujs at 4, 8 and 16
 * frames (the slow JavaScript backends at 4 and 8 unless --frames says otherwise); the
 * encoder on onnx and tfjs-wasm at 8 frames; the retrieval model on onnx and tfjs-wasm at 8
 * frames (16 clips x 16 captions; 5 whole jobs per variant on onnx, 2 on tfjs-wasm, about
 * 22 minutes in all on the 2-core project machine); scale on onnx; browser: gpujs and
 * tfjs-webgl in headless Chromium at 4, 8 and 16 frames; sink (SViTT with and without
 * sink-token-selection) and precision (int8 against fp32: speed, accuracy on seeded clips,
 * retrieval ranking agreement) on onnx at 8 and 16 frames; throughput (clips per second at
 * batch 1, 4 and 8, decoding real videos overlapped with the encoder, the whole retrieve,
 * the onnx staged path explained; bench/throughput.bench.ts) on onnx and tfjs-wasm at 8
 * frames, about 20 minutes. --quick: 4 and 8 frames, two samples per case, one retrieval
 * job of 4 clips x 4 captions per variant, throughput with 2 rounds and 4 videos at batch 1
 * and 4, no scale or browser suite.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { type BackendName, isBackendName } from "../src/index.js";
import { ATTENTION_FRAMES, attentionTable, benchAttention } from "./attention.bench.js";
import { benchBrowser, browserTable } from "./browser.bench.js";
import { benchCompile } from "./compile.bench.js";
import { availableBackends } from "./common.js";
import { benchEncoder, encoderTable } from "./encoder.bench.js";
import { machineDescription, markdownTable, RESULTS_DIR, type SuiteSummary } from "./harness.js";
import { benchMatmul } from "./matmul.bench.js";
import { benchPrecision, precisionSection } from "./precision.bench.js";
import { benchRetrieval, retrievalSection } from "./retrieval.bench.js";
import { benchScale, SCALE_RSS_LIMIT_MB, scaleTable } from "./scale.bench.js";
import { benchSink, sinkTable } from "./sink.bench.js";
import { benchThroughput, throughputSection } from "./throughput.bench.js";

const SUITES = [
  "compile",
  "matmul",
  "attention",
  "encoder",
  "sink",
  "precision",
  "retrieval",
  "throughput",
  "scale",
  "browser",
] as const;
type Suite = (typeof SUITES)[number];

/** JavaScript backends whose dense attention at 16 frames takes minutes per run. */
const SLOW_BACKENDS: ReadonlySet<string> = new Set(["tfjs-cpu", "gpujs", "reference"]);

function list(text: string | undefined, fallback: readonly string[]): string[] {
  return text === undefined ? [...fallback] : text.split(",").filter((s) => s.trim() !== "");
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    suites: { type: "string" },
    backends: { type: "string" },
    frames: { type: "string" },
    quick: { type: "boolean" },
  },
});
const quick = values.quick === true;
const suites = list(
  values.suites,
  quick ? SUITES.filter((s) => s !== "scale" && s !== "browser") : SUITES,
);
for (const s of suites)
  if (!(SUITES as readonly string[]).includes(s))
    fail(`unknown suite "${s}"; known: ${SUITES.join(", ")}`);
const backendList = (fallback: readonly string[]): BackendName[] => {
  const names = list(values.backends, fallback);
  for (const name of names) if (!isBackendName(name)) fail(`unknown backend "${name}"`);
  return names as BackendName[];
};
const frames = list(values.frames, quick ? ["4", "8"] : ATTENTION_FRAMES.map(String)).map((f) => {
  const n = Number(f);
  if (!(Number.isInteger(n) && n >= 1)) fail(`--frames: "${f}" is not an integer >= 1`);
  return n;
});
const minSamples = quick ? 2 : undefined;
const has = (s: Suite) => suites.includes(s);

const report: string[] = [
  "# sprig benchmarks",
  "",
  `${machineDescription()}; ${new Date().toISOString()}`,
  `command: npm run bench -- ${process.argv.slice(2).join(" ")}`.trimEnd(),
  "",
];
const json: Record<string, unknown> = { machine: machineDescription(), suites };
const section = (title: string, ...parts: string[]) => {
  report.push(`## ${title}`, "", ...parts.flatMap((p) => [p, ""]));
  console.log(`\n## ${title}\n\n${parts.join("\n\n")}`);
};
const detail = (summaries: readonly SuiteSummary[]) =>
  `<details><summary>per-case medians</summary>\n\n${summaries.map((s) => markdownTable(s)).join("\n\n")}\n\n</details>`;
const skippedNote = (skipped: readonly string[]) =>
  skipped.length === 0 ? [] : [`Not available here: ${skipped.join("; ")}.`];

if (has("compile")) {
  const summary = await benchCompile();
  json.compile = summary;
  section("Compile (all passes, verifier after each)", markdownTable(summary));
}
if (has("matmul")) {
  const { ready, skipped } = await availableBackends(
    backendList(["onnx", "tfjs-wasm", "tfjs-cpu", "gpujs"]),
  );
  const summary = await benchMatmul(ready);
  json.matmul = summary;
  section("2-D matmul [1577, 768] x [768, 768]", markdownTable(summary), ...skippedNote(skipped));
}
if (has("attention")) {
  const { ready, skipped } = await availableBackends(
    backendList(["onnx", "tfjs-wasm", "tfjs-cpu", "gpujs"]),
  );
  const rows = [];
  const summaries = [];
  for (const backend of ready) {
    const f =
      values.frames === undefined && SLOW_BACKENDS.has(backend)
        ? frames.filter((n) => n <= 8)
        : frames;
    const result = await benchAttention([backend], f, minSamples ? { minSamples } : {});
    rows.push(...result.rows);
    summaries.push(...result.summaries);
  }
  json.attention = rows;
  section(
    "Attention: block-sparse against dense",
    attentionTable(rows),
    "`of MAC ratio` = speed-up / MAC ratio (1: sparse attention runs at dense attention's FLOP rate).",
    ...skippedNote(skipped),
    detail(summaries),
  );
}
if (has("encoder")) {
  const { ready, skipped } = await availableBackends(backendList(["onnx", "tfjs-wasm"]));
  const result = await benchEncoder(
    ready,
    values.frames === undefined ? [8] : frames,
    minSamples ? { minSamples } : {},
  );
  json.encoder = result.rows;
  section(
    "Vision encoder: SViTT against dense",
    encoderTable(result.rows),
    "Efficiency: SViTT encoder GFLOP/s over the same backend's 2-D matmul GFLOP/s, same suite.",
    ...skippedNote(skipped),
    detail(result.summaries),
  );
}
if (has("sink")) {
  const { ready, skipped } = await availableBackends(backendList(["onnx"]));
  const { rows, summaries } = await benchSink(
    ready,
    values.frames === undefined ? (quick ? [8] : [8, 16]) : frames,
    quick ? { rounds: 2 } : {},
  );
  json.sink = rows;
  section(
    "sink-token-selection: SViTT fp32 with and without the pass",
    sinkTable(rows),
    "Runs alternate between the two executables. Done when time saved / MACs removed >= 0.8.",
    ...skippedNote(skipped),
    detail(summaries),
  );
}
if (has("precision")) {
  const { ready, skipped } = await availableBackends(backendList(["onnx"]));
  const result =
    ready.length === 0
      ? null
      : await benchPrecision(
          ready,
          values.frames === undefined ? (quick ? [8] : [8, 16]) : frames,
          quick ? { rounds: 2, clips: 2, retrievalClips: 4 } : {},
        );
  json.precision = result;
  section(
    "Reduced precision: int8 against fp32",
    ...(result === null ? [] : precisionSection(result)),
    ...skippedNote(skipped),
  );
}
if (has("retrieval")) {
  const { ready, skipped } = await availableBackends(backendList(["onnx", "tfjs-wasm"]));
  const results = await benchRetrieval(
    ready,
    values.frames === undefined ? [8] : frames,
    quick ? { minSamples: 2, repetitions: 1, clips: 4 } : {},
  );
  json.retrieval = results.map((r) => ({
    backend: r.backend,
    frames: r.frames,
    load: r.load,
    parts: r.parts,
    jobs: r.jobs,
  }));
  section(
    "Retrieval model: SViTT against dense vision",
    ...results.map(retrievalSection),
    "Speed-up = dense time / SViTT time; MAC ratio = dense MACs / SViTT MACs (from the compiled cost reports). The text encoder is one graph for both variants, measured once. k 128 covers every candidate, so the job reranks every pair with ITM, each once.",
    ...skippedNote(skipped),
    detail(results.map((r) => r.summary)),
  );
}
if (has("throughput")) {
  const { ready, skipped } = await availableBackends(backendList(["onnx", "tfjs-wasm"]));
  const result = await benchThroughput(
    ready,
    quick ? { rounds: 2, videos: 4, jobRounds: 1, jobBatches: [1, 4] } : {},
  );
  json.throughput = result;
  section(
    "Throughput: clips per second, decoding overlapped with the encoder",
    ...throughputSection(result),
    ...skippedNote(skipped),
  );
}
if (has("scale")) {
  const backend = backendList(["onnx"])[0]!;
  const rows = await benchScale(backend);
  json.scale = rows;
  section(
    "Long clips: peak memory",
    scaleTable(rows),
    `Each row is a fresh \`sprig run --json\` process; issue 3 asks SViTT at 32 and 64 frames to stay under ${SCALE_RSS_LIMIT_MB} MiB.`,
  );
}

if (has("browser")) {
  const rows = await benchBrowser(frames.join(","));
  json.browser = rows;
  section(
    "Browser backends: block-sparse against dense attention",
    browserTable(rows),
    "Headless Chromium, WebGL2 on SwiftShader (software): ratios, not GPU speed. One warm-up run, then the median of the timed runs.",
  );
}

await mkdir(RESULTS_DIR, { recursive: true });
await writeFile(new URL("summary.md", RESULTS_DIR), `${report.join("\n")}\n`);
await writeFile(new URL("summary.json", RESULTS_DIR), `${JSON.stringify(json, null, 2)}\n`);
console.log(`\nwrote bench/results/summary.md and bench/results/summary.json`);
