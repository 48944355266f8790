import type { OpKind } from "../../src/ir/ops/index.js";
import { lowerAttention, lowerBlockSparseAttention } from "./codegen/attention.js";
import {
  lowerAdd,
  lowerGelu,
  lowerLayerNorm,
  lowerLinear,
  lowerMul,
  lowerReshape,
} from "./codegen/dense.js";
import { lowerMeanTokens, lowerPatchEmbed, lowerPrependTokens } from "./codegen/embedding.js";
import type { Lowering, SourcePlan } from "./codegen/plan.js";
import { lowerQuantizedLinear, lowerWeightScales } from "./codegen/quantized.js";
import {
  lowerAdditiveMask,
  lowerEmbedding,
  lowerL2Normalize,
  lowerSelectBatch,
  lowerSimilarity,
  lowerSlice,
} from "./codegen/text.js";
import { lowerGather, lowerTokenScores, lowerTopK } from "./codegen/tokens.js";

const bound = (): SourcePlan => ({ source: true });

/**
 * The gpujs lowering of every op kind. A mapped type over OpKind: adding an op kind to the
 * IR makes this table fail to type-check until the kind is lowered here. Sources are bound
 * to host data and uploaded once (weights, constants) or per run (inputs).
 */
export const LOWERINGS: { readonly [K in OpKind]: Lowering<K> } = {
  input: bound,
  weight: bound,
  constant: bound,
  linear: lowerLinear,
  add: lowerAdd,
  mul: lowerMul,
  gelu: lowerGelu,
  layerNorm: lowerLayerNorm,
  reshape: lowerReshape,
  patchEmbed: lowerPatchEmbed,
  prependTokens: lowerPrependTokens,
  meanTokens: lowerMeanTokens,
  attention: lowerAttention,
  blockSparseAttention: lowerBlockSparseAttention,
  embedding: lowerEmbedding,
  additiveMask: lowerAdditiveMask,
  l2Normalize: lowerL2Normalize,
  similarity: lowerSimilarity,
  selectBatch: lowerSelectBatch,
  slice: lowerSlice,
  weightScales: lowerWeightScales,
  quantizedLinear: lowerQuantizedLinear,
  tokenScores: lowerTokenScores,
  topK: lowerTopK,
  gather: lowerGather,
};
