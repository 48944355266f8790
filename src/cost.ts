import { attentionPlan, computedPairs } from "./ir/attention-plan.js";
import { type AnyNode, type Graph, isOp } from "./ir/graph.js";
import type { OpKind } from "./ir/ops/index.js";
import { bytesPerElement } from "./ir/dtype.js";
import { numElements, type TensorType } from "./ir/tensor.js";

/**
 * The cost model: multiply-adds (MACs) and bytes moved, per node, per layer and in total.
 *
 * MACs count what dominates transformer cost, following the SViTT cost table in
 * design/platform-facts.md: linear layers (rows x in x out), the patch embedding
 * (patches x C x Cin·p²), and attention's q·k and p·v products (per batch item
 * 2 · queries · keys · C). Block-sparse attention counts what its plan computes
 * (src/ir/attention-plan.ts, computedPairs): its global rows densely, and each query block's
 * bs rows (padded query rows included: they are computed and discarded) over the block's own
 * key slots, G + (its row's key blocks)·bs, so ragged rows count their own length and a
 * partial block counts all bs x bs pairs (they are computed, then masked); per-head layouts
 * average over heads. keysPerQuery is the slots a query forms, likewise. Retrieval similarities (scale · a bᵀ, a [M, D], b [N, D]) count M · N · D
 * as linear MACs. Softmax, LayerNorm, GELU, L2 normalisation, elementwise ops, masks and
 * row look-ups or copies (embedding, gather, selectBatch, slice) count 0 MACs.
 * Bytes are every tensor a node reads plus every tensor it writes (float32/int32), a
 * first-order measure of memory traffic that ignores caching and fusion.
 */
export type CostKind = "linear" | "attention" | "embedding" | "other";

export interface NodeCost {
  readonly kind: CostKind;
  readonly macs: number;
  readonly bytes: number;
  /** Keys each query reads, averaged over the real (unpadded) queries (attention only). */
  readonly keysPerQuery?: number;
}

type Shapes = readonly (readonly number[])[];
type MacRule<K extends OpKind> = (
  node: Extract<AnyNode, { op: K }>,
  inputs: Shapes,
) => Omit<NodeCost, "bytes">;

const none = (): Omit<NodeCost, "bytes"> => ({ kind: "other", macs: 0 });

/** One rule per op kind (a mapped type: a new op fails tsc until it has a cost rule). */
const MAC_RULES: { readonly [K in OpKind]: MacRule<K> } = {
  input: none,
  weight: none,
  constant: none,
  // rows x out outputs, each an in-long dot product
  linear: (node, [, w]) => ({ kind: "linear", macs: numElements(node.outputs[0]!.shape) * w![1]! }),
  add: none,
  mul: none,
  gelu: none,
  layerNorm: none,
  reshape: none,
  patchEmbed: (node, [, w]) => ({
    kind: "embedding",
    macs: numElements(node.outputs[0]!.shape) * w![1]! * w![2]! * w![3]!,
  }),
  prependTokens: none,
  meanTokens: none,
  attention: (_node, [q, k]) => {
    const [batch, queries, width] = q!;
    const keys = k![1]!;
    return { kind: "attention", macs: 2 * batch! * queries! * keys * width!, keysPerQuery: keys };
  },
  blockSparseAttention: (node, [q]) => {
    const [batch, tokens, hidden] = q!;
    const { heads, pattern, padding, relPosBias } = node.attrs;
    const plan = attentionPlan(
      pattern,
      { batch: batch!, tokens: tokens!, hidden: hidden!, heads },
      padding,
      relPosBias,
    );
    // Summed over the layout heads; each layout head stands for heads / layoutHeads heads.
    const { pairs, localQuerySlots } = computedPairs(plan);
    const headsPerLayoutHead = heads / plan.layoutHeads;
    const globalSlots = plan.layoutHeads * plan.globalTokens * tokens!;
    return {
      kind: "attention",
      macs: 2 * batch! * pairs * plan.headDim * headsPerLayoutHead,
      keysPerQuery: (globalSlots + localQuerySlots) / (plan.layoutHeads * tokens!),
    };
  },
  // Row look-ups, masks, normalisation and data movement: no multiply-adds worth counting.
  embedding: none,
  additiveMask: none,
  l2Normalize: none,
  // M x N outputs, each a D-long dot product (the scale multiplies the result: not a MAC)
  similarity: (_node, [a, b]) => ({ kind: "linear", macs: a![0]! * b![0]! * a![1]! }),
  selectBatch: none,
  slice: none,
  // Computed once per executable from a weight: no run-time work.
  weightScales: none,
  // The same multiply-adds as linear, in 8-bit integers (kind "linear": they are its MACs).
  quantizedLinear: (node, [, w]) => ({
    kind: "linear",
    macs: numElements(node.outputs[0]!.shape) * w![1]!,
  }),
  tokenScores: none,
  topK: none,
  gather: none,
};

function tensorBytes(type: TensorType): number {
  return numElements(type.shape) * bytesPerElement(type.dtype);
}

export function nodeCost(graph: Graph, node: AnyNode): NodeCost {
  const inputTypes = node.inputs.map((ref) => graph.nodes[ref.node]!.outputs[ref.output]!);
  const rule = MAC_RULES[node.op] as MacRule<OpKind>;
  const macs = rule(
    node as never,
    inputTypes.map((t) => t.shape),
  );
  // weightScales runs once per executable, not per run: like a source, it moves no bytes.
  const isSource =
    node.op === "input" ||
    node.op === "weight" ||
    node.op === "constant" ||
    node.op === "weightScales";
  const bytes = isSource
    ? 0
    : inputTypes.reduce((sum, t) => sum + tensorBytes(t), 0) +
      node.outputs.reduce((sum, t) => sum + tensorBytes(t), 0);
  return { ...macs, bytes };
}

export interface LayerCost {
  /** The layer stack ("vision", "text") in graphs with several; null otherwise. */
  readonly stack: string | null;
  readonly layer: number;
  /** Tokens entering the layer (CLS included). */
  readonly tokensIn: number;
  /** Tokens leaving the layer, after any token drop. */
  readonly tokensOut: number;
  readonly keysPerQuery: number;
  /** "dense" or the block pattern, for display. */
  readonly attention: string;
  /** Visual tokens a fusion layer's cross-attention reads; null without cross-attention. */
  readonly crossKeys: number | null;
  readonly linearMacs: number;
  readonly attentionMacs: number;
  readonly bytes: number;
}

export interface CostTotals {
  readonly linearMacs: number;
  readonly attentionMacs: number;
  readonly embeddingMacs: number;
  readonly macs: number;
  readonly bytes: number;
  /** Parameter bytes (weights), counted once. */
  readonly weightBytes: number;
}

export interface CostReport {
  readonly graph: string;
  readonly layers: readonly LayerCost[];
  readonly totals: CostTotals;
}

export function analyzeCost(graph: Graph): CostReport {
  // Layers by (stack, layer): a retrieval graph numbers its vision and text layers from 0.
  const perLayer = new Map<
    string,
    {
      stack: string | null;
      layer: number;
      tokensIn: number;
      tokensOut: number;
      keysPerQuery: number;
      attention: string;
      linear: number;
      attn: number;
      bytes: number;
      crossKeys: number | null;
    }
  >();
  let linear = 0;
  let attention = 0;
  let embedding = 0;
  let bytes = 0;
  let weightBytes = 0;
  for (const node of graph.nodes) {
    const cost = nodeCost(graph, node);
    if (node.op === "weight") weightBytes += tensorBytes(node.outputs[0]!);
    bytes += cost.bytes;
    if (cost.kind === "linear") linear += cost.macs;
    else if (cost.kind === "attention") attention += cost.macs;
    else if (cost.kind === "embedding") embedding += cost.macs;
    if (node.layer === null) continue;
    const key = `${node.stack ?? ""}\u0000${node.layer}`;
    const entry = perLayer.get(key) ?? {
      stack: node.stack,
      layer: node.layer,
      tokensIn: 0,
      tokensOut: 0,
      keysPerQuery: 0,
      attention: "",
      linear: 0,
      attn: 0,
      bytes: 0,
      crossKeys: null,
    };
    entry.bytes += cost.bytes;
    if (cost.kind === "linear") entry.linear += cost.macs;
    if (cost.kind === "attention") {
      entry.attn += cost.macs;
      // The self-attention defines the layer's token count (a cross-attention reads video tokens).
      if (node.role !== "crossAttention") {
        const q = graph.nodes[node.inputs[0]!.node]!.outputs[node.inputs[0]!.output]!;
        entry.tokensIn = q.shape[1]!;
        entry.keysPerQuery = cost.keysPerQuery ?? 0;
        entry.attention = isOp(node, "blockSparseAttention") ? "block-sparse" : "dense";
      } else {
        entry.crossKeys =
          graph.nodes[node.inputs[1]!.node]!.outputs[node.inputs[1]!.output]!.shape[1]!;
      }
    }
    if (node.role === "layerOutput") entry.tokensOut = node.outputs[0]!.shape[1]!;
    perLayer.set(key, entry);
  }
  // Stacks in graph order, layers ascending within each.
  const stackOrder = [...new Set([...perLayer.values()].map((e) => e.stack))];
  const layers = [...perLayer.values()]
    .sort((a, b) => stackOrder.indexOf(a.stack) - stackOrder.indexOf(b.stack) || a.layer - b.layer)
    .map((e) => ({
      stack: e.stack,
      layer: e.layer,
      tokensIn: e.tokensIn,
      tokensOut: e.tokensOut || e.tokensIn,
      keysPerQuery: e.keysPerQuery,
      attention: e.attention,
      crossKeys: e.crossKeys,
      linearMacs: e.linear,
      attentionMacs: e.attn,
      bytes: e.bytes,
    }));
  return {
    graph: graph.name,
    layers,
    totals: {
      linearMacs: linear,
      attentionMacs: attention,
      embeddingMacs: embedding,
      macs: linear + attention + embedding,
      bytes,
      weightBytes,
    },
  };
}
