import { attentionPlanOf } from "../../src/ir/attention-plan.js";
import { BackendError } from "../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../src/ir/graph.js";
import { relPosCodes } from "../../src/ir/relpos.js";
import type { HostTensor } from "../../src/ir/tensor.js";

/**
 * The arguments of the C kernel's sprig_bsa_args (bsa.h) for one blockSparseAttention
 * node and its input values, all read off the node's attention plan
 * (src/ir/attention-plan.ts) and checked: shared by the native addon and the WebAssembly
 * build. Imports nothing of Node, so browser bundles may include it.
 */
export interface BsaCall {
  /** sprig_bsa_args' int32 fields in declaration order (bsa.h), see intFields. */
  readonly batch: number;
  readonly n: number;
  readonly c: number;
  readonly heads: number;
  readonly g: number;
  readonly bs: number;
  readonly blocks: number;
  readonly maxWidth: number;
  readonly layoutHeads: number;
  readonly masked: boolean;
  readonly maskWords: number;
  readonly maskCount: number;
  /** The plan's rows (CSR) and token masks. */
  readonly rowStart: Int32Array;
  readonly keyBlock: Int32Array;
  readonly entryMask: Int32Array;
  readonly masks: Uint32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  /** The relative position bias as its linear form, or null. */
  readonly bias: {
    readonly table: Float32Array;
    readonly rows: number;
    /** Code of every local token [tokenBatch, N - 1]. */
    readonly codes: Int32Array;
    readonly tokenBatch: number;
    readonly offset: number;
    readonly clsToToken: number;
    readonly tokenToCls: number;
    readonly clsToCls: number;
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

export function bsaCall(
  node: Node<"blockSparseAttention">,
  inputs: readonly HostTensor[],
  backend: string,
): BsaCall {
  const plan = attentionPlanOf(node);
  const { batch, tokens: n, hidden: c, heads } = plan;
  const size = batch * n * c;
  let bias: BsaCall["bias"] = null;
  if (plan.relPos !== null) {
    const lin = plan.relPos;
    const index = inputs[4];
    if (index?.dtype !== "i32") {
      throw new BackendError(`${backend}: ${nodeLabel(node)}: token index is not i32`);
    }
    const codes = relPosCodes(lin, index.data, index.shape[1]!, (original, row, position) => {
      throw new RangeError(
        `${backend}: ${nodeLabel(node)}: token index ${original} (batch ${row}, position ${position}) outside the ${lin.windowTokens}-token window`,
      );
    });
    bias = {
      table: f32(node, inputs[3], "the bias table", lin.tableRows * heads),
      rows: lin.tableRows,
      codes,
      tokenBatch: index.shape[0]!,
      offset: lin.offset,
      clsToToken: lin.clsToToken,
      tokenToCls: lin.tokenToCls,
      clsToCls: lin.clsToCls,
    };
  }
  return {
    batch,
    n,
    c,
    heads,
    g: plan.globalTokens,
    bs: plan.blockSize,
    blocks: plan.queryBlocks,
    maxWidth: plan.widestRow,
    layoutHeads: plan.layoutHeads,
    masked: plan.padding === "masked",
    maskWords: plan.maskWords,
    maskCount:
      plan.partialEntries === 0 ? 0 : plan.masks.length / (plan.blockSize * plan.maskWords),
    rowStart: plan.rowStart,
    keyBlock: plan.keyBlock,
    entryMask: plan.entryMask,
    masks: plan.partialEntries === 0 ? new Uint32Array(0) : plan.masks,
    q: f32(node, inputs[0], "q", size),
    k: f32(node, inputs[1], "k", size),
    v: f32(node, inputs[2], "v", size),
    bias,
    contextSize: size,
    probsSize: batch * heads * plan.globalTokens * n,
  };
}

/** sprig_bsa_args' leading int32 fields, batch .. mask_count, in declaration order (bsa.h). */
export function shapeFields(call: BsaCall): number[] {
  return [
    call.batch,
    call.n,
    call.c,
    call.heads,
    call.g,
    call.bs,
    call.blocks,
    call.maxWidth,
    call.layoutHeads,
    call.masked ? 1 : 0,
    call.maskWords,
    call.maskCount,
  ];
}

/**
 * sprig_bsa_args' bias fields table_rows, token_batch, offset, cls_to_token, token_to_cls,
 * cls_to_cls (0 and 1 without a bias).
 */
export function biasFields(call: BsaCall): number[] {
  const { bias } = call;
  if (bias === null) return [0, 1, 0, 0, 0, 0];
  return [bias.rows, bias.tokenBatch, bias.offset, bias.clsToToken, bias.tokenToCls, bias.clsToCls];
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
