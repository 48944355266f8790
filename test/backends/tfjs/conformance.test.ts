import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type TfjsKind, tfjsBackend } from "../../../backends/tfjs/index.js";
import type { Strategy } from "../../../backends/tfjs/types.js";
import { runCase } from "../../../src/api/conformance.js";
import { listCases, loadCase } from "../../../src/conformance/case.js";

/**
 * Every shared conformance case on tfjs-wasm and tfjs-cpu with their default lowerings
 * (wasm: host-assembled 2-D matMuls; cpu: batched device ops), and on tfjs-wasm with the
 * portable "device" lowering too, each with the tolerances in the case's sidecar. A missing
 * case directory is a failure, not a skip.
 */

const DIR = fileURLToPath(new URL("../../../../shared/conformance/", import.meta.url));

/** Default wasm runs block-sparse attention in sprig's WebAssembly kernel (when built). */
const CONFIGS: readonly [TfjsKind, Strategy | undefined, boolean][] = [
  ["wasm", undefined, true],
  ["wasm", undefined, false],
  ["wasm", "device", false],
  ["cpu", undefined, false],
];

describe("tfjs conformance", () => {
  it("finds the shared conformance cases", async () => {
    expect(existsSync(DIR), `${DIR} is missing`).toBe(true);
    expect((await listCases(DIR)).length).toBeGreaterThanOrEqual(14);
  });

  for (const [kind, strategy, sprigKernel] of CONFIGS) {
    const label = `tfjs-${kind}${strategy === undefined ? "" : ` (${strategy})`}${sprigKernel ? "" : ", tfjs ops only"}`;
    it(`passes every case on ${label}`, { timeout: 90_000 }, async () => {
      const backend = tfjsBackend(kind, {
        ...(strategy === undefined ? {} : { strategy }),
        sprigKernel,
      });
      const paths = await listCases(DIR);
      expect(paths.length).toBeGreaterThan(0);
      const failures: string[] = [];
      for (const path of paths) {
        const result = await runCase(await loadCase(path), backend);
        if (!result.passed) {
          const bad = result.checks
            .filter((c) => !c.passed)
            .map((c) => `${c.name}: max |error| ${c.maxAbsError} (${c.detail})`);
          failures.push(`${result.name}: ${result.error ?? bad.join("; ")}`);
        }
      }
      expect(failures).toEqual([]);
    });
  }
});
