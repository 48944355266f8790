import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { printDot } from "../../src/ir/dot.js";
import { describePattern } from "../../src/ir/pattern.js";
import { printGraph } from "../../src/ir/print.js";
import { i32Tensor } from "../../src/ir/tensor.js";
import { blockSparseGraph, customPattern, sharedLayout, tinyGraph } from "./support.js";

/** A graph with token selection, layers and roles, for the tags and multi-output refs. */
function tokenGraph() {
  const b = new GraphBuilder("tok");
  const x = b.input("x", { dtype: "f32", shape: [1, 5, 4] }, "encoderInput");
  const idx = b.constant(
    "token_index",
    i32Tensor([1, 4], Int32Array.from([0, 1, 2, 3])),
    "tokenIndex",
  );
  const [ctx, probs] = b.inLayer(0, () =>
    b.add(
      "attention",
      [x, x, x],
      { heads: 2, numCls: 1, probs: "cls", mask: false, relPosBias: null },
      { name: "attn" },
    ),
  );
  const out = b.inLayer(0, () =>
    b.add1("add", [ctx!, x], {}, { name: "res", role: "layerOutput" }),
  );
  const scores = b.add1("tokenScores", [probs!], { row: 0, skip: 1 }, { name: "scores" });
  const keep = b.add1("topK", [scores], { k: 2 }, { name: "topk" });
  b.output("kept", b.add1("gather", [out, keep], { axis: 1, keepPrefix: 1 }, { name: "g" }));
  b.output("idx", b.add1("gather", [idx, keep], { axis: 1, keepPrefix: 0 }, { name: "gi" }));
  b.output("probs", probs!);
  return b.build();
}

describe("printGraph", () => {
  it("prints a header, one line per node and the outputs", () => {
    expect(printGraph(tinyGraph()).split("\n")).toEqual([
      "graph tiny (7 nodes)",
      '  %0 = input "x" : f32[1,4,8]',
      '  %1 = weight "proj.weight" : f32[16,8]',
      '  %2 = weight "proj.bias" : f32[16]',
      "  %3 = linear(%0, %1, %2) : f32[1,4,16]  # proj",
      '  %4 = weight "ln.weight" : f32[16]',
      '  %5 = weight "ln.bias" : f32[16]',
      "  %6 = layerNorm(%3, %4, %5) {eps=0.00001} : f32[1,4,16]  # ln",
      '  output "y" = %6',
    ]);
  });

  it("prints attributes, layer and role tags and second outputs as %id:1", () => {
    const lines = printGraph(tokenGraph()).split("\n");
    expect(lines).toContain('  %0 = input "x" : f32[1,5,4] [encoderInput]');
    expect(lines).toContain('  %1 = constant "token_index" : i32[1,4] [tokenIndex]');
    expect(lines).toContain(
      "  %2 = attention(%0, %0, %0) {heads=2, cls=1, probs=cls} : f32[1,5,4], f32[1,2,1,5]  # attn [L0]",
    );
    expect(lines).toContain("  %3 = add(%2, %0) : f32[1,5,4]  # res [L0 layerOutput]");
    expect(lines).toContain("  %4 = tokenScores(%2:1) {row=0, skip=1} : f32[1,4]  # scores");
    expect(lines).toContain("  %5 = topK(%4) {k=2} : i32[1,2]  # topk");
    expect(lines).toContain("  %6 = gather(%3, %5) {axis=1, keep=1} : f32[1,3,4]  # g");
    expect(lines).toContain('  output "probs" = %2:1');
  });

  it("prints block-sparse attention with its pattern and padding", () => {
    const line = printGraph(blockSparseGraph()).split("\n")[4];
    expect(line).toBe(
      "  %3 = blockSparseAttention(%0, %1, %2) {heads=4, cls=1, block 8, layout 4x2 (test), padding=masked} : f32[1,33,16], f32[1,4,1,33]  # attn [L0]",
    );
  });
});

describe("describePattern", () => {
  it("describes SViTT, dense and per-head patterns", () => {
    const layout = sharedLayout([
      [0, 2],
      [1, 0],
      [2, 1],
    ]);
    expect(
      describePattern({
        globalTokens: 1,
        blockSize: 56,
        layout,
        origin: { kind: "svitt", local: 1, random: 1, seed: 7 },
      }),
    ).toBe("block 56, layout 3x2 (local 1 + random 1, seed 7)");
    expect(
      describePattern({
        globalTokens: 1,
        blockSize: 4,
        layout,
        origin: { kind: "svitt", local: 1, random: 1, seed: null },
      }),
    ).toBe("block 4, layout 3x2 (local 1 + random 1, given)");
    expect(describePattern({ ...customPattern(4, layout), origin: { kind: "dense" } })).toBe(
      "block 4, layout 3x2 (all blocks)",
    );
    const perHead = {
      ...layout,
      heads: 2,
      blocks: Int32Array.from([...layout.blocks, ...layout.blocks]),
    };
    expect(describePattern(customPattern(4, perHead, 1, "mine"))).toBe(
      "block 4, layout 3x2 (mine), per-head(2)",
    );
  });

  it("shows a ragged layout's row lengths and partial blocks", () => {
    const ragged = {
      heads: 1,
      queryBlocks: 3,
      blocksPerRow: 2,
      blocks: Int32Array.from([0, 1, 2]),
      rowStart: Int32Array.from([0, 2, 2, 3]),
      entryMask: Int32Array.from([0, -1, 0]),
      masks: Uint32Array.from([1, 2, 4, 8]),
    };
    expect(describePattern(customPattern(4, ragged, 1, "window"))).toBe(
      "block 4, layout 3x(0..2), 2 partial (window)",
    );
    const { entryMask: _, masks: __, ...lengthsOnly } = ragged;
    expect(describePattern(customPattern(4, lengthsOnly, 1, "rows"))).toBe(
      "block 4, layout 3x(0..2) (rows)",
    );
  });
});

describe("printDot", () => {
  it("draws inputs and ops as nodes, typed edges and outputs; hides weights by default", () => {
    const lines = printDot(tinyGraph()).split("\n");
    expect(lines[0]).toBe('digraph "tiny" {');
    expect(lines.at(-1)).toBe("}");
    expect(lines).toContain('  n0 [label="input x", fillcolor="#eeeeee"];');
    expect(lines.some((l) => l.startsWith("  n3 [label="))).toBe(true);
    expect(lines.some((l) => l.startsWith("  n1 "))).toBe(false);
    expect(lines).toContain('  n0 -> n3 [label="f32[1,4,8]"];');
    expect(lines).toContain('  n3 -> n6 [label="f32[1,4,16]"];');
    expect(lines.some((l) => l.startsWith("  n1 -> "))).toBe(false);
    expect(lines).toContain('  out0 [label="y", shape=oval, fillcolor="#d0ebff"];');
    expect(lines).toContain("  n6 -> out0;");
  });

  it("draws weights and their edges with withWeights", () => {
    const lines = printDot(tinyGraph(), { withWeights: true }).split("\n");
    expect(lines).toContain('  n1 [label="weight proj.weight", fillcolor="#eeeeee"];');
    expect(lines).toContain('  n1 -> n3 [label="f32[16,8]"];');
    expect(lines).toContain('  n5 -> n6 [label="f32[16]"];');
  });

  it("colours attention orange and token selection green", () => {
    const lines = printDot(tokenGraph()).split("\n");
    expect(lines.find((l) => l.startsWith("  n2 ["))).toContain('fillcolor="#ffd8a8"');
    expect(lines.find((l) => l.startsWith("  n5 ["))).toContain('fillcolor="#b2f2bb"');
    expect(lines.find((l) => l.startsWith("  n3 ["))).not.toContain("fillcolor");
    // the second output of the attention node is typed on its edge
    expect(lines).toContain('  n2 -> n4 [label="f32[1,2,1,5]"];');
  });

  it("escapes double quotes in names", () => {
    const b = new GraphBuilder('say "hi"');
    b.output("o", b.input('a"b', { dtype: "f32", shape: [1] }));
    const text = printDot(b.build());
    expect(text).toContain('digraph "say \\"hi\\"" {');
    expect(text).toContain('[label="input a\\"b"');
  });

  // Bug: dot.ts joins label parts with the DOT line-break escape "\n" and then passes the
  // label through dotEscape, which doubles the backslash. The file then holds `linear\\nproj`,
  // which Graphviz renders as the literal text "linear\nproj" on one line instead of two lines.
  it("separates label parts with the DOT line break \\n (one backslash)", () => {
    const lines = printDot(tinyGraph()).split("\n");
    expect(lines).toContain('  n3 [label="linear\\nproj"];');
    expect(lines).toContain('  n6 [label="layerNorm\\neps=0.00001\\nln"];');
  });
});
