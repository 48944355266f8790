/**
 * Contract of token pruning: keep rate 1 is the identity, both for a whole compiled encoder
 * and for the top-k -> gather selection step itself.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { runReference } from "../../backends/reference/index.js";
import { compileVision } from "../../src/api/compile.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { f32Tensor } from "../../src/ir/tensor.js";
import type { AttentionSparsity, SparsityConfig } from "../../src/models/config.js";
import { randomPixels, randomTensor, randomWeights, rng, smallSpec } from "../models/support.js";

describe("keep rate 1 is the identity", () => {
  it("a compiled encoder with keep rate 1 gives the dense (or equally sparse) outputs", () => {
    fc.assert(
      fc.property(
        fc.record({
          frames: fc.integer({ min: 1, max: 2 }),
          layers: fc.integer({ min: 1, max: 3 }),
          dropMask: fc.integer({ min: 1, max: 7 }),
          withAttention: fc.boolean(),
          seed: fc.integer({ min: 0, max: 1_000_000 }),
        }),
        ({ frames, layers, dropMask, withAttention, seed }) => {
          const dropAfter = [0, 1, 2].filter((i) => i < layers && (dropMask >> i) & 1);
          const attention: AttentionSparsity | null = withAttention
            ? { blockSize: 4, local: 1, random: 1, seed, perHead: false, padding: "reference" }
            : null;
          const base: SparsityConfig = { attention, tokens: null, tokenOrder: "none" };
          const keepAll: SparsityConfig = { ...base, tokens: { keepRate: 1, dropAfter } };
          const spec = smallSpec({ frames, model: { numLayers: layers } });
          const plain = compileVision({ ...spec, sparsity: base });
          const kept = compileVision({ ...spec, sparsity: keepAll });
          expect(kept.graph.nodes.length).toBe(plain.graph.nodes.length);
          const weights = randomWeights(plain.graph, seed);
          const inputs = { pixel_values: randomPixels(spec, seed + 1) };
          const a = runReference(plain.graph, weights, inputs);
          const b = runReference(kept.graph, weights, inputs);
          expect(Object.keys(b).sort()).toEqual(Object.keys(a).sort());
          for (const name of Object.keys(a)) {
            expect(Array.from(b[name]!.data)).toEqual(Array.from(a[name]!.data));
          }
        },
      ),
      { numRuns: 12 },
    );
  });

  it("top-k with k = L followed by gather reproduces the input exactly", () => {
    fc.assert(
      fc.property(
        fc.record({
          batch: fc.integer({ min: 1, max: 3 }),
          prefix: fc.integer({ min: 0, max: 2 }),
          local: fc.integer({ min: 1, max: 20 }),
          width: fc.integer({ min: 1, max: 5 }),
          levels: fc.integer({ min: 1, max: 4 }), // few distinct score values -> many ties
          seed: fc.integer({ min: 0, max: 1_000_000 }),
        }),
        ({ batch, prefix, local, width, levels, seed }) => {
          const b = new GraphBuilder("topk-all");
          const x = b.input("x", { dtype: "f32", shape: [batch, prefix + local, width] });
          const scores = b.input("scores", { dtype: "f32", shape: [batch, local] });
          const keep = b.add1("topK", [scores], { k: local });
          b.output("kept", b.add1("gather", [x, keep], { axis: 1, keepPrefix: prefix }));
          b.output("idx", keep);
          const next = rng(seed);
          const scoreData = f32Tensor([batch, local]);
          for (let i = 0; i < scoreData.data.length; i++) {
            scoreData.data[i] = Math.floor(next() * levels);
          }
          const xData = randomTensor([batch, prefix + local, width], seed + 1);
          const out = runReference(b.build(), new Map(), { x: xData, scores: scoreData });
          expect(Array.from(out.kept!.data)).toEqual(Array.from(xData.data));
          const ascending = Array.from({ length: local }, (_, i) => i);
          for (let item = 0; item < batch; item++) {
            expect(Array.from(out.idx!.data.subarray(item * local, (item + 1) * local))).toEqual(
              ascending,
            );
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});
