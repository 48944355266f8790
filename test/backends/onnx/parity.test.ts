import { describe, it } from "vitest";
import { compileVision } from "../../../src/api/compile.js";
import type { VisionModelSpec } from "../../../src/models/config.js";
import { initWeights, syntheticClip } from "../../../src/models/init.js";
import { DENSE_SPARSITY, svittSparsity } from "../../../src/models/presets.js";
import { SMALL_BEIT } from "../../support/small-beit.js";
import { expectParity, VARIANTS } from "./helpers.js";

/**
 * Whole compiled vision encoders, small enough for the reference backend: hidden 64, 4
 * heads, 2 layers, 2 frames of 32x32 with patch 8 (window 2x4x4, 32 local tokens), block 8,
 * 1 random block, keep 0.7 after layer 0 (23 tokens: 3 blocks, the last one padded). The
 * onnx backend must match the reference within 1e-4, and i32 outputs exactly.
 */
function spec(
  overrides: {
    batch?: number;
    padding?: "reference" | "masked";
    perHead?: boolean;
    dense?: boolean;
    tokenOrder?: "none" | "zcurve" | "hilbert";
  } = {},
): VisionModelSpec {
  const base = svittSparsity(2);
  return {
    model: SMALL_BEIT,
    frames: 2,
    batch: overrides.batch ?? 1,
    sparsity: overrides.dense
      ? DENSE_SPARSITY
      : {
          attention: {
            ...base.attention!,
            blockSize: 8,
            random: 1,
            padding: overrides.padding ?? "reference",
            perHead: overrides.perHead ?? false,
          },
          tokens: { keepRate: 0.7, dropAfter: [0] },
          tokenOrder: overrides.tokenOrder ?? "none",
        },
  };
}

const MODELS: [string, VisionModelSpec, { foldBytes?: number }][] = [
  ["sparse, padding reference", spec(), {}],
  ["sparse, padding masked", spec({ padding: "masked" }), {}],
  ["sparse, per-head layouts, padding reference", spec({ perHead: true }), {}],
  ["sparse, per-head layouts, padding masked", spec({ perHead: true, padding: "masked" }), {}],
  ["sparse, batch 2", spec({ batch: 2 }), {}],
  ["sparse, batch 2, per-head, masked", spec({ batch: 2, perHead: true, padding: "masked" }), {}],
  ["sparse, z-curve token order", spec({ tokenOrder: "zcurve" }), {}],
  // Bias of the constant token index looked up at run time (over the build-time budget).
  ["sparse, no build-time bias", spec({ padding: "masked" }), { foldBytes: 0 }],
  ["dense", spec({ dense: true }), {}],
  ["dense, batch 2, no build-time bias", spec({ dense: true, batch: 2 }), { foldBytes: 0 }],
];

describe("onnx backend: compiled encoders match the reference backend", () => {
  for (const [variant, options] of VARIANTS) {
    describe(variant, () => {
      for (const [name, model, extra] of MODELS) {
        it(name, async () => {
          const { graph } = compileVision(model);
          await expectParity(graph, initWeights(graph, 3), syntheticClip(graph, 4), {
            ...options,
            ...extra,
          });
        });
      }
    });
  }
});
