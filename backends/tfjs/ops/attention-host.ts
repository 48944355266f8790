import * as tf from "@tensorflow/tfjs-core";
import type { Node } from "../../../src/ir/graph.js";
import type { LowerContext, Step } from "../types.js";
import { arg, inShape, outShape, readF32, readI32 } from "../util.js";
import {
  allIds,
  denseBias,
  denseIndex,
  headBias,
  relPosInputs,
  type SparseGeometry,
  sparseGlobalBias,
  sparseGroups,
  sparseLocalBias,
  staticRelPos,
} from "./attention-common.js";

/**
 * Attention for tfjs-wasm ("host" strategy), built around what is fast there (measured in
 * Node 20, SIMD, one thread):
 * - a 2-D matMul [m, k] x [k, n] without transposes runs on XNNPACK's GEMM (~25-35
 *   GFLOP/s; ~50 µs more when the right operand is new and must be packed); batched matMul
 *   and transposeB take a scalar loop (~2 GFLOP/s);
 * - tf.gather costs ~35 ns per element and tf.slice copies its whole input, so neither can
 *   cut a layer into blocks;
 * - a read-back is one memcpy (into a reused array: see Scratch), and uploading a tensor
 *   is a malloc in the wasm heap and a memcpy.
 * So every operand of every (batch, head[, block]) product is assembled in JS from three
 * read-backs (q, k, v after one device transpose each into head-major layouts) with
 * contiguous copies, uploaded, and multiplied as its own 2-D matMul. Softmax, bias and
 * masks run once over all blocks of a layer (one concat, one add, one softmax). The
 * relative-position bias is computed in JS from the token index (or precomputed at compile
 * time when table and token index are both known).
 *
 * Measured alternatives for one 8-frame layer's 336 block products q·kᵀ (12 heads x 28
 * blocks of [56, 64] x [64, 225]), best of 8 interleaved runs on a shared 2-core machine:
 * one batched matMul over (head, block) 224 ms (2.4 GFLOP/s); 336 2-D matMuls on fresh
 * operands 32 ms (17 GFLOP/s; the most sensitive to CPU contention, median 97 ms under
 * load); a depthwise conv2d with channel multiplier (XNNPACK's grouped GEMM, one op)
 * 54 ms (10 GFLOP/s). A few large 2-D products would need block-diagonal zero padding that
 * multiplies the work by the number of blocks grouped together (M = 28 for one product per
 * head: dense cost).
 *
 * Logits are formed from pre-scaled queries, (q/√d)·k (one pass over [N, C]).
 */

// ---- dense -------------------------------------------------------------------------------------

/**
 * attention, per (b, h): logits = (q/√d) kᵀ + bias_h + mask_b as a 2-D matMul
 * [Nq, d] x [d, Nk], p = softmax, context = p v as [Nq, Nk] x [Nk, d]. Heads are joined
 * with one concat and one transpose. The first R probability rows are taken with a gather
 * (a slice would copy all of p).
 */
export function denseAttentionHost(node: Node<"attention">, ctx: LowerContext): Step {
  const { heads, numCls, probs, mask, relPosBias } = node.attrs;
  const [batch, nq, c] = inShape(ctx.graph, node, 0) as [number, number, number];
  const nk = inShape(ctx.graph, node, 1)[1]!;
  const d = c / heads;
  const scale = 1 / Math.sqrt(d);
  const rows = probs === "cls" ? numCls : nq;
  const rp = relPosInputs(node, relPosBias?.window, mask ? 4 : 3, ctx);
  const plane = nq * nk;
  // Precomputed when table and token index are known: the bias itself if it is small
  // enough (one resident [Nq, Nk] tensor per token-index row and head), else the table
  // rows (the per-run work is then one lookup pass per head).
  let staticBias: tf.Tensor[][] | null = null;
  let staticIndex: Int32Array[] | null = null;
  if (rp !== null && rp.tokenIdx !== null) {
    const ids = allIds(node, rp, rp.tokenIdx, nq);
    if (rp.table !== null && rp.idxRows * heads * plane <= ctx.staticBiasLimit) {
      const table = rp.table;
      staticBias = ids.map((row) => {
        const data = denseBias(rp.rel, table, heads, row, nq, nk);
        return Array.from({ length: heads }, (_, h) =>
          ctx.keep(tf.tensor2d(data.subarray(h * plane, (h + 1) * plane), [nq, nk])),
        );
      });
    } else if (rp.idxRows * plane <= ctx.staticBiasLimit) {
      staticIndex = ids.map((row) => denseIndex(rp.rel, row, nq, nk));
    }
  }
  const firstRows = rows < nq ? ctx.keep(tf.range(0, rows, 1, "int32")) : null;
  const maskRows = mask && inShape(ctx.graph, node, 3).length === 3 ? nq : 1;
  const contextShape = outShape(node, 0);
  const { scratch } = ctx;
  return (inputs) => {
    const headMajor = (x: tf.Tensor, n: number, perm: number[], role: string) =>
      readF32(tf.transpose(tf.reshape(x, [batch, n, heads, d]), perm), scratch, role);
    const qh = headMajor(tf.mul(arg(inputs, 0), scale), nq, [0, 2, 1, 3], "q"); // [B, H, Nq, d]
    const khT = headMajor(arg(inputs, 1), nk, [0, 2, 3, 1], "k"); // [B, H, d, Nk]
    const vh = headMajor(arg(inputs, 2), nk, [0, 2, 1, 3], "v"); // [B, H, Nk, d]
    // Per-run bias: table rows per token-index row, then one head plane at a time.
    let table: Float32Array | null = null;
    let index: Int32Array[] | null = null;
    if (rp !== null && staticBias === null) {
      table = rp.table ?? readF32(arg(inputs, rp.tableInput));
      const tokenIdx = rp.tokenIdx ?? readI32(arg(inputs, rp.tableInput + 1));
      index =
        staticIndex ??
        allIds(node, rp, tokenIdx, nq).map((ids, row) =>
          denseIndex(rp.rel, ids, nq, nk, scratch.i32(`index${row}`, plane)),
        );
    }
    const contexts: tf.Tensor[] = [];
    const kept: tf.Tensor[] = [];
    for (let b = 0; b < batch; b++) {
      // [1, Nk] for a per-key mask [B, Nk], [Nq, Nk] for a per-pair one [B, Nq, Nk].
      const maskRow = !mask
        ? null
        : maskRows === 1
          ? batch === 1
            ? tf.reshape(arg(inputs, 3), [1, nk])
            : tf.slice(arg(inputs, 3), [b, 0], [1, nk])
          : tf.reshape(tf.slice(arg(inputs, 3), [b, 0, 0], [1, nq, nk]), [nq, nk]);
      const row = rp === null || rp.idxRows === 1 ? 0 : b;
      for (let h = 0; h < heads; h++) {
        const i = b * heads + h;
        const q = tf.tensor2d(qh.subarray(i * nq * d, (i + 1) * nq * d), [nq, d]);
        const kT = tf.tensor2d(khT.subarray(i * d * nk, (i + 1) * d * nk), [d, nk]);
        const v = tf.tensor2d(vh.subarray(i * nk * d, (i + 1) * nk * d), [nk, d]);
        let logits = tf.matMul(q, kT);
        if (staticBias !== null) logits = tf.add(logits, staticBias[row]![h]!);
        else if (index !== null) {
          const bias = scratch.f32("bias", plane);
          headBias(index[row]!, table, heads, h, bias);
          logits = tf.add(logits, tf.tensor2d(bias, [nq, nk]));
        }
        if (maskRow !== null) logits = tf.add(logits, maskRow);
        const p = tf.softmax(logits);
        contexts.push(tf.matMul(p, v));
        kept.push(firstRows === null ? p : tf.gather(p, firstRows));
      }
    }
    const joined = tf.reshape(tf.concat(contexts, 0), [batch, heads, nq, d]);
    const context = tf.reshape(tf.transpose(joined, [0, 2, 1, 3]), contextShape);
    return [context, tf.reshape(tf.concat(kept, 0), [batch, heads, rows, nk])];
  };
}

// ---- block-sparse ------------------------------------------------------------------------------

/**
 * Fills the operands of every (b, h, m) block product of one plan group from head-major
 * read-backs qT [B, H, d, N] (scaled queries, transposed) and kh, vh [B, H, N, d]:
 *   qT[i] [d, bs]   the block's queries, transposed; columns past L zero;
 *   k[i]  [Kk, d]   its keys: the G global keys, then the row's key blocks in order;
 *   v[i]  [Kk, d]   its values in the same key order;
 * with i = (b·H + h)·Mb + m for the group's m-th block, and slots without a key (padded or
 * excluded) zero (so a padded key's logit is exactly 0, as in the reference). Every element
 * of the three arrays (up to the sizes used) is written.
 */
function fillBlocks(
  geo: SparseGeometry,
  qT: Float32Array,
  kh: Float32Array,
  vh: Float32Array,
  qBlocks: Float32Array,
  kBlocks: Float32Array,
  vBlocks: Float32Array,
): void {
  const {
    batch,
    heads,
    headDim: d,
    global,
    blockSize: bs,
    blocks,
    keys,
    tokens,
    layoutHeads,
    keyPos,
  } = geo;
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const bh = b * heads + h;
      const lh = layoutHeads === 1 ? 0 : h;
      const rowsBase = bh * tokens * d;
      const qBase = bh * d * tokens;
      for (let m = 0; m < blocks; m++) {
        const i = bh * blocks + m;
        // Queries: d runs of (up to) bs positions of query block queryBlocks[m].
        const first = global + geo.queryBlocks[m]! * bs;
        const count = Math.max(0, Math.min(bs, tokens - first));
        const qDst = i * d * bs;
        for (let t = 0; t < d; t++) {
          const src = qBase + t * tokens + first;
          qBlocks.set(qT.subarray(src, src + count), qDst + t * bs);
          if (count < bs) qBlocks.fill(0, qDst + t * bs + count, qDst + (t + 1) * bs);
        }
        // Keys and values: runs of consecutive positions (a block's slots are consecutive).
        const slots = keyPos.subarray((lh * blocks + m) * keys, (lh * blocks + m + 1) * keys);
        const kvDst = i * keys * d;
        let s = 0;
        while (s < keys) {
          const pos = slots[s]!;
          let run = 1;
          if (pos >= 0) {
            while (s + run < keys && slots[s + run] === pos + run) run++;
            const src = rowsBase + pos * d;
            kBlocks.set(kh.subarray(src, src + run * d), kvDst + s * d);
            vBlocks.set(vh.subarray(src, src + run * d), kvDst + s * d);
          } else {
            while (s + run < keys && slots[s + run]! < 0) run++;
            kBlocks.fill(0, kvDst + s * d, kvDst + (s + run) * d);
            vBlocks.fill(0, kvDst + s * d, kvDst + (s + run) * d);
          }
          s += run;
        }
      }
    }
  }
}

/** [G·H, N] bias rows ordered (g, h) from [H, G, N]. */
function globalRowsByToken(
  data: Float32Array,
  heads: number,
  global: number,
  n: number,
): Float32Array {
  if (global === 1) return data;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let g = 0; g < global; g++) {
      out.set(data.subarray((h * global + g) * n, (h * global + g + 1) * n), (g * heads + h) * n);
    }
  }
  return out;
}

/** Static terms of one group's local rows: the bias, or the -∞ mask alone. */
interface GroupStatics {
  readonly geo: SparseGeometry;
  readonly localBias: tf.Tensor | null;
  readonly exclusionMask: tf.Tensor | null;
}

/**
 * blockSparseAttention, per group of its attention plan (a fixed layout is one group):
 * - local rows, per (b, h, m): logitsᵀ_i = k_i qᵀ_i (2-D matMul [Kk, d] x [d, bs]: the
 *   small queries block is the right operand, which XNNPACK must pack anew for every
 *   product, and this was measurably faster than q_i kᵀ_i with the [d, Kk] keys packed);
 *   a group's blocks concatenated and transposed once to [B·H·Mb·bs, Kk], plus the bias
 *   (relative position, and -∞ at excluded slots and pairs), one softmax, read back, and per
 *   block context_i = p_i v_i ([bs, Kk] x [Kk, d]); contexts joined in block order by one
 *   concat and one transpose;
 * - global rows, dense over all N keys, for all heads in two 2-D matMuls per batch item:
 *   logitsᵀ = k [N, C] x Q̂ [C, G·H] with Q̂[c, g·H + h] = q_g[c] when channel c belongs to
 *   head h, else 0 (so column (g, h) holds exactly the head-h dot products), then
 *   r = p [G·H, N] x v [N, C] and context_g[h·d + t] = r[(g, h), h·d + t] (a head mask and a
 *   sum over heads). The zero entries only add exact zeros.
 */
export function blockSparseAttentionHost(
  node: Node<"blockSparseAttention">,
  ctx: LowerContext,
): Step {
  const groups = sparseGroups(node);
  const { batch, tokens, hidden, heads, headDim: d, global, blockSize: bs, local } = groups[0]!;
  const layerBlocks = groups[0]!.layerBlocks;
  const scale = 1 / Math.sqrt(d);
  const padRows = layerBlocks * bs - local;
  const rp = relPosInputs(node, node.attrs.relPosBias?.window, 3, ctx);
  const localPlane = (geo: SparseGeometry) => heads * geo.blocks * bs * geo.keys;

  // Static terms: the bias (relative position and exclusions), or the -∞ mask alone.
  const known = staticRelPos(rp);
  const precompute =
    rp !== null &&
    known !== null &&
    rp.idxRows * groups.reduce((sum, geo) => sum + localPlane(geo), 0) <= ctx.staticBiasLimit;
  const ids = precompute ? allIds(node, rp!, known!.tokenIdx, tokens) : null;
  const statics: GroupStatics[] = groups.map((geo) => {
    let localBias: tf.Tensor | null = null;
    let exclusionMask: tf.Tensor | null = null;
    if (ids !== null) {
      const data = new Float32Array(rp!.idxRows * localPlane(geo));
      ids.forEach((row, i) => {
        data.set(sparseLocalBias(geo, rp!.rel, known!.table, row), i * localPlane(geo));
      });
      localBias = ctx.keep(tf.tensor3d(data, [rp!.idxRows, heads * geo.blocks * bs, geo.keys]));
    } else if (rp === null && geo.excludes) {
      exclusionMask = ctx.keep(
        tf.tensor3d(sparseLocalBias(geo, null, null, null), [1, heads * geo.blocks * bs, geo.keys]),
      );
    }
    return { geo, localBias, exclusionMask };
  });
  const globalBias =
    ids === null
      ? null
      : ids.map((row) =>
          ctx.keep(
            tf.tensor2d(
              globalRowsByToken(
                sparseGlobalBias(groups[0]!, rp!.rel, known!.table, row),
                heads,
                global,
                tokens,
              ),
              [global * heads, tokens],
            ),
          ),
        );
  // 1 where channel c belongs to head h: [1, H, C].
  const headMask = new Float32Array(heads * hidden);
  for (let h = 0; h < heads; h++) headMask.fill(1, h * hidden + h * d, h * hidden + (h + 1) * d);
  const headMaskT = ctx.keep(tf.tensor3d(headMask, [1, heads, hidden]));
  const contextShape = outShape(node, 0);

  const { scratch } = ctx;
  return (inputs) => {
    const headMajor = (x: tf.Tensor, perm: number[], role: string) =>
      readF32(tf.transpose(tf.reshape(x, [batch, tokens, heads, d]), perm), scratch, role);
    const qT = headMajor(tf.mul(arg(inputs, 0), scale), [0, 2, 3, 1], "q"); // [B, H, d, N]
    const kh = headMajor(arg(inputs, 1), [0, 2, 1, 3], "k"); // [B, H, N, d]
    const vh = headMajor(arg(inputs, 2), [0, 2, 1, 3], "v"); // [B, H, N, d]

    // Per-run bias when it could not be precomputed.
    let runIds: Int32Array[] | null = null;
    let table: Float32Array | null = null;
    if (rp !== null && ids === null) {
      table = rp.table ?? readF32(arg(inputs, rp.tableInput));
      const tokenIdx = rp.tokenIdx ?? readI32(arg(inputs, rp.tableInput + 1));
      runIds = allIds(node, rp, tokenIdx, tokens);
    }

    // Local rows, a group at a time; each block's context kept at its (b, h, m).
    const blockContexts: tf.Tensor[] = new Array(batch * heads * layerBlocks);
    statics.forEach(({ geo, localBias, exclusionMask }, gi) => {
      const { blocks, keys } = geo;
      const count = batch * heads * blocks;
      const qBlocks = scratch.f32(`qBlocks${gi}`, count * d * bs);
      const kBlocks = scratch.f32(`kBlocks${gi}`, count * keys * d);
      const vBlocks = scratch.f32(`vBlocks${gi}`, count * keys * d);
      fillBlocks(geo, qT, kh, vh, qBlocks, kBlocks, vBlocks);
      let bias = localBias ?? exclusionMask;
      if (runIds !== null) {
        const plane = localPlane(geo);
        const data = scratch.f32(`localBias${gi}`, rp!.idxRows * plane);
        const index = scratch.i32(`localIndex${gi}`, blocks * bs * keys);
        runIds.forEach((row, i) => {
          sparseLocalBias(
            geo,
            rp!.rel,
            table,
            row,
            data.subarray(i * plane, (i + 1) * plane),
            index,
          );
        });
        bias = tf.tensor3d(data, [rp!.idxRows, heads * blocks * bs, keys]);
      }
      const blockLogits: tf.Tensor[] = [];
      for (let i = 0; i < count; i++) {
        const ki = tf.tensor2d(kBlocks.subarray(i * keys * d, (i + 1) * keys * d), [keys, d]);
        const qi = tf.tensor2d(qBlocks.subarray(i * d * bs, (i + 1) * d * bs), [d, bs]);
        blockLogits.push(tf.matMul(ki, qi));
      }
      // [B·H·Mb, Kk, bs] -> [B, H·Mb·bs, Kk]: rows (b, h, m, r), one device transpose.
      const stacked = tf.reshape(tf.concat(blockLogits, 0), [count, keys, bs]);
      let logits = tf.reshape(tf.transpose(stacked, [0, 2, 1]), [batch, heads * blocks * bs, keys]);
      if (bias !== null) logits = tf.add(logits, bias);
      const p = readF32(tf.softmax(logits), scratch, `p${gi}`);
      for (let i = 0; i < count; i++) {
        const pi = tf.tensor2d(p.subarray(i * bs * keys, (i + 1) * bs * keys), [bs, keys]);
        const vi = tf.tensor2d(vBlocks.subarray(i * keys * d, (i + 1) * keys * d), [keys, d]);
        const bh = Math.floor(i / blocks);
        blockContexts[bh * layerBlocks + geo.queryBlocks[i % blocks]!] = tf.matMul(pi, vi);
      }
    });
    const joined = tf.reshape(tf.concat(blockContexts, 0), [batch, heads, layerBlocks * bs, d]);
    let contextLocal = tf.reshape(tf.transpose(joined, [0, 2, 1, 3]), [
      batch,
      layerBlocks * bs,
      hidden,
    ]);
    if (padRows > 0) contextLocal = tf.slice(contextLocal, [0, 0, 0], [batch, local, hidden]);

    // Global rows.
    const gBias =
      globalBias ??
      (runIds === null
        ? null
        : runIds.map((row) =>
            tf.tensor2d(
              globalRowsByToken(
                sparseGlobalBias(groups[0]!, rp!.rel, table!, row),
                heads,
                global,
                tokens,
              ),
              [global * heads, tokens],
            ),
          ));
    const contextsG: tf.Tensor[] = [];
    const probsG: tf.Tensor[] = [];
    const gh = global * heads;
    for (let b = 0; b < batch; b++) {
      const qHat = new Float32Array(hidden * gh);
      for (let h = 0; h < heads; h++) {
        for (let g = 0; g < global; g++) {
          const src = (b * heads + h) * d * tokens + g;
          for (let t = 0; t < d; t++)
            qHat[(h * d + t) * gh + g * heads + h] = qT[src + t * tokens]!;
        }
      }
      const rowsOf = (x: tf.Tensor) =>
        batch === 1
          ? tf.reshape(x, [tokens, hidden])
          : tf.reshape(tf.slice(x, [b, 0, 0], [1, tokens, hidden]), [tokens, hidden]);
      const kb = rowsOf(arg(inputs, 1));
      let lg = tf.transpose(tf.matMul(kb, tf.tensor2d(qHat, [hidden, gh]))); // [G·H, N]
      if (gBias !== null) lg = tf.add(lg, gBias[rp !== null && rp.idxRows > 1 ? b : 0]!);
      const pg = tf.softmax(lg);
      const r = tf.reshape(tf.matMul(pg, rowsOf(arg(inputs, 2))), [global, heads, hidden]);
      contextsG.push(tf.reshape(tf.sum(tf.mul(r, headMaskT), 1), [1, global, hidden]));
      const byHead =
        global === 1
          ? tf.reshape(pg, [1, heads, 1, tokens])
          : tf.reshape(tf.transpose(tf.reshape(pg, [global, heads, tokens]), [1, 0, 2]), [
              1,
              heads,
              global,
              tokens,
            ]);
      probsG.push(byHead);
    }
    const context = tf.concat([tf.concat(contextsG, 0), contextLocal], 1);
    return [tf.reshape(context, contextShape), tf.concat(probsG, 0)];
  };
}
