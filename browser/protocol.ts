/**
 * What the browser page (entry.ts) exposes on `window` for the test harness and for people
 * reading results in DevTools. Types only, no DOM: the harness (Node, test/browser) imports
 * this file too.
 */

/** Backends the page can run: gpu.js on WebGL2, and TensorFlow.js's webgl backend. */
export const BROWSER_BACKENDS = ["gpujs", "tfjs-webgl"] as const;
export type BrowserBackend = (typeof BROWSER_BACKENDS)[number];

export function isBrowserBackend(name: string): name is BrowserBackend {
  return (BROWSER_BACKENDS as readonly string[]).includes(name);
}

/** One expected tensor compared against the backend's output. */
export interface CheckRow {
  readonly name: string;
  readonly passed: boolean;
  readonly maxAbsError: number;
  /** Largest |err| / (atol + rtol·|want|): below 1 passes. */
  readonly worst: number;
  readonly detail: string;
}

/** One conformance case on one backend. */
export interface CaseRow {
  readonly case: string;
  readonly backend: BrowserBackend;
  readonly kind: string;
  readonly passed: boolean;
  /** 100 × the worst check's error / tolerance (null when nothing was compared). */
  readonly worstPercent: number | null;
  /** runCase's wall time: graph build, passes, backend compile, one run, compare. */
  readonly ms: number;
  /** Backend compile (kernel generation, shader compilation, weight upload). */
  readonly compileMs: number | null;
  /** The first (checked) run of the executable; includes gpu.js's lazy shader compilation. */
  readonly runMs: number | null;
  /** The second, profiled run (warm, but synchronised after every kernel), when profiled. */
  readonly profiledRunMs: number | null;
  /** Executable.detail: what actually ran. */
  readonly detail: string | null;
  readonly error: string | null;
  readonly checks: readonly CheckRow[];
  readonly skipped: readonly string[];
}

/** Time spent in one kernel over one profiled run of one case. */
export interface KernelRow {
  readonly case: string;
  readonly backend: BrowserBackend;
  /** gpujs: the generated kernel's name; tfjs: the tfjs kernel name (MatMul, Softmax...). */
  readonly kernel: string;
  /** Graph nodes the kernel ran for (gpujs), e.g. "%12 blockSparseAttention"; else []. */
  readonly nodes: readonly string[];
  readonly calls: number;
  readonly ms: number;
}

export interface PlatformInfo {
  readonly userAgent: string;
  /** UNMASKED_RENDERER_WEBGL of a WebGL2 context, or why there is none. */
  readonly webgl2: string;
  readonly colorBufferFloat: boolean;
  readonly timerQuery: boolean;
}

export interface SprigResults {
  /** The page loaded and window.__sprig is usable. */
  ready: boolean;
  /** The autorun (if any) finished. */
  done: boolean;
  readonly platform: PlatformInfo;
  readonly results: CaseRow[];
  readonly kernels: KernelRow[];
  /** How the per-kernel times were taken, per backend. */
  readonly profileMethod: Partial<Record<BrowserBackend, string>>;
  error: string | null;
}

/** One attention benchmark point: block-sparse vs dense attention at `frames` frames. */
export interface BenchRow {
  readonly backend: BrowserBackend;
  readonly frames: number;
  readonly tokens: number;
  /** Median of the timed runs, after one warm-up run. */
  readonly sparse_ms: number | null;
  readonly dense_ms: number | null;
  /** sparse_ms / dense_ms (below 1: sparse is faster). */
  readonly ratio: number | null;
  /** sparse / dense attention multiply-adds (the cost model's ratio, for comparison). */
  readonly macs_ratio: number;
  readonly reps: number;
  readonly error: string | null;
}

export interface SprigBench {
  done: boolean;
  readonly results: BenchRow[];
  error: string | null;
}

/** Options of one harness-driven case run. */
export interface RunCaseRequest {
  readonly name: string;
  readonly backend: BrowserBackend;
  /** Also run once more with per-kernel profiling (default true). */
  readonly profile?: boolean;
}

/** The page's programmatic interface (window.__sprig). */
export interface SprigPageApi {
  /** Case names the server lists (GET /cases). */
  listCases(): Promise<string[]>;
  runCase(request: RunCaseRequest): Promise<CaseRow>;
}

/** The globals the page sets; for `page.evaluate` callbacks in the harness. */
export interface SprigGlobals {
  __sprig?: SprigPageApi;
  __sprigResults?: SprigResults;
  __sprigBench?: SprigBench;
}
