import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { ShapeError } from "../../src/ir/errors.js";
import { i32Tensor } from "../../src/ir/tensor.js";
import { customPattern, sharedLayout, tinyGraph } from "./support.js";

function f32(shape: number[]) {
  return { dtype: "f32" as const, shape };
}

/** The ShapeError message of `body`, failing the test if it does not throw one. */
function shapeErrorOf(body: () => unknown): string {
  try {
    body();
  } catch (error) {
    expect(error).toBeInstanceOf(ShapeError);
    return (error as Error).message;
  }
  throw new Error("expected a ShapeError");
}

describe("GraphBuilder shape inference", () => {
  it("infers linear, add (broadcast), gelu, reshape and layerNorm outputs", () => {
    const b = new GraphBuilder("g");
    const x = b.input("x", f32([2, 5, 8]));
    const y = b.add1("linear", [x, b.weight("w", [3, 8]), b.weight("b", [3])], {});
    expect(b.typeOf(y)).toEqual(f32([2, 5, 3]));
    const noBias = b.add1("linear", [x, b.weight("w2", [6, 8])], {});
    expect(b.shapeOf(noBias)).toEqual([2, 5, 6]);
    const sum = b.add1("add", [y, b.weight("row", [3])], {});
    expect(b.shapeOf(sum)).toEqual([2, 5, 3]);
    const outer = b.add1("mul", [b.weight("col", [2, 5, 1]), b.weight("r2", [1, 1, 4])], {});
    expect(b.shapeOf(outer)).toEqual([2, 5, 4]);
    expect(b.shapeOf(b.add1("gelu", [y], {}))).toEqual([2, 5, 3]);
    expect(b.shapeOf(b.add1("reshape", [y], { shape: [10, 3] }))).toEqual([10, 3]);
    const ln = b.add1("layerNorm", [y, b.weight("g", [3]), b.weight("be", [3])], { eps: 1e-6 });
    expect(b.shapeOf(ln)).toEqual([2, 5, 3]);
  });

  it("infers embedding and pooling shapes: [B,T,C,H,W] -> [B, T*(H/p)*(W/p), C]", () => {
    const b = new GraphBuilder("g");
    const pixels = b.input("pixels", f32([2, 3, 3, 16, 24]));
    const patches = b.add1(
      "patchEmbed",
      [pixels, b.weight("w", [10, 3, 8, 8]), b.weight("b", [10])],
      { patchSize: 8 },
    );
    // 3 frames x (16/8) x (24/8) = 18 patches
    expect(b.shapeOf(patches)).toEqual([2, 18, 10]);
    const seq = b.add1("prependTokens", [b.weight("cls", [1, 1, 10]), patches], {});
    expect(b.shapeOf(seq)).toEqual([2, 19, 10]);
    expect(b.shapeOf(b.add1("meanTokens", [seq], { skip: 1 }))).toEqual([2, 10]);
  });

  it("infers attention outputs: context [B,Nq,C] and probabilities [B,H,R,Nk]", () => {
    const b = new GraphBuilder("g");
    const q = b.input("q", f32([2, 7, 12]));
    const kv = b.input("kv", f32([2, 9, 12]));
    const mask = b.input("mask", f32([2, 9]));
    const [ctx, probs] = b.add("attention", [q, kv, kv, mask], {
      heads: 3,
      numCls: 0,
      probs: "all",
      mask: true,
      relPosBias: null,
    });
    expect(b.typeOf(ctx!)).toEqual(f32([2, 7, 12]));
    expect(b.typeOf(probs!)).toEqual(f32([2, 3, 7, 9]));
    const [, clsProbs] = b.add("attention", [q, q, q], {
      heads: 4,
      numCls: 2,
      probs: "cls",
      mask: false,
      relPosBias: null,
    });
    expect(b.shapeOf(clsProbs!)).toEqual([2, 4, 2, 7]);
  });

  it("infers relative-position attention, block-sparse attention and token selection", () => {
    const b = new GraphBuilder("g");
    // window 1x2x3: 6 local tokens, table rows (1)(3)(5) + 3 = 18
    const x = b.input("x", f32([1, 7, 8]));
    const table = b.weight("table", [18, 2]);
    const idx = b.constant("idx", i32Tensor([1, 6], Int32Array.from([0, 1, 2, 3, 4, 5])));
    const [ctx, probs] = b.add("attention", [x, x, x, table, idx], {
      heads: 2,
      numCls: 1,
      probs: "cls",
      mask: false,
      relPosBias: { window: [1, 2, 3] },
    });
    expect(b.shapeOf(ctx!)).toEqual([1, 7, 8]);
    expect(b.shapeOf(probs!)).toEqual([1, 2, 1, 7]);
    const layout = sharedLayout([[0], [1], [2]]);
    const [bctx, bprobs] = b.add("blockSparseAttention", [x, x, x], {
      heads: 2,
      pattern: customPattern(2, layout),
      padding: "reference",
      relPosBias: null,
    });
    expect(b.shapeOf(bctx!)).toEqual([1, 7, 8]);
    expect(b.shapeOf(bprobs!)).toEqual([1, 2, 1, 7]);
    const scores = b.add1("tokenScores", [probs!], { row: 0, skip: 1 });
    expect(b.typeOf(scores)).toEqual(f32([1, 6]));
    const keep = b.add1("topK", [scores], { k: 4 });
    expect(b.typeOf(keep)).toEqual({ dtype: "i32", shape: [1, 4] });
    expect(b.typeOf(b.add1("gather", [x, keep], { axis: 1, keepPrefix: 1 }))).toEqual(
      f32([1, 5, 8]),
    );
    expect(b.typeOf(b.add1("gather", [idx, keep], { axis: 1, keepPrefix: 0 }))).toEqual({
      dtype: "i32",
      shape: [1, 4],
    });
  });
});

describe("GraphBuilder errors", () => {
  it("names the op and the node in shape errors", () => {
    const b = new GraphBuilder("g");
    const x = b.input("x", f32([1, 4, 8]));
    const message = shapeErrorOf(() =>
      b.withScope("enc", () =>
        b.withScope("proj", () => b.add1("linear", [x, b.weight("weight", [16, 7])], {})),
      ),
    );
    expect(message).toContain('linear "enc.proj"');
    expect(message).toContain("in-features");
    expect(message).toContain("f32[1,4,8]");
  });

  it("names the op and node on arity errors and on attribute errors", () => {
    const b = new GraphBuilder("g");
    const x = b.input("x", f32([1, 4]));
    expect(shapeErrorOf(() => b.add1("gelu", [x, x], {}, { name: "act" }))).toMatch(
      /^gelu "act": takes 1\.\.1 inputs, got 2/,
    );
    expect(shapeErrorOf(() => b.add1("topK", [x], { k: 5 }, { name: "pick" }))).toMatch(
      /topK "pick".*k = 5 outside \[1, 4\]/,
    );
    expect(shapeErrorOf(() => b.add1("reshape", [x], { shape: [3] }, { name: "r" }))).toContain(
      'reshape "r"',
    );
  });

  it("rejects shapes that do not broadcast", () => {
    const b = new GraphBuilder("g");
    const a = b.input("a", f32([2, 3]));
    const c = b.input("c", f32([4, 3]));
    expect(shapeErrorOf(() => b.add1("add", [a, c], {}, { name: "sum" }))).toMatch(
      /add "sum".*do not broadcast/,
    );
  });

  it("rejects duplicate input names and duplicate output names", () => {
    const b = new GraphBuilder("g");
    const x = b.input("x", f32([1]));
    expect(shapeErrorOf(() => b.input("x", f32([2])))).toContain('duplicate input "x"');
    b.output("y", x);
    expect(shapeErrorOf(() => b.output("y", x))).toContain('duplicate output "y"');
  });

  it("rejects outputs and reads of tensors that do not exist", () => {
    const b = new GraphBuilder("g");
    b.input("x", f32([1]));
    expect(() => b.output("y", { node: 5, output: 0 })).toThrow(RangeError);
    expect(() => b.typeOf({ node: 0, output: 1 })).toThrow(/no tensor %0:1/);
  });
});

describe("GraphBuilder weights, scopes and layers", () => {
  it("deduplicates weights by scoped key and rejects one key with two shapes", () => {
    const b = new GraphBuilder("g");
    const first = b.withScope("a", () => b.weight("w", [2, 3]));
    const again = b.withScope("a", () => b.weight("w", [2, 3]));
    const other = b.withScope("b", () => b.weight("w", [2, 3]));
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
    const graph = b.build();
    const names = graph.nodes.filter((n) => n.op === "weight").map((n) => n.attrs.name);
    expect(names).toEqual(["a.w", "b.w"]);
    expect(shapeErrorOf(() => b.withScope("a", () => b.weight("w", [3, 2])))).toContain(
      'weight "a.w"',
    );
  });

  it("rejects a second raw weight node with an existing key", () => {
    const b = new GraphBuilder("g");
    b.weight("w", [1]);
    expect(
      shapeErrorOf(() =>
        b.add("weight", [], { name: "w", type: f32([1]) }, { name: "w", layer: null }),
      ),
    ).toContain('duplicate weight node "w"');
  });

  it("names nodes by scope, tags layers and roles, and freezes the built graph", () => {
    const b = new GraphBuilder("g");
    const x = b.input("x", f32([1, 2]), "encoderInput");
    const y = b.inLayer(3, () =>
      b.withScope("layer.3", () =>
        b.withScope("act", () => b.add1("gelu", [x], {}, { role: "layerOutput" })),
      ),
    );
    b.output("y", y);
    const graph = b.build();
    expect(graph.nodes[0]).toMatchObject({
      op: "input",
      name: "x",
      layer: null,
      role: "encoderInput",
    });
    expect(graph.nodes[1]).toMatchObject({
      id: 1,
      op: "gelu",
      name: "layer.3.act",
      layer: 3,
      role: "layerOutput",
      inputs: [{ node: 0, output: 0 }],
    });
    expect(Object.isFrozen(graph)).toBe(true);
    expect(Object.isFrozen(graph.nodes)).toBe(true);
    expect(Object.isFrozen(graph.nodes[1])).toBe(true);
    expect(graph.outputs).toEqual([{ name: "y", ref: { node: 1, output: 0 } }]);
  });

  it("gives node ids equal to positions", () => {
    const graph = tinyGraph();
    expect(graph.nodes.map((n) => n.id)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(graph.nodes.map((n) => n.op)).toEqual([
      "input",
      "weight",
      "weight",
      "linear",
      "weight",
      "weight",
      "layerNorm",
    ]);
  });
});
