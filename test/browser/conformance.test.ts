import { readdirSync } from "node:fs";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BROWSER_BACKENDS,
  type BrowserBackend,
  type CaseRow,
  type SprigGlobals,
} from "../../browser/protocol.js";
import { DEFAULT_CASES_DIR } from "../../browser/server.js";
import { type BrowserSession, startSession } from "../../browser/session.js";
import { CASE_FOLDERS, DOCUMENTED_SKIP } from "../conformance/cases.js";
import { BROWSER_GPUJS, knownFailure } from "../conformance/known-failures.js";

/**
 * Every conformance case in headless Chromium, on gpujs (gpu.js's WebGL2 engine) and
 * tfjs-webgl, with the sidecars' tolerances (runCase applies them; nothing is loosened
 * here): the vision cases at the top of ../shared/conformance and the text, fusion,
 * retrieval and tokenizer cases of its video-text folder, which the server lists as
 * video-text/NAME. WebGL2 runs on SwiftShader, so the numerics are those of a float32 GPU
 * pipeline. Known backend bugs: test/conformance/known-failures.ts (those tests must still
 * fail). Also: the bundle stays free of Node-only packages, the page's autorun renders its
 * tables and per-kernel timings, and the attention benchmark mode reports its ratios.
 */

/** Cases whose run is followed by a profiled run, checked for sane per-kernel timings. */
const PROFILED = new Set(["c1_layer_sparse_keep07", "h1_model_pixels_sparse"]);

/** The full-size layer (768 hidden, 393 tokens) takes about a minute on gpu.js/SwiftShader. */
const SLOW_CASES = new Set(["f1_layer_full_768"]);

/** NAME for each NAME.json + NAME.safetensors in `folder` (a missing folder throws). */
function casesIn(folder: string): string[] {
  const entries = new Set(readdirSync(join(DEFAULT_CASES_DIR, folder)));
  return [...entries]
    .filter((e) => e.endsWith(".safetensors") && entries.has(e.replace(/\.safetensors$/, ".json")))
    .map((e) => e.replace(/\.safetensors$/, ""))
    .sort();
}

/** What the server must list: the top-level cases, then video-text/NAME. */
const CASES = CASE_FOLDERS.flatMap(({ folder }) =>
  casesIn(folder).map((name) => (folder === "" ? name : `${folder}/${name}`)),
);

/** The known failure of `name` ("video-text/NAME" or "NAME") on `backend`, if any. */
function bugOf(name: string, backend: BrowserBackend): string | undefined {
  return knownFailure(backend === "gpujs" ? BROWSER_GPUJS : backend, name.replace(/^.*\//, ""));
}

let session: BrowserSession | undefined;

/** The last `count` lines of the pages' console, for failure messages. */
function tail(log: readonly string[], count = 20): string {
  return log.slice(-count).join("\n");
}
let page: Page | undefined;

beforeAll(async () => {
  session = await startSession();
  page = await session.open("?autorun=0");
}, 180_000);

afterAll(async () => {
  await session?.close();
});

function runInPage(name: string, backend: BrowserBackend, profile: boolean): Promise<CaseRow> {
  return page!.evaluate((request) => (globalThis as SprigGlobals).__sprig!.runCase(request), {
    name,
    backend,
    profile,
  });
}

describe("the browser bundle", () => {
  it("contains the backends and none of the Node-only packages", () => {
    const inputs = session!.bundle.inputs;
    expect(inputs).toContain("browser/shims/gpujs-mode.ts");
    expect(inputs).toContain("backends/gpujs/runtime.ts");
    expect(inputs.some((i) => i.includes("@tensorflow/tfjs-backend-webgl"))).toBe(true);
    const forbidden = inputs.filter((i) =>
      /onnxruntime|onnx-proto|node_modules\/gl\/|backends\/onnx\/|backends\/registry\.ts|tfjs-node/.test(
        i,
      ),
    );
    expect(forbidden).toEqual([]);
  });

  it("runs on WebGL2 with float32 render targets", async () => {
    const platform = await page!.evaluate(
      () => (globalThis as SprigGlobals).__sprigResults!.platform,
    );
    expect(platform.webgl2).not.toMatch(/no WebGL2/);
    expect(platform.colorBufferFloat).toBe(true);
  });

  it("lists the cases the server serves, the video-text folder's included", async () => {
    const listed = await page!.evaluate(() => (globalThis as SprigGlobals).__sprig!.listCases());
    expect(listed).toEqual(CASES);
    for (const { folder, known } of CASE_FOLDERS) {
      for (const name of known)
        expect(listed).toContain(folder === "" ? name : `${folder}/${name}`);
    }
  });
});

describe.each(BROWSER_BACKENDS)("conformance on %s in Chromium", (backend) => {
  for (const name of CASES) {
    const timeout = SLOW_CASES.has(name) ? 600_000 : 180_000;
    const bug = bugOf(name, backend);
    const test = bug === undefined ? it : it.fails;
    test(
      bug === undefined ? name : `${name} (fails: ${bug})`,
      async () => {
        const row = await runInPage(name, backend, PROFILED.has(name));
        const failures = row.checks
          .filter((check) => !check.passed)
          .map((check) => `${check.name}: ${check.detail}`);
        const context = `${name} on ${backend}\n${tail(session!.log)}`;
        expect(row.error, context).toBeNull();
        expect(failures, context).toEqual([]);
        expect(row.checks.length).toBeGreaterThan(0);
        expect(row.passed).toBe(true);
        expect(row.worstPercent).toBeLessThan(100);
        expect(row.skipped.filter((skip) => !DOCUMENTED_SKIP.test(skip))).toEqual([]);
        if (PROFILED.has(name)) {
          const kernels = await page!.evaluate(
            ([c, b]) =>
              (globalThis as SprigGlobals).__sprigResults!.kernels.filter(
                (k) => k.case === c && k.backend === b,
              ),
            [name, backend] as const,
          );
          expect(kernels.length).toBeGreaterThan(3);
          const sum = kernels.reduce((total, k) => total + k.ms, 0);
          expect(Number.isFinite(sum)).toBe(true);
          expect(sum).toBeGreaterThan(0);
          // Per-kernel times are parts of the profiled run (read-back of outputs aside).
          expect(sum).toBeLessThanOrEqual(row.profiledRunMs! * 1.05 + 5);
          if (backend === "gpujs") expect(kernels.every((k) => k.nodes.length > 0)).toBe(true);
        }
      },
      timeout,
    );
  }
});

describe("the page's own modes", () => {
  it("autoruns cases (a video-text one too), renders results and kernel tables, and exposes __sprigResults", async () => {
    const cases = "b4_selfattn_sparse_norpb_div,g1_token_order,video-text/j2_fusion_itm_keep1";
    const autorun = await session!.open(`?cases=${cases}`);
    await autorun.waitForFunction(
      () => (globalThis as SprigGlobals).__sprigResults?.done === true,
      null,
      {
        timeout: 120_000,
      },
    );
    const results = await autorun.evaluate(() => (globalThis as SprigGlobals).__sprigResults!);
    expect(results.error).toBeNull();
    expect(results.results.map((r) => `${r.backend} ${r.case} ${r.passed}`)).toEqual([
      "gpujs b4_selfattn_sparse_norpb_div true",
      "gpujs g1_token_order true",
      "gpujs video-text/j2_fusion_itm_keep1 true",
      "tfjs-webgl b4_selfattn_sparse_norpb_div true",
      "tfjs-webgl g1_token_order true",
      "tfjs-webgl video-text/j2_fusion_itm_keep1 true",
    ]);
    expect(Object.keys(results.profileMethod).sort()).toEqual(["gpujs", "tfjs-webgl"]);
    expect(await autorun.locator("#results tbody tr").count()).toBe(6);
    expect(await autorun.locator("#kernels tbody tr").count()).toBeGreaterThan(4);
    expect(await autorun.locator("#status").textContent()).toBe("done: 6 passed, 0 failed");
    await autorun.close();
  }, 180_000);

  it("benchmarks block-sparse against dense attention", async () => {
    // One frame (197 tokens) keeps this quick on SwiftShader; see the README for 4, 8, 16.
    const bench = await session!.open("?bench=attention&frames=1&reps=1");
    await bench.waitForFunction(
      () => (globalThis as SprigGlobals).__sprigBench?.done === true,
      null,
      {
        timeout: 170_000,
      },
    );
    const result = await bench.evaluate(() => (globalThis as SprigGlobals).__sprigBench!);
    expect(result.error).toBeNull();
    expect(result.results.map((r) => [r.backend, r.frames, r.tokens, r.error])).toEqual([
      ["gpujs", 1, 197, null],
      ["tfjs-webgl", 1, 197, null],
    ]);
    for (const row of result.results) {
      expect(row.sparse_ms).toBeGreaterThan(0);
      expect(row.dense_ms).toBeGreaterThan(0);
      expect(row.ratio).toBeCloseTo(row.sparse_ms! / row.dense_ms!, 10);
      expect(row.macs_ratio).toBeGreaterThan(0);
    }
    expect(await bench.locator("#bench tbody tr").count()).toBe(2);
    await bench.close();
  }, 180_000);
});
