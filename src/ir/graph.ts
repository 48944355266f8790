import type { OpAttrs, OpKind } from "./ops/index.js";
import type { TensorType } from "./tensor.js";

/** One output of one node: the edges of the tensor graph. */
export interface TensorRef {
  readonly node: number;
  readonly output: number;
}

/**
 * What a node is for, where passes need to find it without pattern-matching the
 * surrounding math. Set by model builders.
 * - encoderInput: the token sequence entering the first encoder layer (CLS first).
 * - layerOutput: the hidden states leaving transformer layer `layer`.
 * - tokenIndex: original positions (i32 [1|B, L]) of the local tokens entering the encoder.
 * - crossAttention: a multimodal layer's text-to-video attention.
 * - visualTokens / visualMask: the video tokens and their additive mask that a multimodal
 *   layer cross-attends to.
 */
export type NodeRole =
  | "encoderInput"
  | "layerOutput"
  | "tokenIndex"
  | "crossAttention"
  | "visualTokens"
  | "visualMask";

/**
 * Where a node comes from: a dotted scope (state_dict style), the layer stack and layer
 * it belongs to, a role. A model with two transformers (the retrieval model's vision and
 * text encoders) numbers each stack's layers from 0, so (stack, layer) names a layer.
 */
export interface NodeMeta {
  readonly name: string;
  /** The layer stack ("vision", "text"), or null in single-stack graphs and outside layers. */
  readonly stack: string | null;
  readonly layer: number | null;
  readonly role: NodeRole | null;
}

/**
 * One node type at every stage. Nodes are immutable; `id` equals the node's position in
 * `Graph.nodes`, which is a topological order.
 */
export interface Node<K extends OpKind = OpKind> extends NodeMeta {
  readonly id: number;
  readonly op: K;
  readonly inputs: readonly TensorRef[];
  readonly attrs: OpAttrs[K];
  readonly outputs: readonly TensorType[];
}

/** Any node, discriminated by `op` (so `switch (node.op)` narrows `attrs`). */
export type AnyNode = { [K in OpKind]: Node<K> }[OpKind];

export interface GraphOutput {
  readonly name: string;
  readonly ref: TensorRef;
}

/** An immutable tensor graph. Build with GraphBuilder; transform with rewriteGraph. */
export interface Graph {
  readonly name: string;
  readonly nodes: readonly AnyNode[];
  readonly outputs: readonly GraphOutput[];
}

export function isOp<K extends OpKind>(node: AnyNode, op: K): node is Extract<AnyNode, { op: K }> {
  return node.op === op;
}

export function tensorType(graph: Graph, ref: TensorRef): TensorType {
  const type = graph.nodes[ref.node]?.outputs[ref.output];
  if (type === undefined)
    throw new RangeError(`no tensor %${ref.node}:${ref.output} in graph ${graph.name}`);
  return type;
}

export function refKey(ref: TensorRef): string {
  return ref.output === 0 ? `%${ref.node}` : `%${ref.node}:${ref.output}`;
}

/** A label for messages: `%12 linear "encoder.layer.0.attention.attention.query"`. */
export function nodeLabel(node: Pick<Node, "id" | "op" | "name">): string {
  return `%${node.id} ${node.op}${node.name ? ` "${node.name}"` : ""}`;
}

/** For each node id, the ids of nodes reading any of its outputs. */
export function consumers(graph: Graph): number[][] {
  const users: number[][] = graph.nodes.map(() => []);
  for (const node of graph.nodes) {
    for (const ref of node.inputs) users[ref.node]?.push(node.id);
  }
  return users;
}

export function nodesOf<K extends OpKind>(graph: Graph, op: K): Extract<AnyNode, { op: K }>[] {
  return graph.nodes.filter((n): n is Extract<AnyNode, { op: K }> => n.op === op);
}

export function graphInputs(graph: Graph): Extract<AnyNode, { op: "input" }>[] {
  return nodesOf(graph, "input");
}

export function findOutput(graph: Graph, name: string): GraphOutput | undefined {
  return graph.outputs.find((o) => o.name === name);
}
