import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { BackendError } from "../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../src/ir/graph.js";
import type { HostTensor } from "../../src/ir/tensor.js";
import { biasFields, bsaCall, bsaOutputs, shapeFields } from "./args.js";
import { NATIVE_DIR } from "./paths.js";

/**
 * sprig's own kernels in C (bsa.c), for the ops where a general-purpose runtime's
 * decomposition is the bottleneck. Today one: block-sparse attention, which onnxruntime
 * can only run as many small batched products (measured at ~55% of its dense attention's
 * FLOP rate on SViTT's blocks); the C kernel gathers each block into cache-friendly tiles
 * and runs the products, bias, partial blocks' masks and softmax in one pass, over rows of
 * any length (the node's attention plan, src/ir/attention-plan.ts).
 *
 * The addon is built at install time (build.ts); when it is missing, callers fall back to
 * their portable lowering.
 */

interface Addon {
  blockSparseAttention(
    dims: Int32Array,
    rowStart: Int32Array,
    keyBlock: Int32Array,
    entryMask: Int32Array,
    masks: Uint32Array,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    table: Float32Array | null,
    codes: Int32Array | null,
    context: Float32Array,
    probs: Float32Array,
    threads: number,
  ): void;
}

export type NativeStatus =
  | { readonly ok: true; readonly path: string }
  | { readonly ok: false; readonly reason: string };

const ADDON_PATH = join(NATIVE_DIR, "sprig_native.node");

let addon: Addon | null = null;
let status: NativeStatus | null = null;

/** Loads the addon once; says why not when it cannot. */
export function nativeStatus(): NativeStatus {
  if (status !== null) return status;
  if (!existsSync(ADDON_PATH)) {
    status = { ok: false, reason: `${ADDON_PATH} is not built (npm run build:native)` };
    return status;
  }
  try {
    addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
    status = { ok: true, path: ADDON_PATH };
  } catch (error) {
    status = { ok: false, reason: `${ADDON_PATH}: ${(error as Error).message}` };
  }
  return status;
}

/**
 * The blockSparseAttention node's outputs [context, global probabilities] from its input
 * values (q, k, v, then table and token index with a bias), on `threads` threads.
 * Matches the reference kernel (backends/reference/kernels/attention.ts).
 */
export function nativeBlockSparseAttention(
  node: Node<"blockSparseAttention">,
  inputs: readonly HostTensor[],
  threads: number,
): HostTensor[] {
  const loaded = nativeStatus();
  if (!loaded.ok || addon === null) {
    throw new BackendError(`native kernels: ${loaded.ok ? "not loaded" : loaded.reason}`);
  }
  const call = bsaCall(node, inputs, "native");
  const { bias } = call;
  const dims = Int32Array.from([...shapeFields(call), ...biasFields(call)]);
  const context = new Float32Array(call.contextSize);
  const probs = new Float32Array(call.probsSize);
  try {
    addon.blockSparseAttention(
      dims,
      call.rowStart,
      call.keyBlock,
      call.entryMask,
      call.masks,
      call.q,
      call.k,
      call.v,
      bias?.table ?? null,
      bias?.codes ?? null,
      context,
      probs,
      threads,
    );
  } catch (error) {
    throw new BackendError(`native: ${nodeLabel(node)}: ${(error as Error).message}`);
  }
  return bsaOutputs(node, context, probs);
}
