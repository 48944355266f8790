import { BackendError } from "../../../src/ir/errors.js";
import { nodeLabel } from "../../../src/ir/graph.js";
import type { Lowering } from "../types.js";
import { inShape } from "../util.js";
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

export const blockSparseAttention: Lowering<"blockSparseAttention"> = (node, ctx) =>
  ctx.strategy === "device"
    ? blockSparseAttentionDevice(node, ctx)
    : blockSparseAttentionHost(node, ctx);
