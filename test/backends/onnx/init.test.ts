import { describe, expect, it } from "vitest";
import { compileVision } from "../../../src/api/compile.js";
import { initWeights, syntheticClip } from "../../../src/models/init.js";
import { DENSE_SPARSITY } from "../../../src/models/presets.js";
import { SMALL_BEIT } from "../../support/small-beit.js";

/** Seeded synthetic weights and inputs (src/models/init.ts). */

const graph = compileVision({
  model: SMALL_BEIT,
  frames: 2,
  batch: 1,
  sparsity: DENSE_SPARSITY,
}).graph;

function stats(data: Float32Array): { mean: number; std: number } {
  let sum = 0;
  for (const v of data) sum += v;
  const mean = sum / data.length;
  let sq = 0;
  for (const v of data) sq += (v - mean) ** 2;
  return { mean, std: Math.sqrt(sq / data.length) };
}

describe("initWeights", () => {
  it("gives every weight of the graph, with its shape", () => {
    const weights = initWeights(graph);
    for (const node of graph.nodes) {
      if (node.op !== "weight") continue;
      expect(weights.get(node.attrs.name)?.shape).toEqual(node.attrs.type.shape);
    }
  });

  it("is deterministic per seed and weight name", () => {
    const a = initWeights(graph, 5).get("encoder.layer.1.intermediate.dense.weight")!;
    const b = initWeights(graph, 5).get("encoder.layer.1.intermediate.dense.weight")!;
    const c = initWeights(graph, 6).get("encoder.layer.1.intermediate.dense.weight")!;
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    expect(Array.from(a.data)).not.toEqual(Array.from(c.data));
  });

  it("draws each kind of weight from its distribution", () => {
    const w = initWeights(graph, 0);
    const get = (name: string) => stats(w.get(name)!.data as Float32Array);
    const linear = get("encoder.layer.0.intermediate.dense.weight");
    expect(Math.abs(linear.mean)).toBeLessThan(0.005);
    expect(linear.std).toBeCloseTo(0.02, 2);
    const lnWeight = get("encoder.layer.0.layernorm_before.weight");
    expect(lnWeight.mean).toBeGreaterThan(0.9);
    expect(lnWeight.mean).toBeLessThan(1.1);
    const table = get(
      "encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table",
    );
    expect(table.std).toBeGreaterThan(0.4);
    expect(table.std).toBeLessThan(0.6);
    const lambda = get("encoder.layer.0.lambda_1");
    expect(lambda.mean).toBeGreaterThan(0.4);
    expect(lambda.mean).toBeLessThan(0.6);
  });
});

describe("syntheticClip", () => {
  it("gives N(0, 1) values for every f32 input, deterministically", () => {
    const a = syntheticClip(graph, 1);
    expect(Object.keys(a)).toEqual(["pixel_values"]);
    expect(a.pixel_values!.shape).toEqual([1, 2, 3, 32, 32]);
    const s = stats(a.pixel_values!.data as Float32Array);
    expect(Math.abs(s.mean)).toBeLessThan(0.1);
    expect(s.std).toBeGreaterThan(0.9);
    expect(s.std).toBeLessThan(1.1);
    expect(Array.from(syntheticClip(graph, 1).pixel_values!.data)).toEqual(
      Array.from(a.pixel_values!.data),
    );
  });
});
