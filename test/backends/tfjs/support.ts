/**
 * Shared by the tfjs backend tests: the small vision model of the parity and memory tests
 * (hidden 64, 4 heads, 2 layers, 2 frames of 32x32 pixels, patch 8 -> 32 local tokens,
 * block 8, 1 random block, keep 0.7 after layer 0 -> 23 tokens, so layer 1 has a padded
 * block) and a comparison helper.
 */
import { expect } from "vitest";
import { compileVision } from "../../../src/api/compile.js";
import type { Graph } from "../../../src/ir/graph.js";
import type { PaddingMode } from "../../../src/ir/pattern.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import type { VisionModelSpec } from "../../../src/models/config.js";
import { initWeights, syntheticClip } from "../../../src/models/init.js";
import { SMALL_BEIT } from "../../support/small-beit.js";

export interface SmallVariant {
  readonly padding?: PaddingMode;
  readonly perHead?: boolean;
  readonly dense?: boolean;
  readonly batch?: number;
}

export function smallSpec(variant: SmallVariant = {}): VisionModelSpec {
  return {
    model: SMALL_BEIT,
    frames: 2,
    batch: variant.batch ?? 1,
    sparsity: {
      attention:
        variant.dense === true
          ? null
          : {
              blockSize: 8,
              local: 1,
              random: 1,
              seed: 0,
              perHead: variant.perHead ?? false,
              padding: variant.padding ?? "reference",
            },
      tokens: { keepRate: 0.7, dropAfter: [0] },
      tokenOrder: "none",
    },
  };
}

export interface SmallModel {
  readonly graph: Graph;
  readonly weights: Map<string, HostTensor>;
  readonly inputs: Record<string, HostTensor>;
}

/** The compiled small model (with every layer's hidden state and CLS probabilities as outputs). */
export function smallModel(variant: SmallVariant = {}): SmallModel {
  const { graph } = compileVision(smallSpec(variant), { diagnostics: true });
  return { graph, weights: initWeights(graph, 1), inputs: syntheticClip(graph, 2) };
}

/** Largest |a - b| over all elements (NaN if shapes or dtypes differ). */
export function maxAbsError(got: HostTensor, want: HostTensor): number {
  if (got.dtype !== want.dtype || got.shape.join() !== want.shape.join()) return Number.NaN;
  let worst = 0;
  for (let i = 0; i < want.data.length; i++) {
    const e = Math.abs(got.data[i]! - want.data[i]!);
    if (!(e <= worst)) worst = e;
  }
  return worst;
}

/** Every output of `want` present in `got`, f32 within `atol`, i32 exactly. */
export function expectOutputsClose(
  got: Record<string, HostTensor>,
  want: Record<string, HostTensor>,
  atol: number,
): void {
  const errors: Record<string, number> = {};
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    expect(g, `output ${name}`).toBeDefined();
    errors[name] = maxAbsError(g!, w);
  }
  for (const [name, e] of Object.entries(errors)) {
    const limit = want[name]!.dtype === "i32" ? 0 : atol;
    expect(e, `max |error| of ${name}: ${JSON.stringify(errors)}`).toBeLessThanOrEqual(limit);
  }
}
