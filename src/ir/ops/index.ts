import { attention, blockSparseAttention } from "./attention.js";
import type { OpTable } from "./def.js";
import { add, gelu, layerNorm, linear, mul, reshape } from "./dense.js";
import { meanTokens, patchEmbed, prependTokens } from "./embedding.js";
import { quantizedLinear, weightScales } from "./quantized.js";
import { constant, input, weight } from "./sources.js";
import { additiveMask, embedding, l2Normalize, selectBatch, similarity, slice } from "./text.js";
import { gather, tokenScores, topK } from "./tokens.js";

export type { OpDef, OpTable, PerTokenFact } from "./def.js";
export type { OpAttrs, OpFamily, OpKind, RelPosBiasAttrs } from "./types.js";

/** The op table: every kind's family, arity and shape rule. */
export const OPS: OpTable = {
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

export const OP_KINDS = Object.keys(OPS) as (keyof OpTable)[];
