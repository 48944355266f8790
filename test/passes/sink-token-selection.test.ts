import { describe, expect, it } from "vitest";
import { pruneTokens } from "../../passes/prune-tokens.js";
import { sinkTokenSelection } from "../../passes/sink-token-selection.js";
import { runReference } from "../../backends/reference/index.js";
import { analyzeCost } from "../../src/cost.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { Graph, TensorRef } from "../../src/ir/graph.js";
import { printGraph } from "../../src/ir/print.js";
import { relPosTableRows } from "../../src/ir/relpos.js";
import { beitLayer, buildVisionModel, identityTokenIndex } from "../../src/models/beit.js";
import type { BeitConfig } from "../../src/models/config.js";
import { runPasses } from "../../src/pass-manager.js";
import { randomPixels, randomWeights, SMALL_MODEL, smallSpec } from "../models/support.js";

const CFG: BeitConfig = { ...SMALL_MODEL, numLayers: 2 };
const WINDOW = [2, 4, 4] as const;
const C = CFG.hiddenSize;
const I = CFG.intermediateSize;

/** Two BEiT layers over 1 + 32 tokens (as in prune-tokens.test.ts). */
function encoder(): Graph {
  const b = new GraphBuilder("enc");
  const x = b.input("hidden_states", { dtype: "f32", shape: [1, 33, C] }, "encoderInput");
  const idx = identityTokenIndex(b, 32);
  let h = x;
  for (let i = 0; i < 2; i++) {
    h = b.withScope(`layer.${i}`, () => beitLayer(b, h, CFG, i, idx, WINDOW)).output;
  }
  b.output("last_hidden_state", h);
  return b.build();
}

const prune = (keepRate: number, afterLayers: number[]) => pruneTokens({ keepRate, afterLayers });

/** Runs passes with the verifier around each one. */
function run(graph: Graph, passes: ReturnType<typeof sinkTokenSelection>[]): Graph {
  return runPasses(graph, passes, { debug: 0 }).graph;
}

/**
 * What pruning after layer 0 and sinking should give, written out by hand: layer 0 up to
 * attention as built, then the selection, then the output projection, residuals,
 * LayerNorm and FFN on the 1 + k kept rows, gathered from the attention context and the
 * layer input. Weights keep their places (before the selection), as the rewrite copies them.
 */
function expectedSunkEncoder(k: number): Graph {
  const b = new GraphBuilder("enc");
  const x = b.input("hidden_states", { dtype: "f32", shape: [1, 33, C] }, "encoderInput");
  const idx = identityTokenIndex(b, 32);
  const weight = (key: string, shape: number[]) => b.weight(key, shape);
  const output = b.withScope("layer.0", () =>
    b.inLayer(0, () => {
      const ln = (scope: string, input: TensorRef) =>
        b.withScope(scope, () =>
          b.add1("layerNorm", [input, weight("weight", [C]), weight("bias", [C])], {
            eps: CFG.layerNormEps,
          }),
        );
      const normed = ln("layernorm_before", x);
      const [q, kk, v] = b.withScope("attention.attention", () => [
        b.withScope("query", () =>
          b.add1("linear", [normed, weight("weight", [C, C]), weight("bias", [C])], {}),
        ),
        b.withScope("key", () => b.add1("linear", [normed, weight("weight", [C, C])], {})),
        b.withScope("value", () =>
          b.add1("linear", [normed, weight("weight", [C, C]), weight("bias", [C])], {}),
        ),
      ]);
      const table = weight(
        "attention.attention.relative_position_bias.relative_position_bias_table",
        [relPosTableRows(WINDOW), CFG.numHeads],
      );
      const [context, probs] = b.add(
        "attention",
        [q!, kk!, v!, table, idx],
        { heads: 4, numCls: 1, probs: "cls", mask: false, relPosBias: { window: WINDOW } },
        { name: "layer.0.attention.attention" },
      );
      // the weights of everything after attention, in the builder's order
      const wo = weight("attention.output.dense.weight", [C, C]);
      const bo = weight("attention.output.dense.bias", [C]);
      const lambda1 = weight("lambda_1", [C]);
      const lnAfterW = weight("layernorm_after.weight", [C]);
      const lnAfterB = weight("layernorm_after.bias", [C]);
      const w1 = weight("intermediate.dense.weight", [I, C]);
      const b1 = weight("intermediate.dense.bias", [I]);
      const w2 = weight("output.dense.weight", [C, I]);
      const b2 = weight("output.dense.bias", [C]);
      const lambda2 = weight("lambda_2", [C]);
      const site = "layer.0.residual_2.prune";
      const scores = b.add1(
        "tokenScores",
        [probs!],
        { row: 0, skip: 1 },
        { name: `${site}.scores` },
      );
      const keep = b.add1("topK", [scores], { k }, { name: `${site}.topk` });
      const gathered = (input: TensorRef, name: string) =>
        b.add1("gather", [input, keep], { axis: 1, keepPrefix: 1 }, { name });
      const keptContext = gathered(context!, "layer.0.attention.attention.kept");
      const projected = b.add1(
        "linear",
        [keptContext, wo, bo],
        {},
        {
          name: "layer.0.attention.output.dense",
        },
      );
      const scaled = b.add1("mul", [projected, lambda1], {}, { name: "layer.0.lambda_1" });
      const keptInput = gathered(x, "hidden_states.kept");
      const hidden = b.add1("add", [scaled, keptInput], {}, { name: "layer.0.residual_1" });
      const ffnIn = b.add1(
        "layerNorm",
        [hidden, lnAfterW, lnAfterB],
        { eps: CFG.layerNormEps },
        {
          name: "layer.0.layernorm_after",
        },
      );
      const up = b.add1("linear", [ffnIn, w1, b1], {}, { name: "layer.0.intermediate.dense" });
      const act = b.add1("gelu", [up], {}, { name: "layer.0" });
      const down = b.add1("linear", [act, w2, b2], {}, { name: "layer.0.output.dense" });
      const scaled2 = b.add1("mul", [down, lambda2], {}, { name: "layer.0.lambda_2" });
      const out = b.add1(
        "add",
        [scaled2, hidden],
        {},
        {
          name: "layer.0.residual_2",
          role: "layerOutput",
        },
      );
      const keptIdx = b.add1(
        "gather",
        [idx, keep],
        { axis: 1, keepPrefix: 0 },
        { name: `${site}.token_index` },
      );
      return { out, keptIdx };
    }),
  );
  b.output("token_idx.0", output.keptIdx);
  const l1 = b.withScope("layer.1", () => beitLayer(b, output.out, CFG, 1, output.keptIdx, WINDOW));
  b.output("last_hidden_state", l1.output);
  return b.build();
}

describe("sink-token-selection", () => {
  it("moves the selection of a drop layer up to its attention context and input", () => {
    const result = run(encoder(), [prune(0.7, [0]), sinkTokenSelection()]);
    expect(printGraph(result)).toBe(printGraph(expectedSunkEncoder(23)));
  });

  it("removes (N - G - k) x (C² + 2 C I) linear MACs per drop layer, nothing else", () => {
    const pruned = run(encoder(), [prune(0.7, [0])]);
    const sunk = run(pruned, [sinkTokenSelection()]);
    const before = analyzeCost(pruned);
    const after = analyzeCost(sunk);
    // 33 rows before the drop, 1 + 23 after: 9 rows skip Wo (C x C) and the FFN (2 x C x I)
    const removed = (33 - 24) * (C * C + 2 * C * I);
    expect(removed).toBe(46080);
    expect(before.totals.linearMacs - after.totals.linearMacs).toBe(removed);
    expect(after.totals.attentionMacs).toBe(before.totals.attentionMacs);
    expect(after.layers[0]!.linearMacs).toBe(33 * 3 * C * C + 24 * (C * C + 2 * C * I));
    expect(after.layers.map((l) => [l.tokensIn, l.tokensOut])).toEqual([
      [33, 24],
      [24, 24],
    ]);
  });

  it("says what it removed at debug level 1", () => {
    const lines: string[] = [];
    const pruned = run(encoder(), [prune(0.7, [0])]);
    runPasses(pruned, [sinkTokenSelection()], { debug: 1, log: (line) => lines.push(line) });
    expect(lines[0]).toBe(
      "sink-token-selection: -0.00 GMAC (46080 MACs; 1 selections moved up through 9 ops)",
    );
  });

  it("changes no output of a pruned vision model (reference, every diagnostic, two drops)", () => {
    const spec = smallSpec({ model: { numLayers: 4 } });
    const dense = buildVisionModel(spec, { diagnostics: true });
    const pruned = run(dense, [prune(0.7, [0, 2])]);
    const sunk = run(pruned, [sinkTokenSelection()]);
    // both drop layers moved: their linears now run on the kept rows
    const rowsOf = (graph: Graph, name: string) =>
      graph.nodes.find((n) => n.name === name && n.op === "linear")!.outputs[0]!.shape[1];
    expect(rowsOf(sunk, "encoder.layer.0.intermediate.dense")).toBe(24);
    expect(rowsOf(sunk, "encoder.layer.2.intermediate.dense")).toBe(18);
    expect(rowsOf(sunk, "encoder.layer.2.attention.attention.query")).toBe(24);
    const weights = randomWeights(dense, 5);
    const inputs = { pixel_values: randomPixels(spec, 6) };
    const want = runReference(pruned, weights, inputs);
    const got = runReference(sunk, weights, inputs);
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    // the reference computes every row on its own, in the same order: bit for bit equal
    for (const [name, tensor] of Object.entries(want)) {
      expect(got[name]!.shape, name).toEqual(tensor.shape);
      expect(Array.from(got[name]!.data), name).toEqual(Array.from(tensor.data));
    }
  });

  it("keeps one layerOutput per layer, the moved residual taking the gather's place", () => {
    const spec = smallSpec({ model: { numLayers: 4 } });
    const sunk = run(buildVisionModel(spec), [prune(0.7, [0, 2]), sinkTokenSelection()]);
    const outputs = sunk.nodes
      .filter((n) => n.role === "layerOutput")
      .map((n) => [n.layer, n.op, n.outputs[0]!.shape[1]]);
    expect(outputs).toEqual([
      [0, "add", 24],
      [1, "add", 24],
      [2, "add", 18],
      [3, "add", 18],
    ]);
  });
});

/** x f32[1, 5, 8] and a selection of 1 + 2 of its 5 rows from a probabilities input. */
function selectionGraph(
  body: (b: GraphBuilder, x: TensorRef) => TensorRef,
  options: { axis?: number; extraOutput?: boolean } = {},
): Graph {
  const b = new GraphBuilder("sel");
  const x = b.input("x", { dtype: "f32", shape: [1, 5, 8] });
  const probs = b.input("probs", { dtype: "f32", shape: [1, 2, 1, 5] });
  const y = body(b, x);
  const keep = b.add1(
    "topK",
    [b.add1("tokenScores", [probs], { row: 0, skip: 1 }, { name: "s" })],
    {
      k: 2,
    },
    { name: "k" },
  );
  const g = b.add1("gather", [y, keep], { axis: options.axis ?? 1, keepPrefix: 1 }, { name: "g" });
  b.output("g", g);
  if (options.extraOutput) b.output("y", y);
  return b.build();
}

const linearOf = (b: GraphBuilder, x: TensorRef, name = "proj") =>
  b.add1(
    "linear",
    [x, b.weight(`${name}.weight`, [8, 8]), b.weight(`${name}.bias`, [8])],
    {},
    {
      name,
    },
  );

const sink = (graph: Graph) => run(graph, [sinkTokenSelection()]);

describe("sink-token-selection: the rule, on small graphs", () => {
  it("sinks through any op with a per-token fact (l2Normalize: no name listed in the pass)", () => {
    const result = sink(
      selectionGraph((b, x) =>
        b.add1("l2Normalize", [linearOf(b, x)], { eps: 1e-12 }, { name: "n" }),
      ),
    );
    const b = new GraphBuilder("sel");
    const x = b.input("x", { dtype: "f32", shape: [1, 5, 8] });
    const probs = b.input("probs", { dtype: "f32", shape: [1, 2, 1, 5] });
    const w = b.weight("proj.weight", [8, 8]);
    const bias = b.weight("proj.bias", [8]);
    const keep = b.add1(
      "topK",
      [b.add1("tokenScores", [probs], { row: 0, skip: 1 }, { name: "s" })],
      {
        k: 2,
      },
      { name: "k" },
    );
    const keptX = b.add1("gather", [x, keep], { axis: 1, keepPrefix: 1 }, { name: "x.kept" });
    const y = b.add1("linear", [keptX, w, bias], {}, { name: "proj" });
    b.output("g", b.add1("l2Normalize", [y], { eps: 1e-12 }, { name: "n" }));
    expect(printGraph(result)).toBe(printGraph(b.build()));
  });

  it("reads operands that broadcast over the axis whole, and gathers those that carry it", () => {
    const result = sink(
      selectionGraph((b, x) => {
        const scale = b.weight("scale", [1, 1, 8]);
        const other = b.input("other", { dtype: "f32", shape: [1, 5, 1] });
        return b.add1(
          "add",
          [b.add1("mul", [x, scale], {}, { name: "m" }), other],
          {},
          { name: "a" },
        );
      }),
    );
    const gathers = result.nodes.filter((n) => n.op === "gather").map((n) => n.name);
    expect(gathers).toEqual(["x.kept", "other.kept"]);
    const mul = result.nodes.find((n) => n.name === "m")!;
    expect(result.nodes[mul.inputs[1]!.node]!.name).toBe("scale");
    expect(mul.outputs[0]!.shape).toEqual([1, 3, 8]);
  });

  it("declines when a graph output reads the selected tensor whole", () => {
    const graph = selectionGraph((b, x) => linearOf(b, x), { extraOutput: true });
    expect(sink(graph)).toBe(graph);
  });

  it("declines when another node reads the selected tensor whole", () => {
    const graph = selectionGraph((b, x) => {
      const y = linearOf(b, x);
      b.output("side", b.add1("gelu", [y], {}, { name: "side" }));
      return y;
    });
    expect(sink(graph)).toBe(graph);
  });

  it("stops where a tensor is also read whole, gathering it there", () => {
    // y feeds the selected gelu and a graph output: gelu moves, y is gathered
    const graph = selectionGraph((b, x) => {
      const y = linearOf(b, x);
      b.output("side", y);
      return b.add1("gelu", [y], {}, { name: "act" });
    });
    const result = sink(graph);
    const ops = result.nodes.slice(-2).map((n) => `${n.op} ${n.name}`);
    expect(ops).toEqual(["gather proj.kept", "gelu act"]);
  });

  it("declines through ops without a per-token fact (reshape, attention)", () => {
    const reshaped = selectionGraph((b, x) =>
      b.add1("reshape", [linearOf(b, x)], { shape: [1, 5, 8] }, { name: "r" }),
    );
    expect(sink(reshaped)).toBe(reshaped);
    const attended = selectionGraph((b, x) => {
      const [context] = b.add(
        "attention",
        [x, x, x],
        { heads: 2, numCls: 1, probs: "cls", mask: false, relPosBias: null },
        { name: "attn" },
      );
      return context!;
    });
    expect(sink(attended)).toBe(attended);
  });

  it("declines along the last axis of an op that mixes it (linear), not of an elementwise op", () => {
    const b = new GraphBuilder("last");
    const x = b.input("x", { dtype: "f32", shape: [1, 3, 5] });
    const probs = b.input("probs", { dtype: "f32", shape: [1, 2, 1, 5] });
    const keep = b.add1("topK", [b.add1("tokenScores", [probs], { row: 0, skip: 1 })], { k: 2 });
    const y = b.add1("linear", [x, b.weight("w", [5, 5])], {});
    b.output("g", b.add1("gather", [y, keep], { axis: 2, keepPrefix: 1 }));
    const z = b.add1("gelu", [x], {});
    b.output("h", b.add1("gather", [z, keep], { axis: 2, keepPrefix: 1 }));
    const result = sink(b.build());
    // the linear's gather stays; the gelu's moves to x
    const kinds = result.nodes.filter((n) => n.op === "gather").map((n) => n.inputs[0]!.node);
    expect(kinds.map((id) => result.nodes[id]!.op)).toEqual(["linear", "input"]);
  });

  it("declines when a carrier of the axis has another rank", () => {
    const graph = selectionGraph((b, x) => {
      const rows = b.input("rows", { dtype: "f32", shape: [5, 8] });
      return b.add1("add", [x, rows], {}, { name: "a" });
    });
    expect(sink(graph)).toBe(graph);
  });

  it("declines when the indices depend on the selected tensor", () => {
    const b = new GraphBuilder("self");
    const probs = b.input("probs", { dtype: "f32", shape: [1, 2, 1, 5] });
    const p = b.add1("gelu", [probs], {});
    const keep = b.add1("topK", [b.add1("tokenScores", [p], { row: 0, skip: 1 })], { k: 2 });
    b.output("g", b.add1("gather", [p, keep], { axis: 3, keepPrefix: 1 }));
    const graph = b.build();
    expect(sink(graph)).toBe(graph);
  });

  it("is the identity on a graph without gathers", () => {
    const graph = encoder();
    expect(sink(graph)).toBe(graph);
  });
});
