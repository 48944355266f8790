import { describe, expect, it } from "vitest";
import { reorderTokens } from "../../passes/reorder-tokens.js";
import { runReference } from "../../backends/reference/index.js";
import { ConfigError } from "../../src/ir/errors.js";
import { type Graph, nodesOf } from "../../src/ir/graph.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { buildVisionModel } from "../../src/models/beit.js";
import { runPasses } from "../../src/pass-manager.js";
import { signature } from "../ir/support.js";
import { maxAbsDiff, randomPixels, randomWeights, smallSpec } from "../models/support.js";

const WINDOW: [number, number, number] = [2, 4, 4];

/**
 * Naive z-curve over (T, H, W) = (2, 4, 4): nbits = bit_length(4) = 3 and
 * code = sum_j bit_j(t) << 3j | bit_j(h) << (3j + 1) | bit_j(w) << (3j + 2); order = argsort(code).
 */
function naiveZCurve(): number[] {
  const codes: [number, number][] = [];
  for (let t = 0; t < 2; t++)
    for (let h = 0; h < 4; h++)
      for (let w = 0; w < 4; w++) {
        let code = 0;
        for (let j = 0; j < 3; j++) {
          code += ((t >> j) & 1) << (3 * j);
          code += ((h >> j) & 1) << (3 * j + 1);
          code += ((w >> j) & 1) << (3 * j + 2);
        }
        codes.push([code, t * 16 + h * 4 + w]);
      }
  return codes.sort((a, b) => a[0] - b[0]).map(([, i]) => i);
}

function reorder(graph: Graph, kind: "none" | "zcurve" | "hilbert"): Graph {
  return runPasses(graph, [reorderTokens({ kind, window: WINDOW, globalTokens: 1 })], { debug: 0 })
    .graph;
}

describe("reorder-tokens", () => {
  const spec = smallSpec({ model: { numLayers: 2 } });
  const dense = buildVisionModel(spec);

  it("gathers the encoder input in curve order and replaces the token index by the order", () => {
    const result = reorder(dense, "zcurve");
    verifyGraph(result);
    const order = naiveZCurve();
    // two nodes more: the order constant for the gather and the gather itself
    expect(result.nodes.length).toBe(dense.nodes.length + 2);
    const entry = result.nodes.find((n) => n.role === "encoderInput")!;
    expect(entry.op).toBe("gather");
    expect(entry.attrs).toEqual({ axis: 1, keepPrefix: 1 });
    expect(entry.outputs[0]).toEqual({ dtype: "f32", shape: [1, 33, 32] });
    const [sequence, orderRef] = entry.inputs;
    expect(result.nodes[sequence!.node]!.op).toBe("prependTokens");
    expect(result.nodes[sequence!.node]!.role).toBeNull();
    const orderNode = result.nodes[orderRef!.node]!;
    expect(orderNode.op).toBe("constant");
    if (orderNode.op !== "constant") return;
    expect(Array.from(orderNode.attrs.value.data)).toEqual(order);
    expect(orderNode.attrs.value.shape).toEqual([1, 32]);
    const index = result.nodes.filter((n) => n.role === "tokenIndex");
    expect(index).toHaveLength(1);
    const indexNode = index[0]!;
    if (indexNode.op !== "constant") throw new Error("token index is not a constant");
    expect(Array.from(indexNode.attrs.value.data)).toEqual(order);
    // every layer reads the new index; the first layer reads the gathered sequence
    for (const attn of nodesOf(result, "attention"))
      expect(attn.inputs[4]!.node).toBe(indexNode.id);
    const firstNorm = nodesOf(result, "layerNorm")[0]!;
    expect(firstNorm.inputs[0]!.node).toBe(entry.id);
    // beyond the two inserted nodes, shapes are unchanged
    const extra = new Set([entry.id, orderRef!.node]);
    expect(signature(result).filter((_, i) => !extra.has(i))).toEqual(signature(dense));
  });

  it("permutes the tokens without changing what the dense encoder computes", () => {
    // Relative position bias follows the original positions via the token index, so the
    // reordered dense encoder gives the permuted hidden states and the same pooled output.
    const weights = randomWeights(dense, 21);
    const inputs = { pixel_values: randomPixels(spec, 22) };
    const plain = runReference(dense, weights, inputs);
    const curved = runReference(reorder(dense, "hilbert"), weights, inputs);
    expect(maxAbsDiff(curved.pooler_output!.data, plain.pooler_output!.data)).toBeLessThan(1e-5);
    const hilbertIndex = reorder(dense, "hilbert").nodes.find((n) => n.role === "tokenIndex")!;
    if (hilbertIndex.op !== "constant") throw new Error("token index is not a constant");
    const order = Array.from(hilbertIndex.attrs.value.data);
    expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: 32 }, (_, i) => i));
    const p = plain.last_hidden_state!.data;
    const c = curved.last_hidden_state!.data;
    const rows = [0, ...order.map((i) => i + 1)];
    const permuted = rows.flatMap((r) => Array.from(p.subarray(r * 32, (r + 1) * 32)));
    expect(maxAbsDiff(c, permuted)).toBeLessThan(1e-5);
    // and it is a real permutation of the rows, not the identity
    expect(order).not.toEqual(Array.from({ length: 32 }, (_, i) => i));
  });

  it("declines kind none", () => {
    expect(
      reorderTokens({ kind: "none", window: WINDOW, globalTokens: 1 }).run(
        dense,
        undefined as never,
      ),
    ).toBe(dense);
  });

  it("rejects a window that does not match the encoder's tokens", () => {
    const pass = reorderTokens({ kind: "zcurve", window: [3, 4, 4], globalTokens: 1 });
    expect(() => pass.run(dense, undefined as never)).toThrow(ConfigError);
    expect(() => pass.run(dense, undefined as never)).toThrow(
      /sparsity\.tokenOrder.*48 tokens.*32/,
    );
  });
});
