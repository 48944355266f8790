import { type ConformanceCase, caseFromBytes, runCase } from "../src/browser.js";
import { profileMethod, recordingBackend, type RunRecord } from "./backends.js";
import { benchAttention } from "./bench.js";
import {
  BROWSER_BACKENDS,
  type BrowserBackend,
  type CaseRow,
  isBrowserBackend,
  type PlatformInfo,
  type RunCaseRequest,
  type SprigBench,
  type SprigGlobals,
  type SprigResults,
} from "./protocol.js";
import { renderBenchRow, renderCaseRow, renderKernels, setStatus, setText } from "./view.js";

/**
 * The browser page. Served with the conformance cases by browser/server.ts:
 *   GET cases             -> JSON array of case names (NAME, or FOLDER/NAME in a case
 *                            folder such as video-text/)
 *   GET cases/NAME.json, cases/NAME.safetensors (likewise cases/FOLDER/NAME.*)
 * It runs runCase (the same function as `sprig verify`) on gpujs (WebGL2) and tfjs-webgl,
 * renders a results table and per-kernel timings, and exposes everything on window for the
 * test harness (see protocol.ts). Query string:
 *   backends=gpujs,tfjs-webgl   cases=NAME,NAME   profile=0   autorun=0
 *   bench=attention&frames=4,8,16&reps=3   (the attention benchmark instead of the cases)
 */

const globals = globalThis as unknown as SprigGlobals;
const params = new URLSearchParams(location.search);

function listParam(name: string): string[] | null {
  const value = params.get(name);
  if (value === null || value.trim() === "") return null;
  return value
    .split(",")
    .map((part) => part.trim())
    .filter((part) => part !== "");
}

function backendsParam(): BrowserBackend[] {
  const names = listParam("backends") ?? [...BROWSER_BACKENDS];
  for (const name of names) {
    if (!isBrowserBackend(name))
      throw new Error(`backends: unknown "${name}"; known: ${BROWSER_BACKENDS.join(", ")}`);
  }
  return names as BrowserBackend[];
}

/**
 * Lets the browser render and fire its events: gpu.js runs synchronously inside async
 * functions, so without this a benchmark would hold the page (and its load event) until the end.
 */
function nextTask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function platformInfo(): PlatformInfo {
  const canvas = document.createElement("canvas");
  const gl = canvas.getContext("webgl2");
  let info: PlatformInfo;
  if (gl === null) {
    info = {
      userAgent: navigator.userAgent,
      webgl2: "no WebGL2 context",
      colorBufferFloat: false,
      timerQuery: false,
    };
  } else {
    const debug = gl.getExtension("WEBGL_debug_renderer_info");
    info = {
      userAgent: navigator.userAgent,
      webgl2: String(gl.getParameter(debug === null ? gl.RENDERER : debug.UNMASKED_RENDERER_WEBGL)),
      colorBufferFloat: gl.getExtension("EXT_color_buffer_float") !== null,
      timerQuery: gl.getExtension("EXT_disjoint_timer_query_webgl2") !== null,
    };
    gl.getExtension("WEBGL_lose_context")?.loseContext();
  }
  return info;
}

async function fetchOk(url: string): Promise<Response> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${response.statusText}`);
  return response;
}

async function listCases(): Promise<string[]> {
  const names: unknown = await (await fetchOk("cases")).json();
  if (!Array.isArray(names) || !names.every((n) => typeof n === "string"))
    throw new Error("GET cases: expected a JSON array of case names");
  return names;
}

/** Parsed cases, kept: each is run on several backends. */
const loaded = new Map<string, Promise<ConformanceCase>>();

function loadCase(name: string): Promise<ConformanceCase> {
  let pending = loaded.get(name);
  if (pending === undefined) {
    // "video-text/i1_..." -> cases/video-text/i1_...: each part encoded, the folder kept.
    const base = `cases/${name.split("/").map(encodeURIComponent).join("/")}`;
    pending = (async () => {
      const [text, bytes] = await Promise.all([
        fetchOk(`${base}.json`).then((r) => r.text()),
        fetchOk(`${base}.safetensors`).then((r) => r.arrayBuffer()),
      ]);
      return caseFromBytes(name, text, new Uint8Array(bytes));
    })();
    loaded.set(name, pending);
    pending.catch(() => loaded.delete(name));
  }
  return pending;
}

const results: SprigResults = {
  ready: false,
  done: false,
  platform: platformInfo(),
  results: [],
  kernels: [],
  profileMethod: {},
  error: null,
};

async function runOne(request: RunCaseRequest): Promise<CaseRow> {
  const { name, backend } = request;
  const profile = request.profile ?? true;
  const record: RunRecord = {
    compileMs: null,
    runMs: null,
    profiledRunMs: null,
    detail: null,
    kernels: null,
  };
  const start = performance.now();
  let row: CaseRow;
  try {
    const testCase = await loadCase(name);
    const result = await runCase(testCase, await recordingBackend(backend, record, profile));
    const worst = result.checks.reduce((max, c) => Math.max(max, c.worst), 0);
    row = {
      case: name,
      backend,
      kind: result.kind,
      passed: result.passed,
      worstPercent: result.checks.length === 0 ? null : 100 * worst,
      ms: result.ms,
      compileMs: record.compileMs,
      runMs: record.runMs,
      profiledRunMs: record.profiledRunMs,
      detail: record.detail,
      error: result.error,
      checks: result.checks.map((c) => ({ ...c })),
      skipped: [...result.skipped],
    };
  } catch (error) {
    row = {
      case: name,
      backend,
      kind: "?",
      passed: false,
      worstPercent: null,
      ms: performance.now() - start,
      compileMs: record.compileMs,
      runMs: record.runMs,
      profiledRunMs: record.profiledRunMs,
      detail: record.detail,
      error: `${error instanceof Error ? error.name : "Error"}: ${messageOf(error)}`,
      checks: [],
      skipped: [],
    };
  }
  results.results.push(row);
  renderCaseRow(row);
  if (record.kernels !== null) {
    const kernels = record.kernels.map((k) => ({ case: name, backend, ...k }));
    results.kernels.push(...kernels);
    results.profileMethod[backend] = profileMethod(backend);
    setText(
      "profile-method",
      Object.entries(results.profileMethod)
        .map(([b, method]) => `${b}: ${method}`)
        .join(". "),
    );
    renderKernels(kernels);
  }
  const worst =
    row.worstPercent === null ? "" : `, worst ${row.worstPercent.toFixed(1)}% of tolerance`;
  console.log(
    `[sprig] ${name} on ${backend}: ${row.passed ? "pass" : "FAIL"}${worst}, ${row.ms.toFixed(0)} ms${row.error === null ? "" : ` (${row.error})`}`,
  );
  return row;
}

async function autorunCases(): Promise<void> {
  const backends = backendsParam();
  const names = listParam("cases") ?? (await listCases());
  const profile = params.get("profile") !== "0";
  let done = 0;
  const total = names.length * backends.length;
  for (const backend of backends) {
    for (const name of names) {
      setStatus(`running ${name} on ${backend} (${done + 1} of ${total})...`);
      await nextTask();
      await runOne({ name, backend, profile });
      done += 1;
    }
  }
  const failed = results.results.filter((r) => !r.passed).length;
  setStatus(`done: ${total - failed} passed, ${failed} failed`);
}

async function autorunBench(): Promise<void> {
  const bench: SprigBench = { done: false, results: [], error: null };
  globals.__sprigBench = bench;
  try {
    if (params.get("bench") !== "attention")
      throw new Error(`bench: only "attention" is known, got "${params.get("bench")}"`);
    const frames = (listParam("frames") ?? ["4", "8", "16"]).map(Number);
    if (!frames.every((f) => Number.isInteger(f) && f >= 1))
      throw new Error(`frames: positive integers expected, got "${params.get("frames")}"`);
    const reps = Number(params.get("reps") ?? 3);
    if (!(Number.isInteger(reps) && reps >= 1))
      throw new Error(`reps: an integer >= 1 expected, got "${params.get("reps")}"`);
    for (const backend of backendsParam()) {
      for (const f of frames) {
        setStatus(`benchmarking attention at ${f} frames on ${backend}...`);
        await nextTask();
        const row = await benchAttention(backend, f, reps);
        bench.results.push(row);
        renderBenchRow(row);
        console.log(`[sprig] bench ${JSON.stringify(row)}`);
      }
    }
    setStatus("benchmark done");
  } catch (error) {
    bench.error = messageOf(error);
    setStatus(`benchmark failed: ${bench.error}`);
  } finally {
    bench.done = true;
  }
}

async function main(): Promise<void> {
  const p = results.platform;
  setText(
    "platform",
    `${p.userAgent} | WebGL2: ${p.webgl2} | EXT_color_buffer_float: ${p.colorBufferFloat} | timer queries: ${p.timerQuery}`,
  );
  globals.__sprig = { listCases, runCase: runOne };
  globals.__sprigResults = results;
  results.ready = true;
  try {
    await nextTask();
    if (params.has("bench")) {
      document.getElementById("results-section")?.setAttribute("hidden", "");
      document.getElementById("kernels-section")?.setAttribute("hidden", "");
      await autorunBench();
    } else if (params.get("autorun") === "0") {
      setStatus("ready: waiting for window.__sprig.runCase calls");
    } else {
      await autorunCases();
    }
  } catch (error) {
    results.error = messageOf(error);
    setStatus(`failed: ${results.error}`);
  } finally {
    results.done = true;
  }
}

void main();
