import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runCase } from "../../../src/api/conformance.js";
import { listCases, loadCase } from "../../../src/conformance/case.js";
import { CONFORMANCE_DIR, GL, gpujsIn, MODES } from "./helpers.js";

/**
 * Every case of ../shared/conformance on the gpujs backend, with the sidecars' tolerances
 * (runCase applies them; nothing is loosened here). cpu mode always; webasm (float32
 * arithmetic, no GPU needed) always; gpu mode where headless-gl runs (xvfb-run -a).
 */

describe("conformance data", () => {
  it("is present beside the checkout", () => {
    expect(existsSync(CONFORMANCE_DIR), `${CONFORMANCE_DIR} is missing`).toBe(true);
  });
});

const sidecars = existsSync(CONFORMANCE_DIR) ? await listCases(CONFORMANCE_DIR) : [];

describe.each(MODES)("gpujs %s mode on every conformance case", (mode) => {
  it("finds the cases", () => {
    expect(sidecars.length).toBeGreaterThanOrEqual(14);
  });
  for (const sidecar of sidecars) {
    const name = sidecar.replace(/^.*\//, "").replace(/\.json$/, "");
    it(name, async () => {
      const result = await runCase(await loadCase(sidecar), gpujsIn(mode));
      const failures = result.checks
        .filter((check) => !check.passed)
        .map((check) => `${check.name}: ${check.detail}`);
      expect(result.error).toBeNull();
      expect(failures).toEqual([]);
      expect(result.passed).toBe(true);
    });
  }
});

/**
 * CI sets SPRIG_REQUIRE_GPU_MODE=1: there headless-gl is built and test/setup/display.ts
 * starts Xvfb, so a gpu mode that cannot run is a failure, not a skip.
 */
describe("gpu mode", () => {
  const required = process.env.SPRIG_REQUIRE_GPU_MODE === "1";
  it.skipIf(GL.ok || required)(`is skipped here: ${GL.detail}`, () => {
    expect(GL.ok).toBe(false);
  });
  it.runIf(required)("runs here, as CI requires", () => {
    expect(GL.ok, GL.detail).toBe(true);
  });
});
