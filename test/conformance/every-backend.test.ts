import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Backend, Executable } from "../../backends/backend.js";
import { nativeStatus } from "../../backends/native/index.js";
import { loadSprigKernel } from "../../backends/tfjs/platform.js";
import { runCase } from "../../src/api/conformance.js";
import { type ConformanceCase, listCases, loadCase } from "../../src/conformance/case.js";
import { GL } from "../backends/gpujs/helpers.js";
import { BACKEND_VARIANTS, type BackendVariant } from "../support/backends.js";
import { CASE_FOLDERS, type CaseFolder, CONFORMANCE_DIR, DOCUMENTED_SKIP } from "./cases.js";
import { knownFailure } from "./known-failures.js";

/**
 * Every conformance case (the authors' PyTorch outputs in ../shared/conformance: the vision
 * cases at the top level and the text, fusion, retrieval and tokenizer cases in video-text/)
 * on every backend variant (test/support/backends.ts), through runCase, the function behind
 * `sprig verify`, with the tolerances of each case's sidecar (runCase applies them; nothing
 * is loosened here). A case passes with no error, at least one check, every check passed, and
 * nothing skipped but the documented reference diagnostics sprig does not produce.
 *
 * A missing folder, or a known case missing from it, fails. Variants that claim one of
 * sprig's own kernels must run it wherever it is built (SPRIG_REQUIRE_NATIVE=1, set by CI,
 * makes a missing kernel a failure); gpu.js's gpu engine is a variant wherever headless-gl
 * runs (SPRIG_REQUIRE_GPU_MODE=1, set by CI, makes its absence a failure).
 *
 * Known backend bugs are listed in known-failures.ts (those tests must still fail).
 *
 * The tests of a file run one after another (vitest's default), which is what the backends
 * need: tfjs switches one global engine and onnxruntime and gpu.js use every core anyway.
 */

/** The folder's path, and its label in test names (relative to ../shared). */
const dirOf = (folder: CaseFolder) => join(CONFORMANCE_DIR, folder.folder);
const labelOf = (folder: CaseFolder) =>
  folder.folder === "" ? "conformance" : `conformance/${folder.folder}`;

/** Case names on disk (none for a missing folder: its presence test fails). */
async function listed(folder: CaseFolder): Promise<string[]> {
  if (!existsSync(dirOf(folder))) return [];
  return (await listCases(dirOf(folder))).map((path) => basename(path, ".json"));
}

/**
 * Each folder's cases: the known ones (a missing one then fails in every variant) and any
 * added since, sorted.
 */
const CASES = await Promise.all(
  CASE_FOLDERS.map(async (folder) => ({
    folder,
    names: [...new Set([...folder.known, ...(await listed(folder))])].sort(),
  })),
);

/** Parsed cases, loaded once and shared by every variant (runCase only reads them). */
const loaded = new Map<string, Promise<ConformanceCase>>();
function caseAt(path: string): Promise<ConformanceCase> {
  let pending = loaded.get(path);
  if (pending === undefined) {
    pending = loadCase(path);
    loaded.set(path, pending);
  }
  return pending;
}

const REQUIRE_NATIVE = process.env.SPRIG_REQUIRE_NATIVE === "1";
const REQUIRE_GPU_MODE = process.env.SPRIG_REQUIRE_GPU_MODE === "1";

/** A variant that runs block-sparse attention in one of sprig's own kernels, when built. */
interface KernelClaim {
  readonly kernel: string;
  /** What Executable.detail says when the kernel runs. */
  readonly used: RegExp;
  /** Null where the kernel is built and loads here, else why not. */
  readonly missing: string | null;
}

const sprigWasm = await loadSprigKernel();
const nativeAddon = nativeStatus();

const KERNEL_CLAIMS: Readonly<Record<string, KernelClaim>> = {
  "onnx (native attention)": {
    kernel: "sprig's native (N-API) block-sparse attention kernel",
    used: /block-sparse attention in sprig's native kernel/,
    missing: nativeAddon.ok ? null : nativeAddon.reason,
  },
  "tfjs-wasm (host, sprig kernel)": {
    kernel: "sprig's WebAssembly block-sparse attention kernel",
    used: /block-sparse attention: sprig's WebAssembly SIMD kernel/,
    missing: typeof sprigWasm === "string" ? sprigWasm : null,
  },
};

/** What one compile + run said it ran, and whether its graph had block-sparse attention. */
interface RunRecord {
  readonly detail: string;
  readonly blockSparse: boolean;
}

/** `backend` with every executable's detail recorded after its run (before dispose). */
function recording(backend: Backend, runs: RunRecord[]): Backend {
  return {
    name: backend.name,
    cores: backend.cores,
    description: backend.description,
    availability: () => backend.availability(),
    compile: async (graph, weights, options) => {
      const inner: Executable = await backend.compile(graph, weights, options);
      const blockSparse = graph.nodes.some((node) => node.op === "blockSparseAttention");
      return {
        backend: inner.backend,
        graph: inner.graph,
        get detail() {
          return inner.detail;
        },
        run: async (inputs) => {
          const outputs = await inner.run(inputs);
          runs.push({ detail: inner.detail, blockSparse });
          return outputs;
        },
        dispose: () => inner.dispose(),
      };
    },
  };
}

/** Checks what a variant says it ran against what the variant claims to be. */
function expectRanAsClaimed(variant: BackendVariant, runs: readonly RunRecord[]): void {
  const claim = KERNEL_CLAIMS[variant.name];
  const gpujsMode = /^gpujs \((\w+)\)$/.exec(variant.name)?.[1];
  for (const run of runs) {
    if (claim !== undefined && run.blockSparse) {
      if (claim.missing === null) expect(run.detail, claim.kernel).toMatch(claim.used);
      else expect(run.detail).not.toMatch(claim.used);
    }
    if (gpujsMode !== undefined) {
      expect(run.detail).toMatch(new RegExp(`^gpu\\.js ${gpujsMode} mode`));
      expect(run.detail).not.toMatch(/fell back/);
    }
  }
}

describe("the conformance folders", () => {
  for (const folder of CASE_FOLDERS) {
    it(`${labelOf(folder)} is present with every known case`, async () => {
      const dir = dirOf(folder);
      expect(existsSync(dir), `missing conformance folder ${dir}`).toBe(true);
      expect(await listed(folder)).toEqual(expect.arrayContaining([...folder.known]));
    });
  }
});

describe("the variants", () => {
  it("are the reference, three onnx lowerings, five tfjs configurations and gpu.js's engines", () => {
    expect(BACKEND_VARIANTS.map((v) => v.name)).toEqual([
      "reference",
      "onnx (native attention)",
      "onnx (contrib)",
      "onnx (portable)",
      "tfjs-cpu (device)",
      "tfjs-cpu (host)",
      "tfjs-wasm (host, sprig kernel)",
      "tfjs-wasm (host)",
      "tfjs-wasm (device)",
      "gpujs (cpu)",
      "gpujs (webasm)",
      ...(GL.ok ? ["gpujs (gpu)"] : []),
    ]);
  });

  // gpu mode is listed only where headless-gl runs (test/backends/gpujs/helpers.ts, MODES).
  it.skipIf(GL.ok || REQUIRE_GPU_MODE)(`gpu.js gpu mode is skipped here: ${GL.detail}`, () => {
    expect(GL.ok).toBe(false);
  });
  it.runIf(REQUIRE_GPU_MODE)("gpu.js gpu mode runs here, as CI requires", () => {
    expect(GL.ok, GL.detail).toBe(true);
  });

  for (const [name, claim] of Object.entries(KERNEL_CLAIMS)) {
    it.skipIf(claim.missing === null || REQUIRE_NATIVE)(
      `${name} runs without ${claim.kernel} here: ${claim.missing ?? "(it is built)"}`,
      () => {
        expect(claim.missing).not.toBeNull();
      },
    );
    it.runIf(REQUIRE_NATIVE)(`${name} has ${claim.kernel}, as CI requires`, () => {
      expect(claim.missing).toBeNull();
    });
  }
});

describe.each(BACKEND_VARIANTS.map((variant) => [variant.name, variant] as const))(
  "every conformance case on %s",
  (_name, variant) => {
    const backend = variant.create();
    for (const { folder, names } of CASES) {
      describe(labelOf(folder), () => {
        for (const name of names) {
          const bug = knownFailure(variant.name, name);
          const test = bug === undefined ? it : it.fails;
          test(bug === undefined ? name : `${name} (fails: ${bug})`, async () => {
            const runs: RunRecord[] = [];
            const testCase = await caseAt(join(dirOf(folder), `${name}.json`));
            const result = await runCase(testCase, recording(backend, runs));
            const failures = result.checks
              .filter((check) => !check.passed)
              .map((check) => `${check.name}: ${check.detail}`);
            expect({ error: result.error, failures }).toEqual({ error: null, failures: [] });
            expect(result.checks.length).toBeGreaterThan(0);
            expect(result.passed).toBe(true);
            expect(result.skipped.filter((skip) => !DOCUMENTED_SKIP.test(skip))).toEqual([]);
            expectRanAsClaimed(variant, runs);
          });
        }
      });
    }
  },
);
