import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runCase } from "../../../src/api/conformance.js";
import { listCases, loadCase } from "../../../src/conformance/case.js";
import { backendFor, VARIANTS } from "./helpers.js";

/**
 * Every case of ../shared/conformance (the authors' PyTorch outputs) through the onnx
 * backend, both lowerings, with the tolerances of each case's sidecar. A missing directory
 * is a failure, not a skip.
 */
const DIR = fileURLToPath(new URL("../../../../shared/conformance", import.meta.url));
const cases = existsSync(DIR) ? await listCases(DIR) : [];

describe("onnx backend: conformance cases", () => {
  it("finds the conformance directory and its cases", () => {
    expect(existsSync(DIR), `${DIR} is missing`).toBe(true);
    expect(cases.length).toBeGreaterThan(0);
  });

  for (const [variant, options] of VARIANTS) {
    describe(variant, () => {
      const backend = backendFor(options);
      for (const path of cases) {
        const name = path.replace(/^.*\//, "").replace(/\.json$/, "");
        it(name, async () => {
          const result = await runCase(await loadCase(path), backend);
          expect(result.error).toBeNull();
          const failed = result.checks
            .filter((c) => !c.passed)
            .map((c) => `${c.name}: ${c.detail}`);
          expect(failed).toEqual([]);
          expect(result.passed).toBe(true);
        });
      }
    });
  }
});
