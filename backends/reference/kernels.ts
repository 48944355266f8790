import { BackendError } from "../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../src/ir/graph.js";
import type { OpKind } from "../../src/ir/ops/index.js";
import type { HostTensor } from "../../src/ir/tensor.js";
import { attention, blockSparseAttention } from "./kernels/attention.js";
import { add, gelu, layerNorm, linear, mul, reshape } from "./kernels/dense.js";
import { meanTokens, patchEmbed, prependTokens } from "./kernels/embedding.js";
import { quantizedLinear, weightScales } from "./kernels/quantized.js";
import {
  additiveMask,
  embedding,
  l2Normalize,
  selectBatch,
  similarity,
  slice,
} from "./kernels/text.js";
import { gather, tokenScores, topK } from "./kernels/tokens.js";
import type { Kernel } from "./kernels/util.js";

export type { Kernel } from "./kernels/util.js";

/**
 * Input and weight values come from the tensors bound when the graph runs; the interpreter
 * reads them itself, so these entries only report being called directly.
 */
function boundSource(node: Node<"input"> | Node<"weight">): HostTensor[] {
  throw new BackendError(
    `reference: ${nodeLabel(node)} is a bound source; the interpreter supplies its value`,
  );
}

/** constant: its value, as stored in the node. */
function constant(node: Node<"constant">): HostTensor[] {
  return [node.attrs.value];
}

/**
 * The reference kernel of every op kind. A mapped type over OpKind: adding an op kind to
 * the IR makes this table fail to type-check until the kind has a kernel.
 */
export const KERNELS: { readonly [K in OpKind]: Kernel<K> } = {
  input: boundSource,
  weight: boundSource,
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

/** Runs the kernel of `node` on its input values. */
export function runKernel<K extends OpKind>(
  node: Node<K>,
  inputs: readonly HostTensor[],
): HostTensor[] {
  const kernel: Kernel<K> = KERNELS[node.op];
  return kernel(node, inputs);
}
