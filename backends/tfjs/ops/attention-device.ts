import * as tf from "@tensorflow/tfjs-core";
import {
  attentionPlanOf,
  concatenatedOrder,
  SLOT_EXCLUDED,
} from "../../../src/ir/attention-plan.js";
import type { Node } from "../../../src/ir/graph.js";
import type { LowerContext, Step } from "../types.js";
import { arg, inShape, outShape } from "../util.js";
import {
  allIds,
  denseBias,
  type RelPosInputs,
  relPosInputs,
  type SparseGeometry,
  sparseGlobalBias,
  sparseGroups,
  sparseLocalBias,
  staticRelPos,
} from "./attention-common.js";

/**
 * Attention with tfjs ops only ("device" strategy): batched matMuls over (batch, head) and,
 * for block-sparse attention, over (batch, head, query block), with key and value blocks
 * gathered once per layer. Nothing is read back, so this runs on every tfjs backend; it is
 * the lowering for cpu, webgl and webgpu.
 *
 * Logits are formed from pre-scaled queries, (q/√d)·k, rather than (q·k)/√d: one pass over
 * [N, C] instead of one over every logit; the two differ by float32 rounding only.
 */

/** Position ids [rows, N] on the device: 0 for the CLS token, tokenIdx + 1 after it. */
function deviceIds(tokenIdx: tf.Tensor): tf.Tensor {
  const [rows] = tokenIdx.shape as [number];
  return tf.concat([tf.zeros([rows, 1], "int32"), tf.add(tokenIdx, tf.scalar(1, "int32"))], 1);
}

/**
 * Head numbers first..first+count-1 shaped to broadcast along axis 1 of a rank-`rank`
 * index tensor.
 */
function headAxis(count: number, rank: number, first = 0): tf.Tensor {
  const shape = Array.from({ length: rank }, (_, i) => (i === 1 ? count : 1));
  return tf.reshape(tf.range(first, first + count, 1, "int32"), shape);
}

/**
 * table[index(a, c), h] gathered from the flattened [P+3, H] table, for the heads
 * `group` (default: all of them, in order).
 */
function gatherBias(
  rp: RelPosInputs,
  inputs: readonly tf.Tensor[],
  a: tf.Tensor,
  c: tf.Tensor,
  heads: number,
  rank: number,
  group: HeadGroup = { first: 0, count: heads },
): tf.Tensor {
  const table = tf.reshape(arg(inputs, rp.tableInput), [-1]);
  const head = headAxis(group.count, rank, group.first);
  return tf.gather(table, rp.rel.deviceFlatIndex(a, c, heads, head));
}

/** Consecutive heads computed together. */
interface HeadGroup {
  readonly first: number;
  readonly count: number;
}

/**
 * Most logits one dense attention step holds at once (2^25 floats, 128 MiB): a tensor
 * larger than this does not fit a WebGL texture on most devices (tfjs-webgl stores one value
 * per texel, at most 8192 x 8192 on SwiftShader and many GPUs), e.g. the [12, 3137, 3137]
 * logits of a 16-frame layer.
 */
export const DENSE_LOGITS_LIMIT = 1 << 25;

/** Heads in groups whose logits [B, group, Nq, Nk] (perHead each) stay within `limit`. */
export function headGroups(heads: number, perHead: number, limit: number): HeadGroup[] {
  const size = Math.max(1, Math.min(heads, Math.floor(limit / perHead)));
  const groups: HeadGroup[] = [];
  for (let first = 0; first < heads; first += size) {
    groups.push({ first, count: Math.min(size, heads - first) });
  }
  return groups;
}

// ---- dense -------------------------------------------------------------------------------------

/**
 * attention: per (b, h), logits = (q/√d) kᵀ + bias + mask, p = softmax, context = p v, as
 * rank-4 batched matMuls: q [B, H, Nq, d] x kᵀ [B, H, d, Nk], p [B, H, Nq, Nk] x v [B, H, Nk, d].
 * The bias is [B'|1, H, Nq, Nk]: precomputed when the table and token index are known at
 * compile time, else gathered from the table at indices computed with integer ops. Heads
 * run in groups (headGroups) when all logits at once would be too large for a texture;
 * each group's results are joined along the head axis.
 */
export function denseAttentionDevice(node: Node<"attention">, ctx: LowerContext): Step {
  const { heads, numCls, probs, mask, relPosBias } = node.attrs;
  const [batch, nq, c] = inShape(ctx.graph, node, 0) as [number, number, number];
  const nk = inShape(ctx.graph, node, 1)[1]!;
  const d = c / heads;
  const scale = 1 / Math.sqrt(d);
  const rows = probs === "cls" ? numCls : nq;
  const rp = relPosInputs(node, relPosBias?.window, mask ? 4 : 3, ctx);
  const known = staticRelPos(rp);
  let staticBias: tf.Tensor | null = null;
  if (rp !== null && known !== null && rp.idxRows * heads * nq * nk <= ctx.staticBiasLimit) {
    const plane = heads * nq * nk;
    const data = new Float32Array(rp.idxRows * plane);
    allIds(node, rp, known.tokenIdx, nq).forEach((ids, row) => {
      data.set(denseBias(rp.rel, known.table, heads, ids, nq, nk), row * plane);
    });
    staticBias = ctx.keep(tf.tensor4d(data, [rp.idxRows, heads, nq, nk]));
  }
  const groups = headGroups(heads, batch * nq * nk, ctx.denseLogitsLimit);
  // The mask is [B, Nk] (per key) or [B, Nq, Nk] (per pair).
  const maskRows = mask && inShape(ctx.graph, node, 3).length === 3 ? nq : 1;
  const contextShape = outShape(node, 0);
  return (inputs) => {
    const q = tf.mul(arg(inputs, 0), scale);
    const qh = tf.transpose(tf.reshape(q, [batch, nq, heads, d]), [0, 2, 1, 3]);
    const khT = tf.transpose(tf.reshape(arg(inputs, 1), [batch, nk, heads, d]), [0, 2, 3, 1]);
    const vh = tf.transpose(tf.reshape(arg(inputs, 2), [batch, nk, heads, d]), [0, 2, 1, 3]);
    const ids =
      rp !== null && staticBias === null ? deviceIds(arg(inputs, rp.tableInput + 1)) : null;
    const ofGroup = (x: tf.Tensor, group: HeadGroup): tf.Tensor =>
      groups.length === 1 ? x : tf.slice(x, [0, group.first, 0, 0], [-1, group.count, -1, -1]);
    const contexts: tf.Tensor[] = [];
    const kept: tf.Tensor[] = [];
    for (const group of groups) {
      let logits = tf.matMul(ofGroup(qh, group), ofGroup(khT, group));
      if (rp !== null) {
        let bias: tf.Tensor;
        if (staticBias !== null) bias = ofGroup(staticBias, group);
        else {
          const a = tf.reshape(ids!, [rp.idxRows, 1, nq, 1]);
          const k = tf.reshape(ids!, [rp.idxRows, 1, 1, nk]);
          bias = gatherBias(rp, inputs, a, k, heads, 4, group);
        }
        logits = tf.add(logits, bias);
      }
      if (mask) logits = tf.add(logits, tf.reshape(arg(inputs, 3), [batch, 1, maskRows, nk]));
      const p = tf.softmax(logits);
      contexts.push(tf.matMul(p, ofGroup(vh, group)));
      kept.push(rows === nq ? p : tf.slice(p, [0, 0, 0, 0], [batch, group.count, rows, nk]));
    }
    const join = (parts: tf.Tensor[]) => (parts.length === 1 ? parts[0]! : tf.concat(parts, 1));
    const context = tf.transpose(join(contexts), [0, 2, 1, 3]);
    return [tf.reshape(context, contextShape), join(kept)];
  };
}

// ---- block-sparse ------------------------------------------------------------------------------

/**
 * Flat row numbers, [B·H·Mb·Kk], into per-head keys [B·H·(N+1), d] that carry an appended
 * zero row per (b, h): key slot s of the group's block i reads row (b·H + h)·(N+1) +
 * position, slots without a key (padded or excluded) the zero row at position N. (A flat
 * gather on axis 0 rather than tf.gather with batchDims, which tfjs-wasm 4.22 computes
 * wrongly for batchDims = 2.)
 */
function keyGatherIndex(geo: SparseGeometry): tf.Tensor {
  const { batch, heads, blocks, keys, layoutHeads, keyPos, tokens } = geo;
  const per = blocks * keys;
  const data = new Int32Array(batch * heads * per);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const lh = layoutHeads === 1 ? 0 : h;
      const dst = (b * heads + h) * per;
      const rowBase = (b * heads + h) * (tokens + 1);
      for (let i = 0; i < per; i++) {
        const pos = keyPos[lh * per + i]!;
        data[dst + i] = rowBase + (pos < 0 ? tokens : pos);
      }
    }
  }
  return tf.tensor1d(data, "int32");
}

/** What one plan group's local rows hold across runs. */
interface GroupStatics {
  readonly geo: SparseGeometry;
  readonly gatherIndex: tf.Tensor;
  /** Query blocks of the group among the layer's M (null: all, in order). */
  readonly blockIndex: tf.Tensor | null;
  /** -∞ where excluded, [1, H', Mb, 1 | bs, Kk]; added to the per-run bias too. */
  readonly exclusionMask: tf.Tensor | null;
  readonly localBias: tf.Tensor | null;
  /** Positions whose ids the per-run bias needs (padding -> position 0, the CLS id). */
  readonly queryPos: tf.Tensor | null;
  readonly keyPos: tf.Tensor | null;
}

function groupStatics(
  geo: SparseGeometry,
  node: Node<"blockSparseAttention">,
  rp: RelPosInputs | null,
  ctx: LowerContext,
): GroupStatics {
  const { heads, blocks, blockSize, keys, global, local, tokens } = geo;
  const lh = geo.layoutHeads;
  let exclusionMask: tf.Tensor | null = null;
  if (geo.excludes) {
    const rows = geo.rowExcluded === null ? 1 : blockSize;
    const data = new Float32Array(lh * blocks * rows * keys);
    if (geo.rowExcluded !== null) {
      geo.rowExcluded.forEach((x, i) => {
        if (x === 1) data[i] = Number.NEGATIVE_INFINITY;
      });
    } else {
      geo.slotKind.forEach((kind, i) => {
        if (kind === SLOT_EXCLUDED) data[i] = Number.NEGATIVE_INFINITY;
      });
    }
    exclusionMask = ctx.keep(tf.tensor(data, [1, lh, blocks, rows, keys]));
  }
  const known = staticRelPos(rp);
  let localBias: tf.Tensor | null = null;
  if (rp !== null && known !== null) {
    const localPlane = heads * blocks * blockSize * keys;
    if (rp.idxRows * localPlane <= ctx.staticBiasLimit) {
      const ids = allIds(node, rp, known.tokenIdx, tokens);
      const localData = new Float32Array(rp.idxRows * localPlane);
      ids.forEach((row, i) => {
        localData.set(sparseLocalBias(geo, rp.rel, known.table, row), i * localPlane);
      });
      localBias = ctx.keep(
        tf.tensor(localData, [rp.idxRows, heads, blocks, blockSize, keys], "float32"),
      );
    }
  }
  let queryPos: tf.Tensor | null = null;
  let keyPos: tf.Tensor | null = null;
  if (rp !== null && localBias === null) {
    const q = new Int32Array(blocks * blockSize);
    for (let p = 0; p < q.length; p++) {
      const lp = geo.queryBlocks[Math.floor(p / blockSize)]! * blockSize + (p % blockSize);
      q[p] = lp < local ? global + lp : 0;
    }
    queryPos = ctx.keep(tf.tensor1d(q, "int32"));
    keyPos = ctx.keep(
      tf.tensor1d(
        geo.keyPos.map((p) => Math.max(p, 0)),
        "int32",
      ),
    );
  }
  const blockIndex = geo.whole ? null : ctx.keep(tf.tensor1d(geo.queryBlocks, "int32"));
  return {
    geo,
    gatherIndex: ctx.keep(keyGatherIndex(geo)),
    blockIndex,
    exclusionMask,
    localBias,
    queryPos,
    keyPos,
  };
}

/**
 * blockSparseAttention, batched over (b, h, m) per group of its attention plan (a fixed
 * layout is one group of all M blocks):
 *   local queries  q_l [B, H, Mb, bs, d]  (zero-padded to M·bs rows, the group's blocks),
 *   keys, values   k_g, v_g [B, H, Mb, Kk, d]  (one gather per group; slots without a key
 *                  read an appended zero row, so a padded key's logit is exactly 0 as in
 *                  the reference),
 *   logits         q_l k_gᵀ + bias  [B, H, Mb, bs, Kk], where the bias carries the
 *                  relative-position term and -∞ at excluded slots and cleared pairs,
 *   context        softmax(logits) v_g; the groups joined in block order, rows of padded
 *                  queries dropped.
 * Global queries are dense over all N keys (their probabilities are output 1).
 */
export function blockSparseAttentionDevice(
  node: Node<"blockSparseAttention">,
  ctx: LowerContext,
): Step {
  const groups = sparseGroups(node);
  const { batch, tokens, hidden, heads, headDim, global, blockSize, local } = groups[0]!;
  const blocks = groups[0]!.layerBlocks;
  const scale = 1 / Math.sqrt(headDim);
  const padRows = blocks * blockSize - local;
  const rp = relPosInputs(node, node.attrs.relPosBias?.window, 3, ctx);
  const statics = groups.map((geo) => groupStatics(geo, node, rp, ctx));
  const order =
    groups.length === 1 && groups[0]!.whole
      ? null
      : ctx.keep(tf.tensor1d(concatenatedOrder(attentionPlanOf(node)), "int32"));

  // Precomputed global bias when table and token index are known and small enough.
  const known = staticRelPos(rp);
  let globalBias: tf.Tensor | null = null;
  if (rp !== null && known !== null && statics.every((st) => st.localBias !== null)) {
    const ids = allIds(node, rp, known.tokenIdx, tokens);
    const globalPlane = heads * global * tokens;
    const globalData = new Float32Array(rp.idxRows * globalPlane);
    ids.forEach((row, i) => {
      globalData.set(sparseGlobalBias(groups[0]!, rp.rel, known.table, row), i * globalPlane);
    });
    globalBias = ctx.keep(tf.tensor(globalData, [rp.idxRows, heads, global, tokens], "float32"));
  }

  const contextShape = outShape(node, 0);
  return (inputs) => {
    const q = tf.mul(arg(inputs, 0), scale);
    const split = (x: tf.Tensor) =>
      tf.transpose(tf.reshape(x, [batch, tokens, heads, headDim]), [0, 2, 1, 3]);
    const kh = split(arg(inputs, 1));
    const vh = split(arg(inputs, 2));

    // Local rows.
    let ql = tf.slice(q, [0, global, 0], [batch, local, hidden]);
    if (padRows > 0)
      ql = tf.pad(ql, [
        [0, 0],
        [0, padRows],
        [0, 0],
      ]);
    const qAll = tf.transpose(
      tf.reshape(ql, [batch, blocks, blockSize, heads, headDim]),
      [0, 3, 1, 2, 4],
    );
    const zeroRow = tf.zeros([batch, heads, 1, headDim]);
    const kRows = tf.reshape(tf.concat([kh, zeroRow], 2), [batch * heads * (tokens + 1), headDim]);
    const vRows = tf.reshape(tf.concat([vh, zeroRow], 2), [batch * heads * (tokens + 1), headDim]);
    const needsIds =
      rp !== null && (globalBias === null || statics.some((st) => st.localBias === null));
    const ids = needsIds ? deviceIds(arg(inputs, rp!.tableInput + 1)) : null;
    let gBias = globalBias;
    const contexts = statics.map((st) => {
      const { geo } = st;
      const count = geo.blocks;
      const keys = geo.keys;
      const blocksOf = (rows: tf.Tensor) =>
        tf.reshape(tf.gather(rows, st.gatherIndex), [batch, heads, count, keys, headDim]);
      const qb = st.blockIndex === null ? qAll : tf.gather(qAll, st.blockIndex, 2);
      let logits = tf.matMul(qb, blocksOf(kRows), false, true);
      if (rp !== null) {
        let bias = st.localBias;
        if (bias === null) {
          const rows = rp.idxRows;
          const a = tf.reshape(tf.gather(ids!, st.queryPos!, 1), [rows, 1, count, blockSize, 1]);
          const c = tf.reshape(tf.gather(ids!, st.keyPos!, 1), [
            rows,
            geo.layoutHeads,
            count,
            1,
            keys,
          ]);
          bias = gatherBias(rp, inputs, a, c, heads, 5);
          if (st.exclusionMask !== null) bias = tf.add(bias, st.exclusionMask);
        }
        logits = tf.add(logits, bias);
      } else if (st.exclusionMask !== null) {
        logits = tf.add(logits, st.exclusionMask);
      }
      return tf.matMul(tf.softmax(logits), blocksOf(vRows)); // [B, H, Mb, bs, d]
    });
    const joined = order === null ? contexts[0]! : tf.gather(tf.concat(contexts, 2), order, 2);
    const localContext = tf.transpose(joined, [0, 2, 3, 1, 4]);
    let contextLocal = tf.reshape(localContext, [batch, blocks * blockSize, hidden]);
    if (padRows > 0) contextLocal = tf.slice(contextLocal, [0, 0, 0], [batch, local, hidden]);

    // Global rows: dense over all N keys.
    if (rp !== null && gBias === null) {
      const rows = rp.idxRows;
      const ag = tf.reshape(tf.slice(ids!, [0, 0], [rows, global]), [rows, 1, global, 1]);
      const cg = tf.reshape(ids!, [rows, 1, 1, tokens]);
      gBias = gatherBias(rp, inputs, ag, cg, heads, 4);
    }
    const qg = tf.transpose(
      tf.reshape(tf.slice(q, [0, 0, 0], [batch, global, hidden]), [batch, global, heads, headDim]),
      [0, 2, 1, 3],
    );
    let globalLogits = tf.matMul(qg, kh, false, true);
    if (gBias !== null) globalLogits = tf.add(globalLogits, gBias);
    const pg = tf.softmax(globalLogits);
    const contextGlobal = tf.reshape(tf.transpose(tf.matMul(pg, vh), [0, 2, 1, 3]), [
      batch,
      global,
      hidden,
    ]);
    return [tf.reshape(tf.concat([contextGlobal, contextLocal], 1), contextShape), pg];
  };
}
