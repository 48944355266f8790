import {
  type AttentionPlan,
  attentionPlanOf,
  type BlockGroup,
  concatenatedOrder,
  SLOT_EXCLUDED,
} from "../../src/ir/attention-plan.js";
import type { Emitter } from "./emit.js";
import type { LowerContext, Lowering } from "./lower.js";
import { biasInputs, clsRowBias, denseRelPosBias, sparseRelPosBias } from "./relpos.js";

/**
 * Attention lowerings.
 *
 * Notation: B batch, N tokens (G global first, then L local), C = H·d hidden, H heads.
 * Logits are q·kᵀ/√d + additive terms (relative position bias, relpos.ts; masks), softmax
 * over keys, then the probability-weighted sum of values.
 *
 * Two forms, chosen by LowerOptions.contribOps:
 * - contrib (default): the block (or dense) products run in onnxruntime's com.microsoft
 *   MultiHeadAttention kernel, which does QKᵀ, bias, softmax and ·V per (batch, head) while
 *   the block is in cache, and reads q, k, v in [B, S, C] (keys also [B, H, S, d]) layout,
 *   so no head transposes appear in the graph. Measured on the 8-frame SViTT layer (one
 *   thread): the 336 block problems [56, 64]·[64, 225] run at ~65 GFLOP/s in it, against
 *   ~35 GFLOP/s as batched MatMul + Add + Softmax + MatMul. Only onnxruntime runs it.
 * - portable: standard ONNX ops only (batched MatMul, Softmax); any ONNX runtime.
 */

/** [B, N, C] → [B, H, N, d]. */
function splitHeads(e: Emitter, x: string, b: number, n: number, heads: number, d: number): string {
  return e.transpose(e.reshape(x, [b, n, heads, d]), [0, 2, 1, 3]);
}

/** [B, H, N, d] → [B, N, C]. */
function mergeHeads(e: Emitter, x: string, b: number, n: number, c: number): string {
  return e.reshape(e.transpose(x, [0, 2, 1, 3]), [b, n, c]);
}

/** q · kᵀ / √d for q [..., n, d] and k [..., m, d] → [..., n, m] (ORT: one FusedMatMul). */
function scores(e: Emitter, q: string, k: string, rank: number, d: number): string {
  const perm = Array.from({ length: rank }, (_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return e.mul(e.matmul(q, e.transpose(k, perm)), e.float(1 / Math.sqrt(d)));
}

function mha(
  e: Emitter,
  q: string,
  k: string,
  v: string,
  bias: string | null,
  heads: number,
  d: number,
): string {
  const inputs = bias === null ? [q, k, v] : [q, k, v, "", "", bias];
  return e.w.node("MultiHeadAttention", inputs, {
    domain: "com.microsoft",
    attrs: { num_heads: heads, scale: { float: 1 / Math.sqrt(d) } },
    base: `${e.base}/MultiHeadAttention`,
  })[0]!;
}

/**
 * The first R rows of attention over all N keys without head transposes of k and v:
 *   logits[b, h, r, j] = Σ_t q[b, r, h·d + t] · k[b, j, h·d + t]
 * is one MatMul k [B, N, C] × Q̂ [B, C, R·H] with the block-diagonal expansion
 * Q̂[b, c, r·H + h] = q[b, r, c] · [c in head h], and the context
 *   ctx[b, r, h·d + t] = Σ_j p[b, h, r, j] · v[b, j, h·d + t]
 * is the diagonal head blocks of p [B, R·H, N] × v [B, N, C] (an exact masked sum: the
 * other entries are multiplied by 0). Both cost R·H·N·C multiply-adds, H times the
 * minimum, which is small for the few global rows and cheaper than transposing k and v.
 * Returns the probabilities [B, H, R, N] and, when asked, the context [B, R, C].
 */
function leadingRows(
  e: Emitter,
  x: { q: string; k: string; v: string },
  dims: { b: number; n: number; c: number; heads: number; rows: number },
  bias: string | null,
  withContext: boolean,
): { probs: string; context: string | null } {
  const { b, n, c, heads, rows } = dims;
  const d = c / heads;
  const headOf = new Float32Array(c * heads);
  for (let ch = 0; ch < c; ch++) headOf[ch * heads + Math.floor(ch / d)] = 1;
  const qRows = e.transpose(e.slice(x.q, [0], [rows], [1]), [0, 2, 1]);
  const expanded = e.reshape(
    e.mul(e.reshape(qRows, [b, c, rows, 1]), e.w.f32(headOf, [c, 1, heads])),
    [b, c, rows * heads],
  );
  const raw = e.reshape(e.matmul(x.k, expanded), [b, n, rows, heads]);
  let logits = e.mul(e.transpose(raw, [0, 3, 2, 1]), e.float(1 / Math.sqrt(d)));
  if (bias !== null) logits = e.add(logits, bias);
  const probs = e.softmax(logits);
  if (!withContext) return { probs, context: null };
  const byRow = e.reshape(e.transpose(probs, [0, 2, 1, 3]), [b, rows * heads, n]);
  const all = e.reshape(e.matmul(byRow, x.v), [b, rows, heads, heads, d]);
  const eye = new Float32Array(heads * heads);
  for (let h = 0; h < heads; h++) eye[h * heads + h] = 1;
  const diagonal = e.reduceSum(e.mul(all, e.w.f32(eye, [1, 1, heads, heads, 1])), [3], false);
  return { probs, context: e.reshape(diagonal, [b, rows, c]) };
}

// ---- dense attention ----------------------------------------------------------------------

/**
 * attention (dense): softmax(q kᵀ / √d + bias + mask) v per head; the probabilities output
 * is the whole tensor ("all") or its first numCls rows ("cls").
 * contrib, probs "cls", no mask: the context from MultiHeadAttention and the CLS rows
 * from `leadingRows`, so the N×N probabilities are never written out.
 */
export const lowerAttention: Lowering<"attention"> = (node, ctx) => {
  const { e } = ctx;
  const { heads, numCls, probs, mask, relPosBias } = node.attrs;
  const [batch, nq, c] = ctx.inputType(0).shape as [number, number, number];
  const nk = ctx.inputType(1).shape[1]!;
  const d = c / heads;
  const bias =
    relPosBias === null
      ? null
      : denseRelPosBias(ctx, biasInputs(ctx, relPosBias, heads, mask ? 4 : 3), nq);
  if (ctx.options.contribOps && probs === "cls" && !mask) {
    // Relative position bias implies numCls = 1 (shape rule), so its CLS row is clsRow.
    const [q, k, v] = [ctx.input(0), ctx.input(1), ctx.input(2)];
    const context = mha(e, q, k, v, bias?.full ?? null, heads, d);
    const dims = { b: batch, n: nk, c, heads, rows: numCls };
    const rows = leadingRows(e, { q, k, v }, dims, bias?.clsRow ?? null, false);
    return [context, rows.probs];
  }
  const q = splitHeads(e, ctx.input(0), batch, nq, heads, d);
  const kt = e.transpose(e.reshape(ctx.input(1), [batch, nk, heads, d]), [0, 2, 3, 1]);
  const v = splitHeads(e, ctx.input(2), batch, nk, heads, d);
  let logits = e.mul(e.matmul(q, kt), e.float(1 / Math.sqrt(d)));
  if (bias !== null) logits = e.add(logits, bias.full);
  if (mask) {
    // [B, Nk] per key or [B, Nq, Nk] per pair, broadcast over heads (and queries).
    const perPair = ctx.inputType(3).shape.length === 3;
    logits = e.add(logits, e.reshape(ctx.input(3), [batch, 1, perPair ? nq : 1, nk]));
  }
  const p = e.softmax(logits);
  const context = mergeHeads(e, e.matmul(p, v), batch, nq, c);
  const probsOut = probs === "all" ? p : e.slice(p, [0], [numCls], [2]);
  return [context, probsOut];
};

// ---- block-sparse attention -----------------------------------------------------------------

/**
 * One block group of a node's attention plan (src/ir/attention-plan.ts) as the lowering
 * needs it: Mb query blocks batched as one problem of K key slots each.
 */
export interface SparseGroup {
  readonly batch: number;
  readonly n: number;
  readonly heads: number;
  readonly g: number;
  readonly bs: number;
  readonly local: number;
  /** The padded sequence length G + M·bs. */
  readonly np: number;
  /** 1 for a layout shared by the heads, else H. */
  readonly layoutHeads: number;
  readonly group: BlockGroup;
  /** Whether the group is every query block in order (the whole layer at once). */
  readonly whole: boolean;
  /** Whether some key slot or (query, key) pair is left out of the softmax (-∞). */
  readonly excludes: boolean;
}

/** The plan's groups, each with what the lowering reads. */
function sparseGroups(plan: AttentionPlan): SparseGroup[] {
  return plan.groups.map((group) => ({
    batch: plan.batch,
    n: plan.tokens,
    heads: plan.heads,
    g: plan.globalTokens,
    bs: plan.blockSize,
    local: plan.localTokens,
    np: plan.paddedTokens,
    layoutHeads: plan.layoutHeads,
    group,
    whole: plan.singleGroup,
    excludes: group.anyExcluded || group.rowExcluded !== null,
  }));
}

/**
 * -∞ where query row r of a group's block does not read key slot s, 0 elsewhere, as
 * [Hl, Mb, bs, K] when the group has partial blocks, else [Hl, Mb, 1, K] (a slot-level mask).
 */
function exclusionMask(s: SparseGroup): { data: Float32Array; rows: number } {
  const { group, bs, layoutHeads: hl } = s;
  const { keys } = group;
  const count = group.blocks.length;
  if (group.rowExcluded !== null) {
    const data = new Float32Array(group.rowExcluded.length);
    group.rowExcluded.forEach((x, i) => {
      if (x === 1) data[i] = Number.NEGATIVE_INFINITY;
    });
    return { data, rows: bs };
  }
  const data = new Float32Array(hl * count * keys);
  group.slotKind.forEach((kind, i) => {
    if (kind === SLOT_EXCLUDED) data[i] = Number.NEGATIVE_INFINITY;
  });
  return { data, rows: 1 };
}

/**
 * blockSparseAttention, lowered from the node's attention plan. With Lp = M·bs local tokens
 * after padding and Np = G + Lp:
 *
 * Global rows: dense over the N real keys (`leadingRows`, or head-split MatMuls in the
 * portable form); their probabilities are the node's second output [B, H, G, N].
 *
 * Local rows, one plan group at a time (a fixed layout is one group of all M blocks): the
 * Mb query blocks of a group read K = G + W·bs key slots each at the constant positions
 * keyPos (the global tokens, then the rows' blocks; shorter rows filled with excluded
 * slots), from k and v zero-padded to Np tokens by one Gather per group. Padded keys are
 * those zero vectors: in mode "reference" their logit is 0 + bias(token → CLS) as in the
 * authors' code; excluded slots (masked padding, fill) and the pairs partial blocks' masks
 * clear get -∞. Rows of padded queries are computed and sliced off.
 * - contrib: queries [B·Mb, bs, C]; keys and values gathered straight into
 *   [B·Mb, H, K, d] (row keyPos·H + h of k viewed as [B, Np·H, d]); bias [B·Mb, H, bs, K];
 *   one MultiHeadAttention per group gives the context [B·Mb, bs, C].
 * - portable: heads split to [B, H, Np, d]; keys gathered to [B, H, Mb, K, d]; two batched
 *   MatMuls over (B, H, Mb): [bs, d]·[d, K] → softmax → [bs, K]·[K, d].
 * Several groups' contexts are joined along the block axis and put back in block order by
 * one Gather.
 */
export const lowerBlockSparseAttention: Lowering<"blockSparseAttention"> = (node, ctx) => {
  const plan = attentionPlanOf(node);
  const { relPosBias } = node.attrs;
  const contrib = ctx.options.contribOps;
  const groups = sparseGroups(plan);
  const src = relPosBias === null ? null : biasInputs(ctx, relPosBias, plan.heads, 3);
  const globalBias = src === null ? null : clsRowBias(ctx, src, plan.tokens);
  const localBias = (s: SparseGroup): string | null =>
    src === null ? null : sparseRelPosBias(ctx, src, s, contrib);
  return contrib
    ? sparseContrib(ctx, plan, groups, globalBias, localBias)
    : sparsePortable(ctx, plan, groups, globalBias, localBias);
};

function sparseContrib(
  ctx: LowerContext,
  plan: AttentionPlan,
  groups: readonly SparseGroup[],
  globalBias: string | null,
  localBias: (s: SparseGroup) => string | null,
): string[] {
  const { e } = ctx;
  const { batch, tokens: n, hidden: c, heads, headDim: d, globalTokens: g, blockSize: bs } = plan;
  const { queryBlocks: blocks, paddedLocal: lp, paddedTokens: np, localTokens: local } = plan;
  const padded = lp - local;
  const [q, k, v] = [ctx.input(0), ctx.input(1), ctx.input(2)];
  const global = leadingRows(e, { q, k, v }, { b: batch, n, c, heads, rows: g }, globalBias, true);

  const qPadded = e.padEnd(e.slice(q, [g], [n], [1]), 3, 1, padded);
  const kRows = e.reshape(e.padEnd(k, 3, 1, padded), [batch, np * heads, d]);
  const vRows = e.reshape(e.padEnd(v, 3, 1, padded), [batch, np * heads, d]);
  const contexts = groups.map((s) => {
    const { group } = s;
    const count = group.blocks.length;
    const { keys } = group;
    const qLocal = s.whole
      ? e.reshape(qPadded, [batch * blocks, bs, c])
      : e.reshape(
          e.gather(e.reshape(qPadded, [batch, blocks, bs, c]), e.w.i32(group.blocks, [count]), 1),
          [batch * count, bs, c],
        );
    // Row keyPos·H + h of [B, Np·H, d] is head h of token keyPos: gathered as [B, Mb, H, K, d].
    const rows = new Int32Array(count * heads * keys);
    for (let i = 0; i < count; i++) {
      for (let h = 0; h < heads; h++) {
        const hl = s.layoutHeads === 1 ? 0 : h;
        for (let j = 0; j < keys; j++) {
          rows[(i * heads + h) * keys + j] = group.keyPos[(hl * count + i) * keys + j]! * heads + h;
        }
      }
    }
    const rowIdx = e.w.i32(rows, [count, heads, keys]);
    const gatherBlocks = (x: string): string =>
      e.reshape(e.gather(x, rowIdx, 1), [batch * count, heads, keys, d]);
    let bias = localBias(s); // [B·Mb, H, bs, K]
    if (bias === null && s.excludes) {
      // -∞ at excluded slots (and cleared pairs), as a constant [B·Mb, Hl, bs, K].
      const hl = s.layoutHeads;
      const { data, rows: maskRows } = exclusionMask(s);
      const mask = new Float32Array(batch * count * hl * bs * keys);
      for (let b = 0; b < batch; b++) {
        for (let i = 0; i < count; i++) {
          for (let h = 0; h < hl; h++) {
            for (let r = 0; r < bs; r++) {
              const from = ((h * count + i) * maskRows + (maskRows === 1 ? 0 : r)) * keys;
              const to = (((b * count + i) * hl + h) * bs + r) * keys;
              mask.set(data.subarray(from, from + keys), to);
            }
          }
        }
      }
      bias = e.w.f32(mask, [batch * count, hl, bs, keys]);
    }
    const attended = mha(e, qLocal, gatherBlocks(kRows), gatherBlocks(vRows), bias, heads, d);
    return e.reshape(attended, [batch, count, bs, c]);
  });
  let localContext: string;
  if (groups.length === 1 && groups[0]!.whole) {
    localContext = e.reshape(contexts[0]!, [batch, lp, c]);
  } else {
    const joined = e.concat(contexts, 1);
    const ordered = e.gather(joined, e.w.i32(concatenatedOrder(plan), [blocks]), 1);
    localContext = e.reshape(ordered, [batch, lp, c]);
  }
  if (padded > 0) localContext = e.slice(localContext, [0], [local], [1]);
  return [e.concat([global.context!, localContext], 1), global.probs];
}

function sparsePortable(
  ctx: LowerContext,
  plan: AttentionPlan,
  groups: readonly SparseGroup[],
  globalBias: string | null,
  localBias: (s: SparseGroup) => string | null,
): string[] {
  const { e } = ctx;
  const { batch, tokens: n, hidden: c, heads, headDim: d, globalTokens: g, blockSize: bs } = plan;
  const { queryBlocks: blocks, paddedLocal: lp, paddedTokens: np, localTokens: local } = plan;
  const padded = lp - local;
  const q = splitHeads(e, ctx.input(0), batch, n, heads, d);
  const k = splitHeads(e, ctx.input(1), batch, n, heads, d);
  const v = splitHeads(e, ctx.input(2), batch, n, heads, d);

  let globalScores = scores(e, e.slice(q, [0], [g], [2]), k, 4, d);
  if (globalBias !== null) globalScores = e.add(globalScores, globalBias);
  const globalProbs = e.softmax(globalScores);
  const globalContext = e.matmul(globalProbs, v);

  const qBlocks = e.reshape(e.slice(e.padEnd(q, 4, 2, padded), [g], [np], [2]), [
    batch,
    heads,
    blocks,
    bs,
    d,
  ]);
  const kFull = e.padEnd(k, 4, 2, padded);
  const vFull = e.padEnd(v, 4, 2, padded);
  const contexts = groups.map((s) => {
    const { group } = s;
    const count = group.blocks.length;
    const { keys } = group;
    const qLocal = s.whole ? qBlocks : e.gather(qBlocks, e.w.i32(group.blocks, [count]), 2);
    const gatherRows = (full: string): string => {
      if (s.layoutHeads === 1) return e.gather(full, e.w.i32(group.keyPos, [count, keys]), 2);
      // Per-head rows: offset h·Np into the heads-flattened [B, H·Np, d].
      const offsets = group.keyPos.map((pos, i) => pos + Math.floor(i / (count * keys)) * np);
      return e.gather(
        e.reshape(full, [batch, heads * np, d]),
        e.w.i32(offsets, [heads, count, keys]),
        1,
      );
    };
    let localScores = scores(e, qLocal, gatherRows(kFull), 5, d);
    const bias = localBias(s);
    if (bias !== null) {
      localScores = e.add(localScores, bias); // [Bi, H, Mb, bs, K]
    } else if (s.excludes) {
      const { data, rows } = exclusionMask(s);
      localScores = e.add(localScores, e.w.f32(data, [1, s.layoutHeads, count, rows, keys]));
    }
    const localProbs = e.softmax(localScores);
    return e.matmul(localProbs, gatherRows(vFull)); // [B, H, Mb, bs, d]
  });
  let joined: string;
  if (groups.length === 1 && groups[0]!.whole) {
    joined = contexts[0]!;
  } else {
    joined = e.gather(e.concat(contexts, 2), e.w.i32(concatenatedOrder(plan), [blocks]), 2);
  }
  let localContext = e.reshape(joined, [batch, heads, lp, d]);
  if (padded > 0) localContext = e.slice(localContext, [0], [local], [2]);
  return [mergeHeads(e, e.concat([globalContext, localContext], 2), batch, n, c), globalProbs];
}
