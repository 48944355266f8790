import { describe, it } from "vitest";
import { compileVision } from "../../../src/api/compile.js";
import type { VisionModelSpec } from "../../../src/models/config.js";
import { initWeights, syntheticClip } from "../../../src/models/init.js";
import { DENSE_SPARSITY, svittSparsity } from "../../../src/models/presets.js";
import { SMALL_BEIT } from "../../support/small-beit.js";
import { expectParity, VARIANTS } from "./helpers.js";

/**
 * onnx build options that change the lowering, on each onnx lowering, against the
 * reference backend: the relative position bias of the constant token index looked up at
 * run time (foldBytes 0: over the build-time budget) instead of precomputed. Small compiled
 * vision encoders: hidden 64, 4 heads, 2 layers, 2 frames of 32x32 with patch 8 (window
 * 2x4x4, 32 local tokens), block 8, 1 random block, keep 0.7 after layer 0. Within 1e-4,
 * i32 outputs exactly. The same graphs with the default options, and every other graph,
 * are compared on every backend in test/conformance/parity.test.ts.
 */
function spec(overrides: { batch?: number; dense?: boolean } = {}): VisionModelSpec {
  const base = svittSparsity(2);
  return {
    model: SMALL_BEIT,
    frames: 2,
    batch: overrides.batch ?? 1,
    sparsity: overrides.dense
      ? DENSE_SPARSITY
      : {
          attention: { ...base.attention!, blockSize: 8, random: 1, padding: "masked" },
          tokens: { keepRate: 0.7, dropAfter: [0] },
          tokenOrder: "none",
        },
  };
}

const MODELS: [string, VisionModelSpec][] = [
  ["sparse, padding masked, no build-time bias", spec()],
  ["dense, batch 2, no build-time bias", spec({ dense: true, batch: 2 })],
];

describe("onnx backend: lowering options still match the reference backend", () => {
  for (const [variant, options] of VARIANTS) {
    describe(variant, () => {
      for (const [name, model] of MODELS) {
        it(name, async () => {
          const { graph } = compileVision(model);
          await expectParity(graph, initWeights(graph, 3), syntheticClip(graph, 4), {
            ...options,
            foldBytes: 0,
          });
        });
      }
    });
  }
});
