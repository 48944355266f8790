import { describe, expect, it } from "vitest";
import { emitModule } from "../../../backends/gpujs/codegen/module.js";
import { compileVision } from "../../../src/api/compile.js";
import { smallSpec } from "./helpers.js";

/**
 * The generated sources of a small fixed model (2 layers, per-head random blocks, padded
 * blocks after pruning), kept as file snapshots: a refactor of the code generator cannot
 * change a kernel or the schedule without the diff showing up here. Update deliberately
 * with `npx vitest run test/backends/gpujs/snapshot.test.ts -u`.
 */

const SNAPSHOTS = "../../__snapshots__/gpujs";

describe("generated gpujs sources for the small SViTT encoder", () => {
  const { files, program } = emitModule(compileVision(smallSpec("reference", true)), {
    title: "small SViTT encoder (snapshot)",
  });

  it("kernels.ts", async () => {
    await expect(files.get("kernels.ts")).toMatchFileSnapshot(
      `${SNAPSHOTS}/small-svitt.kernels.ts.snap`,
    );
  });

  it("model.ts", async () => {
    await expect(files.get("model.ts")).toMatchFileSnapshot(
      `${SNAPSHOTS}/small-svitt.model.ts.snap`,
    );
  });

  it("the JavaScript handed to gpu.createKernel", async () => {
    const js = program.kernels.map((kernel) => kernel.js).join("\n\n");
    await expect(`${js}\n`).toMatchFileSnapshot(`${SNAPSHOTS}/small-svitt.kernels.js.snap`);
  });
});
