import { describe, expect, it } from "vitest";
import { GraphBuilder } from "../../src/ir/builder.js";
import { GraphInvariantError } from "../../src/ir/errors.js";
import { type AnyNode, type Graph, nodeLabel } from "../../src/ir/graph.js";
import type { BlockLayout, PaddingMode } from "../../src/ir/pattern.js";
import { RULES, verifyGraph } from "../../src/ir/verify.js";
import {
  blockSparseGraph,
  customPattern,
  tinyGraph,
  withNode,
  withNodes,
  withOutputs,
} from "./support.js";

/** The GraphInvariantError verifyGraph throws for `graph`; fails the test if none. */
function violation(graph: Graph): GraphInvariantError {
  try {
    verifyGraph(graph);
  } catch (error) {
    expect(error).toBeInstanceOf(GraphInvariantError);
    return error as GraphInvariantError;
  }
  throw new Error("verifyGraph accepted an invalid graph");
}

function expectRule(graph: Graph, rule: number, label: string, detail?: RegExp): void {
  const error = violation(graph);
  expect(error.message).toContain(`rule ${rule}`);
  expect(error.message).toContain(label);
  expect(error.rule).toBe(rule);
  expect(error.nodeLabel).toBe(label);
  if (detail) expect(error.message).toMatch(detail);
}

function attentionNode(graph: Graph): AnyNode & { op: "blockSparseAttention" } {
  return graph.nodes[3] as AnyNode & { op: "blockSparseAttention" };
}

function withLayout(graph: Graph, layout: BlockLayout, blockSize = 8): Graph {
  const node = attentionNode(graph);
  return withNode(graph, node.id, {
    attrs: { ...node.attrs, pattern: customPattern(blockSize, layout) },
  });
}

function withPadding(graph: Graph, padding: PaddingMode): Graph {
  const node = attentionNode(graph);
  return withNode(graph, node.id, { attrs: { ...node.attrs, padding } });
}

describe("verifyGraph", () => {
  it("accepts valid graphs and returns them", () => {
    const tiny = tinyGraph();
    expect(verifyGraph(tiny)).toBe(tiny);
    const bsa = blockSparseGraph();
    expect(verifyGraph(bsa)).toBe(bsa);
  });

  it("numbers eight rules", () => {
    expect(Object.keys(RULES).map(Number)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('labels nodes as %id op "name"', () => {
    expect(nodeLabel(tinyGraph().nodes[3]!)).toBe('%3 linear "proj"');
  });
});

describe("rule 1: ids are positions, inputs name earlier outputs", () => {
  it("rejects an id that differs from the position", () => {
    const graph = withNode(tinyGraph(), 3, { id: 4 });
    expectRule(graph, 1, '%4 linear "proj"', /id 4 at position 3/);
  });

  it("rejects an input read from a later node (a cycle or bad order)", () => {
    const graph = tinyGraph();
    const node = graph.nodes[3]!;
    const bad = withNode(graph, 3, { inputs: [{ node: 6, output: 0 }, ...node.inputs.slice(1)] });
    expectRule(bad, 1, '%3 linear "proj"', /%6:0 is not an output of an earlier node/);
  });

  it("rejects an input naming an output the source does not have", () => {
    const graph = tinyGraph();
    const node = graph.nodes[3]!;
    const bad = withNode(graph, 3, { inputs: [{ node: 0, output: 1 }, ...node.inputs.slice(1)] });
    expectRule(bad, 1, '%3 linear "proj"', /%0:1/);
  });
});

describe("rule 2: input count within arity", () => {
  it("rejects a linear node with one input", () => {
    const graph = tinyGraph();
    const bad = withNode(graph, 3, { inputs: [graph.nodes[3]!.inputs[0]!] });
    expectRule(bad, 2, '%3 linear "proj"', /linear takes 2\.\.3 inputs, has 1/);
  });
});

describe("rule 3: unique input names and weight keys", () => {
  it("rejects two inputs with one name", () => {
    const b = new GraphBuilder("two");
    const x = b.input("x", { dtype: "f32", shape: [2] });
    const z = b.input("z", { dtype: "f32", shape: [2] });
    b.output("s", b.add1("add", [x, z], {}, { name: "sum" }));
    const graph = b.build();
    const node = graph.nodes[1] as AnyNode & { op: "input" };
    const bad = withNode(graph, 1, { attrs: { ...node.attrs, name: "x" } });
    expectRule(bad, 3, '%1 input "z"', /duplicate input name "x"/);
  });

  it("rejects two weights with one key", () => {
    const graph = tinyGraph();
    const node = graph.nodes[5] as AnyNode & { op: "weight" };
    const bad = withNode(graph, 5, { attrs: { ...node.attrs, name: "ln.weight" } });
    expectRule(bad, 3, '%5 weight "ln.bias"', /duplicate weight key "ln.weight"/);
  });
});

describe("rule 4: block layouts are well formed", () => {
  it("rejects a key block outside [0, M)", () => {
    const layout: BlockLayout = {
      heads: 1,
      queryBlocks: 4,
      blocksPerRow: 2,
      blocks: Int32Array.from([0, 1, 1, 2, 2, 3, 3, 4]),
    };
    expectRule(
      withLayout(blockSparseGraph(), layout),
      4,
      '%3 blockSparseAttention "attn"',
      /key block 4, outside \[0, 4\)/,
    );
  });

  const repeated: BlockLayout = {
    heads: 1,
    queryBlocks: 4,
    blocksPerRow: 2,
    blocks: Int32Array.from([0, 1, 2, 2, 2, 3, 3, 0]),
  };

  it('rejects a key block read twice in one row under padding "masked"', () => {
    // blockSparseGraph's node has padding "masked"
    expectRule(
      withLayout(blockSparseGraph(), repeated),
      4,
      '%3 blockSparseAttention "attn"',
      /query block 1 reads key block 2 more than once \(a block may repeat in a row only under padding "reference", not "masked"\)/,
    );
  });

  it('accepts a key block read twice under padding "reference" (the duplicated-block softmax)', () => {
    const graph = withPadding(withLayout(blockSparseGraph(), repeated), "reference");
    expect(verifyGraph(graph)).toBe(graph);
    // saturated SViTT rows, wider than M: [m, 0, 1, 2, 3] for M = 4
    const saturated: BlockLayout = {
      heads: 1,
      queryBlocks: 4,
      blocksPerRow: 5,
      blocks: Int32Array.from([0, 0, 1, 2, 3, 1, 0, 1, 2, 3, 2, 0, 1, 2, 3, 3, 0, 1, 2, 3]),
    };
    const wide = withPadding(withLayout(blockSparseGraph(), saturated), "reference");
    expect(verifyGraph(wide)).toBe(wide);
    expectRule(
      withPadding(wide, "masked"),
      4,
      '%3 blockSparseAttention "attn"',
      /blocksPerRow 5 exceeds the 4 key blocks available/,
    );
  });

  it('still rejects a block outside [0, M) under padding "reference"', () => {
    const layout: BlockLayout = { ...repeated, blocks: Int32Array.from([0, 0, 2, 2, 2, 3, 3, 4]) };
    expectRule(
      withPadding(withLayout(blockSparseGraph(), layout), "reference"),
      4,
      '%3 blockSparseAttention "attn"',
      /key block 4, outside \[0, 4\)/,
    );
  });

  it("rejects a layout with neither 1 nor one row set per head", () => {
    const layout: BlockLayout = {
      heads: 3,
      queryBlocks: 4,
      blocksPerRow: 1,
      blocks: Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]),
    };
    expectRule(
      withLayout(blockSparseGraph(), layout),
      4,
      '%3 blockSparseAttention "attn"',
      /3 head rows/,
    );
  });
});

describe("rule 4: ragged layouts and partial blocks are well formed", () => {
  const label = '%3 blockSparseAttention "attn"';
  /** One 8x8 token mask (one word per row): query row r reads key r. */
  const diagonal = Uint32Array.from({ length: 8 }, (_, r) => 1 << r);
  // Rows [0, 1 (partial)], [2], [], [3, 0, 1]: 6 entries, the widest row 3.
  const ragged: BlockLayout = {
    heads: 1,
    queryBlocks: 4,
    blocksPerRow: 3,
    blocks: Int32Array.from([0, 1, 2, 3, 0, 1]),
    rowStart: Int32Array.from([0, 2, 3, 3, 6]),
    entryMask: Int32Array.from([-1, 0, -1, -1, -1, -1]),
    masks: diagonal,
  };

  it("accepts rows of different lengths, an empty row and a partial block", () => {
    const graph = withLayout(blockSparseGraph(), ragged);
    expect(verifyGraph(graph)).toBe(graph);
  });

  it("rejects row offsets of the wrong count, decreasing or not spanning the entries", () => {
    const cases: [Partial<BlockLayout>, RegExp][] = [
      [
        { rowStart: Int32Array.from([0, 2, 3, 6]) },
        /rowStart has 4 offsets; expected heads\*M \+ 1 = 5/,
      ],
      [{ rowStart: Int32Array.from([0, 3, 2, 3, 6]) }, /rowStart decreases at row 1 \(3 to 2\)/],
      [
        { rowStart: Int32Array.from([0, 2, 3, 3, 5]) },
        /rowStart must run from 0 to the 6 entries of blocks, runs from 0 to 5/,
      ],
      [
        { blocksPerRow: 2 },
        /blocksPerRow is 2 but the widest row of the ragged layout has 3 blocks/,
      ],
    ];
    for (const [patch, detail] of cases) {
      expectRule(withLayout(blockSparseGraph(), { ...ragged, ...patch }), 4, label, detail);
    }
  });

  it("rejects partial blocks without masks, or naming a mask that does not exist", () => {
    const { masks: _, ...noMasks } = ragged;
    expectRule(
      withLayout(blockSparseGraph(), noMasks),
      4,
      label,
      /entryMask and masks must be given together/,
    );
    expectRule(
      withLayout(blockSparseGraph(), {
        ...ragged,
        entryMask: Int32Array.from([-1, 1, -1, -1, -1, -1]),
      }),
      4,
      label,
      /entry 1 names token mask 1, outside \[-1, 1\) \(-1: a full block\)/,
    );
    expectRule(
      withLayout(blockSparseGraph(), { ...ragged, masks: diagonal.subarray(0, 7) }),
      4,
      label,
      /masks has 7 words, not a whole number of 8x8 token masks \(8 words each\)/,
    );
  });

  it('rejects a repeated block in a ragged row under padding "masked"', () => {
    const repeated = { ...ragged, blocks: Int32Array.from([0, 1, 2, 3, 0, 3]) };
    expectRule(
      withLayout(blockSparseGraph(), repeated),
      4,
      label,
      /query block 3 reads key block 3 more than once/,
    );
    const graph = withPadding(withLayout(blockSparseGraph(), repeated), "reference");
    expect(verifyGraph(graph)).toBe(graph);
  });
});

describe("rule 5: block-sparse patterns match the token count", () => {
  it("rejects a layout whose block count does not fit the tokens", () => {
    // 32 local tokens in blocks of 16 need 2 query blocks; the layout has 4.
    const layout = attentionNode(blockSparseGraph()).attrs.pattern.layout;
    expectRule(
      withLayout(blockSparseGraph(), layout, 16),
      5,
      '%3 blockSparseAttention "attn"',
      /4 query blocks; 32 local tokens in blocks of 16 need 2/,
    );
  });

  it("rejects a token mask with a bit at a padded position, or none at all", () => {
    // 32 local tokens in blocks of 12: block 2 holds local tokens 24..31, 8 of its 12 slots.
    const words = (rows: number[]) => Uint32Array.from(rows);
    const layout = (mask: Uint32Array): BlockLayout => ({
      heads: 1,
      queryBlocks: 3,
      blocksPerRow: 1,
      blocks: Int32Array.from([0, 1, 2]),
      rowStart: Int32Array.from([0, 1, 2, 3]),
      entryMask: Int32Array.from([-1, -1, 0]),
      masks: mask,
    });
    const real = words([0xff, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const good = withLayout(blockSparseGraph(), layout(real), 12);
    expect(verifyGraph(good)).toBe(good);
    expectRule(
      withLayout(blockSparseGraph(), layout(words([0x200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), 12),
      5,
      '%3 blockSparseAttention "attn"',
      /query block 2 key block 2: token mask 0 sets a bit at a padded position \(query row 0, 32 local tokens\)/,
    );
    expectRule(
      withLayout(blockSparseGraph(), layout(words([1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0])), 12),
      5,
      '%3 blockSparseAttention "attn"',
      /padded position \(query row 9/,
    );
    expectRule(
      withLayout(blockSparseGraph(), layout(new Uint32Array(12)), 12),
      5,
      '%3 blockSparseAttention "attn"',
      /token mask 0 is empty/,
    );
  });

  it("rejects block size 0", () => {
    const layout = attentionNode(blockSparseGraph()).attrs.pattern.layout;
    expectRule(
      withLayout(blockSparseGraph(), layout, 0),
      5,
      '%3 blockSparseAttention "attn"',
      /block size 0/,
    );
  });
});

describe("rule 6: output types follow the shape rule", () => {
  it("rejects a node whose recorded output shape is wrong", () => {
    const bad = withNode(tinyGraph(), 3, { outputs: [{ dtype: "f32", shape: [1, 4, 15] }] });
    expectRule(
      bad,
      6,
      '%3 linear "proj"',
      /outputs are f32\[1,4,15\] but the shape rule gives f32\[1,4,16\]/,
    );
  });

  it("rejects a node whose recorded dtype is wrong", () => {
    const bad = withNode(tinyGraph(), 6, { outputs: [{ dtype: "i32", shape: [1, 4, 16] }] });
    expectRule(bad, 6, '%6 layerNorm "ln"');
  });

  it("rejects attributes the shape rule refuses, with the rule's message", () => {
    const graph = tinyGraph();
    const ln = graph.nodes[6] as AnyNode & { op: "layerNorm" };
    const bad = withNode(graph, 6, { attrs: { ...ln.attrs, eps: 0 } });
    expectRule(bad, 6, '%6 layerNorm "ln"', /eps must be > 0/);
  });
});

describe("rule 7: graph outputs are unique and exist", () => {
  it("rejects two outputs with one name", () => {
    const graph = tinyGraph();
    const bad = withOutputs(graph, [...graph.outputs, { name: "y", ref: { node: 3, output: 0 } }]);
    expectRule(bad, 7, "graph tiny", /duplicate output "y"/);
  });

  it("rejects an output naming a missing tensor", () => {
    const graph = tinyGraph();
    const bad = withOutputs(graph, [...graph.outputs, { name: "z", ref: { node: 6, output: 1 } }]);
    expectRule(bad, 7, "graph tiny", /output "z" names missing tensor %6:1/);
  });
});

describe("rule 8: role-tagged nodes have their role's type", () => {
  it("rejects a tokenIndex that is not i32 [1|B, L]", () => {
    const bad = withNode(tinyGraph(), 0, { role: "tokenIndex" });
    expectRule(bad, 8, '%0 input "x"', /tokenIndex must be i32/);
  });

  it("rejects a layerOutput that is not rank 3", () => {
    const b = new GraphBuilder("pool");
    const x = b.input("x", { dtype: "f32", shape: [1, 3, 4] });
    b.output("m", b.add1("meanTokens", [x], { skip: 1 }, { name: "mean" }));
    const bad = withNode(b.build(), 1, { role: "layerOutput" });
    expectRule(
      bad,
      8,
      '%1 meanTokens "mean"',
      /layerOutput must be f32 \[B, N, C\], is f32\[1,4\]/,
    );
  });

  it("rejects visualTokens of the wrong dtype", () => {
    const b = new GraphBuilder("vid");
    const idx = b.input("idx", { dtype: "i32", shape: [1, 3, 4] });
    b.output("i", idx);
    const bad = withNode(b.build(), 0, { role: "visualTokens" });
    expectRule(bad, 8, '%0 input "idx"', /visualTokens must be f32/);
  });
});

describe("rewritten nodes keep the graph valid only when consistent", () => {
  it("accepts a hand-built node list that is a faithful copy", () => {
    const graph = tinyGraph();
    const copy = withNodes(
      graph,
      graph.nodes.map((n) => ({ ...n }) as AnyNode),
    );
    expect(() => verifyGraph(copy)).not.toThrow();
  });
});
