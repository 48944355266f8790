/**
 * Small hand-built graphs and graph surgery for the IR, pass and property tests.
 * Nothing here calls the code under test to compute an expected value.
 */
import { GraphBuilder } from "../../src/ir/builder.js";
import type { AnyNode, Graph, GraphOutput } from "../../src/ir/graph.js";
import type { AttentionPattern, BlockLayout } from "../../src/ir/pattern.js";
import { formatType } from "../../src/ir/tensor.js";

/**
 * x f32[1,4,8] -> linear "proj" (W [16,8], b [16]) -> layerNorm "ln" -> output "y".
 * Node ids: %0 x, %1 proj.weight, %2 proj.bias, %3 linear, %4 ln.weight, %5 ln.bias, %6 layerNorm.
 */
export function tinyGraph(name = "tiny"): Graph {
  const b = new GraphBuilder(name);
  const x = b.input("x", { dtype: "f32", shape: [1, 4, 8] });
  const proj = b.withScope("proj", () =>
    b.add1("linear", [x, b.weight("weight", [16, 8]), b.weight("bias", [16])], {}),
  );
  const ln = b.withScope("ln", () =>
    b.add1("layerNorm", [proj, b.weight("weight", [16]), b.weight("bias", [16])], { eps: 1e-5 }),
  );
  b.output("y", ln);
  return b.build();
}

/** A layout from explicit rows [M][W], shared by all heads (built by hand, not via src/patterns). */
export function sharedLayout(rows: readonly (readonly number[])[]): BlockLayout {
  const m = rows.length;
  const w = rows[0]!.length;
  return { heads: 1, queryBlocks: m, blocksPerRow: w, blocks: Int32Array.from(rows.flat()) };
}

export function customPattern(
  blockSize: number,
  layout: BlockLayout,
  globalTokens = 1,
  label = "test",
): AttentionPattern {
  return { globalTokens, blockSize, layout, origin: { kind: "custom", label } };
}

/**
 * q, k, v inputs f32[1, 1 + 32, 16] -> blockSparseAttention (4 heads, block 8, 4 blocks x 2:
 * row m reads blocks m and (m + 1) mod 4) -> outputs "context" and "probs". Node %3 is the attention.
 */
export function blockSparseGraph(): Graph {
  const b = new GraphBuilder("bsa");
  const type = { dtype: "f32", shape: [1, 33, 16] } as const;
  const q = b.input("q", type);
  const k = b.input("k", type);
  const v = b.input("v", type);
  const layout = sharedLayout([
    [0, 1],
    [1, 2],
    [2, 3],
    [3, 0],
  ]);
  const [context, probs] = b.add(
    "blockSparseAttention",
    [q, k, v],
    { heads: 4, pattern: customPattern(8, layout), padding: "masked", relPosBias: null },
    { name: "attn", layer: 0 },
  );
  b.output("context", context!);
  b.output("probs", probs!);
  return b.build();
}

/** A new Graph whose node `id` is replaced by a copy with `patch` applied (the original stays frozen). */
export function withNode(
  graph: Graph,
  id: number,
  patch: Partial<Record<keyof AnyNode, unknown>>,
): Graph {
  const nodes = graph.nodes.map((n) => (n.id === id ? ({ ...n, ...patch } as AnyNode) : n));
  return { name: graph.name, nodes, outputs: graph.outputs };
}

export function withNodes(graph: Graph, nodes: readonly AnyNode[]): Graph {
  return { name: graph.name, nodes, outputs: graph.outputs };
}

export function withOutputs(graph: Graph, outputs: readonly GraphOutput[]): Graph {
  return { name: graph.name, nodes: graph.nodes, outputs };
}

/** One "op types" line per node, e.g. "linear f32[1,4,16]": a structural fingerprint. */
export function signature(graph: Graph): string[] {
  return graph.nodes.map((n) => `${n.op} ${n.outputs.map(formatType).join(", ")}`);
}

/** Node of `graph` with the given name and op; fails loudly when absent or ambiguous. */
export function nodeNamed(graph: Graph, name: string, op?: string): AnyNode {
  const found = graph.nodes.filter((n) => n.name === name && (op === undefined || n.op === op));
  if (found.length !== 1) {
    throw new Error(
      `expected one node named "${name}"${op ? ` (${op})` : ""}, found ${found.length}`,
    );
  }
  return found[0]!;
}
