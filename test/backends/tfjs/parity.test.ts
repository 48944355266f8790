import { describe, expect, it } from "vitest";
import { runReference } from "../../../backends/reference/index.js";
import { type TfjsKind, tfjsBackend } from "../../../backends/tfjs/index.js";
import { headGroups } from "../../../backends/tfjs/ops/attention-device.js";
import type { Strategy } from "../../../backends/tfjs/types.js";
import { expectOutputsClose, type SmallVariant, smallModel } from "./support.js";

/**
 * tfjs against the reference backend on small compiled SViTT encoders (see support.ts), for
 * both tfjs backends and both attention lowerings: every output (last hidden state, pooled
 * output, each layer's input and CLS probabilities, kept token indices) within 1e-4.
 */

const VARIANTS: readonly [string, SmallVariant][] = [
  ["block-sparse, padding reference", {}],
  ["block-sparse, padding masked", { padding: "masked" }],
  ["block-sparse, per-head layouts", { perHead: true }],
  ["block-sparse, batch 2", { batch: 2 }],
  ["dense attention", { dense: true }],
];

/** On wasm, block-sparse attention runs in sprig's WebAssembly kernel unless switched off. */
const BACKENDS: readonly [TfjsKind, Strategy, boolean][] = [
  ["wasm", "host", true],
  ["wasm", "host", false],
  ["wasm", "device", false],
  ["cpu", "device", false],
  ["cpu", "host", false],
];
const labelOf = (kind: TfjsKind, strategy: Strategy, kernel: boolean) =>
  `tfjs-${kind} (${strategy}${kernel ? ", sprig kernel" : ""})`;

describe("tfjs parity with the reference backend", () => {
  for (const [label, variant] of VARIANTS) {
    describe(label, () => {
      const model = smallModel(variant);
      const want = runReference(model.graph, model.weights, model.inputs);
      for (const [kind, strategy, sprigKernel] of BACKENDS) {
        it(`${labelOf(kind, strategy, sprigKernel)} within 1e-4`, async () => {
          const executable = await tfjsBackend(kind, { strategy, sprigKernel }).compile(
            model.graph,
            model.weights,
          );
          try {
            expectOutputsClose(await executable.run(model.inputs), want, 1e-4);
          } finally {
            executable.dispose();
          }
        });
      }
    });
  }

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

  it("the block-sparse layouts are really sparse and padded where the test expects", () => {
    const { graph } = smallModel();
    const sparse = graph.nodes.filter((n) => n.op === "blockSparseAttention");
    expect(sparse.map((n) => n.outputs[0]!.shape[1])).toEqual([33, 24]);
  });
});
