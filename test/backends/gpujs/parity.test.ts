import { describe, expect, it } from "vitest";
import { compileVision } from "../../../src/api/compile.js";
import { initWeights, syntheticClip } from "../../../src/models/init.js";
import { runGpujs, smallSpec } from "./helpers.js";

/**
 * What a gpujs executable says about itself. Its outputs are compared with the reference
 * backend's, in every engine, on every parity graph in test/conformance/parity.test.ts.
 */
describe("Executable.detail", () => {
  it("names the gpu.js mode that ran", async () => {
    const { graph } = compileVision(smallSpec("reference", true));
    const { detail } = await runGpujs(graph, initWeights(graph, 1), syntheticClip(graph, 1), "cpu");
    expect(detail).toMatch(/^gpu\.js cpu mode \(JavaScript kernels/);
    expect(detail).toMatch(/\d+ generated kernels, \d+ launches per run/);
    expect(detail).not.toMatch(/fell back/);
  });
});
