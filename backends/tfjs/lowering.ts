import type { Node } from "../../src/ir/graph.js";
import type { OpKind } from "../../src/ir/ops/index.js";
import { attention, blockSparseAttention } from "./ops/attention.js";
import {
  add,
  constant,
  gelu,
  input,
  layerNorm,
  linear,
  meanTokens,
  mul,
  patchEmbed,
  prependTokens,
  reshape,
  weight,
} from "./ops/dense.js";
import {
  additiveMask,
  embedding,
  l2Normalize,
  selectBatch,
  similarity,
  slice,
} from "./ops/text.js";
import { quantizedLinear, weightScales } from "./ops/quantized.js";
import { gather, tokenScores, topK } from "./ops/tokens.js";
import type { LowerContext, Lowering, Step } from "./types.js";

/**
 * The lowering of every op kind. A mapped type over OpKind: adding an op kind to the IR
 * makes this table fail to type-check until the kind is lowered here.
 */
export const LOWERINGS: { readonly [K in OpKind]: Lowering<K> } = {
  input,
  weight,
  constant,
  linear,
  add,
  mul,
  gelu,
  layerNorm,
  reshape,
  patchEmbed,
  prependTokens,
  meanTokens,
  attention,
  blockSparseAttention,
  embedding,
  additiveMask,
  l2Normalize,
  similarity,
  selectBatch,
  slice,
  weightScales,
  quantizedLinear,
  tokenScores,
  topK,
  gather,
};

/** Lowers one node with the table entry of its kind. */
export function lowerNode<K extends OpKind>(node: Node<K>, ctx: LowerContext): Step {
  const lowering: Lowering<K> = LOWERINGS[node.op];
  return lowering(node, ctx);
}
