import { BackendError } from "../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../src/ir/graph.js";
import { relPosTableRows } from "../../src/ir/relpos.js";
import type { HostTensor } from "../../src/ir/tensor.js";

/**
 * The arguments of the C kernel's sprig_bsa_args (bsa.h) for one blockSparseAttention
 * node and its input values, checked: shared by the native addon and the WebAssembly
 * build. Imports nothing of Node, so browser bundles may include it.
 */
export interface BsaCall {
  readonly batch: number;
  readonly n: number;
  readonly c: number;
  readonly heads: number;
  readonly g: number;
  readonly bs: number;
  readonly blocks: number;
  readonly width: number;
  readonly layoutHeads: number;
  readonly masked: boolean;
  readonly layout: Int32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** The relative position bias, or null. */
  readonly bias: {
    readonly table: Float32Array;
    readonly rows: number;
    readonly window: readonly [number, number, number];
    readonly tokenIdx: Int32Array;
    readonly tokenBatch: number;
  } | null;
  /** Output sizes (floats): context [B, N, C], global probabilities [B, H, G, N]. */
  readonly contextSize: number;
  readonly probsSize: number;
}

function f32(node: Node, tensor: HostTensor | undefined, what: string, size: number): Float32Array {
  if (tensor?.dtype !== "f32" || tensor.data.length !== size) {
    throw new BackendError(`${nodeLabel(node)}: ${what} is not f32 with ${size} elements`);
  }
  return tensor.data;
}

/** Throws a RangeError naming the node when a token index lies outside the bias window. */
export function checkTokenIndex(
  node: Node<"blockSparseAttention">,
  tokenIdx: HostTensor,
  windowTokens: number,
  backend: string,
): void {
  const len = tokenIdx.shape[1]!;
  tokenIdx.data.forEach((original, i) => {
    if (!(original >= 0 && original < windowTokens)) {
      throw new RangeError(
        `${backend}: ${nodeLabel(node)}: token index ${original} (batch ${Math.floor(i / len)}, position ${i % len}) outside the ${windowTokens}-token window`,
      );
    }
  });
}

export function bsaCall(
  node: Node<"blockSparseAttention">,
  inputs: readonly HostTensor[],
  backend: string,
): BsaCall {
  const { heads, pattern, padding, relPosBias } = node.attrs;
  const [batch, n, c] = node.outputs[0]!.shape as [number, number, number];
  const { layout } = pattern;
  const size = batch * n * c;
  let bias: BsaCall["bias"] = null;
  if (relPosBias !== null) {
    const { window } = relPosBias;
    const rows = relPosTableRows(window);
    const index = inputs[4];
    if (index?.dtype !== "i32") {
      throw new BackendError(`${backend}: ${nodeLabel(node)}: token index is not i32`);
    }
    checkTokenIndex(node, index, window[0] * window[1] * window[2], backend);
    bias = {
      table: f32(node, inputs[3], "the bias table", rows * heads),
      rows,
      window,
      tokenIdx: index.data,
      tokenBatch: index.shape[0]!,
    };
  }
  return {
    batch,
    n,
    c,
    heads,
    g: pattern.globalTokens,
    bs: pattern.blockSize,
    blocks: layout.queryBlocks,
    width: layout.blocksPerRow,
    layoutHeads: layout.heads,
    masked: padding === "masked",
    layout: layout.blocks,
    q: f32(node, inputs[0], "q", size),
    k: f32(node, inputs[1], "k", size),
    v: f32(node, inputs[2], "v", size),
    bias,
    contextSize: size,
    probsSize: batch * heads * pattern.globalTokens * n,
  };
}

/** sprig_bsa_args' leading int32 fields, batch .. masked, in declaration order (bsa.h). */
export function shapeFields(call: BsaCall): number[] {
  return [
    call.batch,
    call.n,
    call.c,
    call.heads,
    call.g,
    call.bs,
    call.blocks,
    call.width,
    call.layoutHeads,
    call.masked ? 1 : 0,
  ];
}

/** sprig_bsa_args' bias fields table_rows, wt, wh, ww, token_batch (1s without a bias). */
export function biasFields(call: BsaCall): number[] {
  const { bias } = call;
  return [bias?.rows ?? 0, ...(bias?.window ?? [1, 1, 1]), bias?.tokenBatch ?? 1];
}

/** The kernel's outputs as the node's host tensors. */
export function bsaOutputs(
  node: Node<"blockSparseAttention">,
  context: Float32Array,
  probs: Float32Array,
): HostTensor[] {
  return [
    { dtype: "f32", shape: [...node.outputs[0]!.shape], data: context },
    { dtype: "f32", shape: [...node.outputs[1]!.shape], data: probs },
  ];
}
