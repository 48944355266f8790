import { describe, expect, it } from "vitest";
import { runReference } from "../../../backends/reference/index.js";
import { type TfjsKind, tfjsBackend } from "../../../backends/tfjs/index.js";
import { headGroups } from "../../../backends/tfjs/ops/attention-device.js";
import type { Strategy } from "../../../backends/tfjs/types.js";
import { expectOutputsClose, smallModel } from "./support.js";

/**
 * tfjs options that change the lowering, against the reference backend on the small
 * compiled SViTT encoder (see support.ts), every output within 1e-4: the relative position
 * bias rebuilt per run (staticBiasLimit 0) and dense attention split into head groups
 * (denseLogitsLimit). Every tfjs configuration with its default options is compared with
 * the reference on every parity graph in test/conformance/parity.test.ts.
 */

/** On wasm, block-sparse attention runs in sprig's WebAssembly kernel unless switched off. */
const BACKENDS: readonly [TfjsKind, Strategy, boolean][] = [
  ["wasm", "host", true],
  ["wasm", "host", false],
  ["wasm", "device", false],
  ["cpu", "device", false],
  ["cpu", "host", false],
];

describe("tfjs lowering options still match the reference backend", () => {
  it("rebuilds the bias per run when it may not be precomputed (staticBiasLimit 0)", async () => {
    const model = smallModel();
    const want = runReference(model.graph, model.weights, model.inputs);
    for (const [kind, strategy, sprigKernel] of BACKENDS) {
      const backend = tfjsBackend(kind, { strategy, sprigKernel, staticBiasLimit: 0 });
      const executable = await backend.compile(model.graph, model.weights);
      try {
        expectOutputsClose(await executable.run(model.inputs), want, 1e-4);
      } finally {
        executable.dispose();
      }
    }
  });

  it("splits dense attention into head groups when its logits exceed denseLogitsLimit", async () => {
    // Dense layers see 33 then 24 tokens, 4 heads: a limit of 2 heads' logits at 33 tokens
    // makes groups of 2 in layer 0 and of 3 + 1 in layer 1.
    expect(headGroups(4, 33 * 33, 2 * 33 * 33)).toEqual([
      { first: 0, count: 2 },
      { first: 2, count: 2 },
    ]);
    expect(headGroups(4, 24 * 24, 2 * 33 * 33)).toEqual([
      { first: 0, count: 3 },
      { first: 3, count: 1 },
    ]);
    expect(headGroups(4, 100, 1)).toHaveLength(4);
    for (const staticBiasLimit of [0, undefined]) {
      const model = smallModel({ dense: true });
      const want = runReference(model.graph, model.weights, model.inputs);
      const backend = tfjsBackend("cpu", {
        strategy: "device",
        denseLogitsLimit: 2 * 33 * 33,
        ...(staticBiasLimit === undefined ? {} : { staticBiasLimit }),
      });
      const executable = await backend.compile(model.graph, model.weights);
      try {
        expectOutputsClose(await executable.run(model.inputs), want, 1e-4);
      } finally {
        executable.dispose();
      }
    }
  });
});
