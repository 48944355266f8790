import * as tf from "@tensorflow/tfjs-core";
import { BackendError } from "../../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../../src/ir/graph.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import type { WasmBlockSparseAttention } from "../../native/wasm.js";
import type { LowerContext, Lowering, Step } from "../types.js";
import { inShape, readF32, readI32 } from "../util.js";
import { blockSparseAttentionDevice, denseAttentionDevice } from "./attention-device.js";
import { blockSparseAttentionHost, denseAttentionHost } from "./attention-host.js";

/**
 * The attention lowerings: "device" (attention-device.ts) or "host" (attention-host.ts)
 * by the context's strategy. Both compute exactly the op semantics of
 * src/ir/ops/types.ts and backends/reference/kernels/attention.ts.
 */

export const attention: Lowering<"attention"> = (node, ctx) => {
  const nq = inShape(ctx.graph, node, 0)[1]!;
  const nk = inShape(ctx.graph, node, 1)[1]!;
  if (node.attrs.relPosBias !== null && nq !== nk) {
    // Position ids come from the query sequence; keys reuse them (self-attention only).
    throw new BackendError(
      `tfjs: ${nodeLabel(node)}: relative position bias needs as many keys as queries (${nq} vs ${nk})`,
    );
  }
  return ctx.strategy === "host" ? denseAttentionHost(node, ctx) : denseAttentionDevice(node, ctx);
};

export const blockSparseAttention: Lowering<"blockSparseAttention"> = (node, ctx) => {
  if (ctx.sparseKernel !== null) return blockSparseAttentionKernel(node, ctx, ctx.sparseKernel);
  return ctx.strategy === "device"
    ? blockSparseAttentionDevice(node, ctx)
    : blockSparseAttentionHost(node, ctx);
};

/**
 * blockSparseAttention in sprig's WebAssembly kernel: q, k, v (and the bias inputs) read
 * back, one kernel call, the two outputs uploaded. Weights and constants (the bias table,
 * a constant token index) are read once at compile time.
 */
function blockSparseAttentionKernel(
  node: Node<"blockSparseAttention">,
  ctx: LowerContext,
  kernel: WasmBlockSparseAttention,
): Step {
  const known = node.inputs.map((_, i) => ctx.claim(node, i));
  return (inputs) => {
    const values = inputs.map((t, i): HostTensor => {
      const value = known[i];
      if (value) return value;
      const shape = [...t.shape];
      return t.dtype === "int32"
        ? { dtype: "i32", shape, data: readI32(t) }
        : { dtype: "f32", shape, data: readF32(t) };
    });
    return kernel.run(node, values).map((out) => tf.tensor(out.data, [...out.shape], "float32"));
  };
}
