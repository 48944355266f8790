import { GraphInvariantError, ShapeError } from "./errors.js";
import { type AnyNode, type Graph, nodeLabel } from "./graph.js";
import { OPS } from "./ops/index.js";
import { layoutProblems, tokenProblems } from "./pattern.js";
import { formatType, sameShape, type TensorType } from "./tensor.js";

/**
 * The invariants of a valid graph, checked after every pass. Each has a number that
 * appears in its error message, so "rule 5 at %37" points straight here.
 *
 *  1. Node ids equal their positions and every input names an output of an earlier node
 *     (the node list is a topological order; there are no cycles or dangling edges).
 *  2. Every node's input count is within its op's arity.
 *  3. Sources are unique: no two inputs share a name, no two weights share a key.
 *  4. Block layouts are well formed: indices inside [0, M), one shared layout or one per
 *     head, and no block twice in a row unless the node's padding is "reference" (where a
 *     repeated block reproduces the reference's duplicated-block softmax: its keys and
 *     values count twice; see repeatsAllowed in pattern.ts). A ragged layout's rowStart
 *     holds heads·M + 1 non-decreasing offsets from 0 to its entries, its widest row is
 *     blocksPerRow, and its partial blocks name token masks that exist (entryMask and masks
 *     together, masks a whole number of bs x bs bitsets).
 *  5. A block-sparse pattern matches its tokens: block size >= 1,
 *     M = ceil((N - globalTokens) / blockSize), and every partial block's token mask sets
 *     at least one pair and none at a padded position (past the N - globalTokens local
 *     tokens).
 *  6. Every node's output types are exactly what its op's shape rule infers from its
 *     input types and attributes.
 *  7. Graph outputs have unique names and name existing tensors.
 *  8. Role-tagged nodes have the types their role implies: tokenIndex is i32 [1|B, L],
 *     layerOutput and visualTokens are f32 [B, N, C].
 */
export const RULES: Readonly<Record<number, string>> = {
  1: "node ids are positions and inputs name earlier nodes' outputs",
  2: "input count within the op's arity",
  3: "input names and weight keys are unique",
  4: 'block layouts are well formed: rows, entries and token masks (a block repeats in a row only under padding "reference")',
  5: "block-sparse patterns match the token count, and token masks set only real token pairs",
  6: "output types follow the op's shape rule",
  7: "graph outputs are unique and exist",
  8: "role-tagged nodes have their role's type",
};

function fail(rule: number, node: AnyNode | null, detail: string, graph: Graph): never {
  throw new GraphInvariantError(
    rule,
    node === null ? `graph ${graph.name}` : nodeLabel(node),
    detail,
  );
}

function sameTypes(a: readonly TensorType[], b: readonly TensorType[]): boolean {
  return (
    a.length === b.length &&
    a.every((t, i) => t.dtype === b[i]!.dtype && sameShape(t.shape, b[i]!.shape))
  );
}

/** Throws GraphInvariantError on the first violated rule; returns the graph otherwise. */
export function verifyGraph(graph: Graph): Graph {
  const inputNames = new Set<string>();
  const weightKeys = new Set<string>();
  graph.nodes.forEach((node, position) => {
    // Rule 1
    if (node.id !== position) fail(1, node, `id ${node.id} at position ${position}`, graph);
    for (const ref of node.inputs) {
      const source = ref.node < node.id ? graph.nodes[ref.node] : undefined;
      if (source === undefined || source.outputs[ref.output] === undefined) {
        fail(
          1,
          node,
          `input %${ref.node}:${ref.output} is not an output of an earlier node`,
          graph,
        );
      }
    }
    // Rule 2
    const [min, max] = OPS[node.op].arity;
    if (node.inputs.length < min || node.inputs.length > max) {
      fail(2, node, `${node.op} takes ${min}..${max} inputs, has ${node.inputs.length}`, graph);
    }
    // Rule 3
    if (node.op === "input") {
      if (inputNames.has(node.attrs.name))
        fail(3, node, `duplicate input name "${node.attrs.name}"`, graph);
      inputNames.add(node.attrs.name);
    } else if (node.op === "weight") {
      if (weightKeys.has(node.attrs.name))
        fail(3, node, `duplicate weight key "${node.attrs.name}"`, graph);
      weightKeys.add(node.attrs.name);
    }
    const inputTypes = node.inputs.map((ref) => graph.nodes[ref.node]!.outputs[ref.output]!);
    // Rules 4 and 5
    if (node.op === "blockSparseAttention") {
      const { pattern, heads, padding } = node.attrs;
      const problems = layoutProblems(pattern.layout, heads, padding, pattern.blockSize);
      if (problems.length > 0) fail(4, node, problems.join("; "), graph);
      const tokens = inputTypes[0]?.shape[1] ?? 0;
      const mismatch = tokenProblems(pattern, tokens - pattern.globalTokens);
      if (mismatch.length > 0) fail(5, node, mismatch.join("; "), graph);
    }
    // Rule 6
    let inferred: TensorType[];
    try {
      inferred = OPS[node.op].infer(inputTypes, node.attrs as never);
    } catch (error) {
      if (error instanceof ShapeError) fail(6, node, error.message, graph);
      throw error;
    }
    if (!sameTypes(inferred, node.outputs)) {
      fail(
        6,
        node,
        `outputs are ${node.outputs.map(formatType).join(", ")} but the shape rule gives ${inferred.map(formatType).join(", ")}`,
        graph,
      );
    }
    // Rule 8
    const out = node.outputs[0];
    if (node.role === "tokenIndex" && !(out?.dtype === "i32" && out.shape.length === 2)) {
      fail(
        8,
        node,
        `tokenIndex must be i32 [1|B, L], is ${out ? formatType(out) : "missing"}`,
        graph,
      );
    }
    if (
      (node.role === "layerOutput" || node.role === "visualTokens") &&
      !(out?.dtype === "f32" && out.shape.length === 3)
    ) {
      fail(
        8,
        node,
        `${node.role} must be f32 [B, N, C], is ${out ? formatType(out) : "missing"}`,
        graph,
      );
    }
  });
  // Rule 7
  const outputNames = new Set<string>();
  for (const output of graph.outputs) {
    if (outputNames.has(output.name)) fail(7, null, `duplicate output "${output.name}"`, graph);
    outputNames.add(output.name);
    if (graph.nodes[output.ref.node]?.outputs[output.ref.output] === undefined) {
      fail(
        7,
        null,
        `output "${output.name}" names missing tensor %${output.ref.node}:${output.ref.output}`,
        graph,
      );
    }
  }
  return graph;
}
