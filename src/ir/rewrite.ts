import { GraphBuilder, metaOf } from "./builder.js";
import type { AnyNode, Graph, TensorRef } from "./graph.js";

export interface RewriteContext {
  /** The builder of the new graph: emit replacement nodes here. */
  readonly builder: GraphBuilder;
  /** This node's inputs, already mapped into the new graph. */
  readonly inputs: readonly TensorRef[];
  /** Re-emits this node unchanged but for the given inputs (default: the mapped ones). */
  copy(inputs?: readonly TensorRef[]): TensorRef[];
  /** Maps a ref of the old graph (of an earlier node) into the new graph. */
  map(ref: TensorRef): TensorRef;
}

/**
 * A node visitor: return the new graph's refs standing for this node's outputs, undefined
 * to copy the node as it is (with mapped inputs), or null to drop it (any later use of its
 * outputs is then an error).
 */
export type RewriteVisitor = (
  node: AnyNode,
  context: RewriteContext,
) => readonly TensorRef[] | undefined | null;

/**
 * The one rewrite driver every transforming pass uses. Walks the graph in order, lets the
 * visitor replace each node, and rebuilds the rest. Because every node is re-added through
 * the builder, output types are re-inferred: a pass that shrinks the token count at one
 * node (token pruning) gets every later shape updated for free, and a rewrite that breaks
 * a shape rule fails right there, naming the node.
 *
 * `finish` may add outputs to the new graph after all nodes are mapped.
 */
export function rewriteGraph(
  graph: Graph,
  visit: RewriteVisitor,
  finish?: (builder: GraphBuilder, map: (ref: TensorRef) => TensorRef) => void,
): Graph {
  const builder = new GraphBuilder(graph.name);
  // New-graph refs of each old node's outputs; null for dropped nodes.
  const mapped: (readonly TensorRef[] | null)[] = [];
  const map = (ref: TensorRef): TensorRef => {
    const refs = mapped[ref.node];
    if (refs === null) {
      throw new RangeError(`rewrite of ${graph.name}: %${ref.node} was dropped but is still used`);
    }
    const out = refs?.[ref.output];
    if (out === undefined) {
      throw new RangeError(
        `rewrite of ${graph.name}: %${ref.node}:${ref.output} is not mapped yet`,
      );
    }
    return out;
  };
  for (const node of graph.nodes) {
    // Mapped lazily: the inputs of a node being dropped may be dropped too.
    let inputs: readonly TensorRef[] | undefined;
    const inputsOf = (): readonly TensorRef[] => {
      inputs ??= node.inputs.map(map);
      return inputs;
    };
    const context: RewriteContext = {
      builder,
      get inputs() {
        return inputsOf();
      },
      copy: (newInputs?: readonly TensorRef[]) =>
        builder.add(node.op, newInputs ?? inputsOf(), node.attrs as never, metaOf(node)),
      map,
    };
    // Nodes a pass emits for this one belong to its layer stack unless the pass says otherwise.
    const replacement = builder.inStack(node.stack, () => visit(node, context));
    if (replacement === null) {
      mapped[node.id] = null;
      continue;
    }
    const outputs = replacement ?? context.copy();
    if (outputs.length !== node.outputs.length) {
      throw new RangeError(
        `rewrite of ${graph.name}: %${node.id} ${node.op} has ${node.outputs.length} outputs, replacement gave ${outputs.length}`,
      );
    }
    mapped[node.id] = outputs;
  }
  for (const out of graph.outputs) builder.output(out.name, map(out.ref));
  finish?.(builder, map);
  return builder.build();
}
