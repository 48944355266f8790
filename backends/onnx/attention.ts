import { layoutBlock } from "../../src/ir/pattern.js";
import type { Emitter } from "./emit.js";
import type { LowerContext, Lowering } from "./lower.js";
import { biasInputs, denseRelPosBias, sparseRelPosBias } from "./relpos.js";

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
  if (mask) logits = e.add(logits, e.reshape(ctx.input(3), [batch, 1, 1, nk]));
  const p = e.softmax(logits);
  const context = mergeHeads(e, e.matmul(p, v), batch, nq, c);
  const probsOut = probs === "all" ? p : e.slice(p, [0], [numCls], [2]);
  return [context, probsOut];
};

// ---- block-sparse attention -----------------------------------------------------------------

/** Static geometry of one block-sparse node. */
export interface SparseGeometry {
  readonly batch: number;
  readonly n: number;
  readonly c: number;
  readonly heads: number;
  readonly d: number;
  readonly g: number;
  readonly local: number;
  readonly bs: number;
  readonly blocks: number;
  readonly keys: number;
  /** Local tokens after padding, M·bs, and the padded sequence length G + M·bs. */
  readonly lp: number;
  readonly np: number;
  /** 1 for a layout shared by the heads, else H. */
  readonly layoutHeads: number;
  /** Sequence positions of the keys of each local query block, [Hl, M, K]. */
  readonly keyPos: Int32Array;
  /** Whether each of those keys is padding (position ≥ G + L). */
  readonly isPad: Uint8Array;
  readonly anyPad: boolean;
}

/**
 * keyPos[hl, m] = [0 .. G-1, G + kb_0·bs .. G + kb_0·bs + bs-1, ..., kb_{W-1} ...] with
 * kb_j = layout row m of head hl: the global keys, then the blocks of the row in order.
 */
function sparseGeometry(
  node: Parameters<Lowering<"blockSparseAttention">>[0],
  ctx: LowerContext,
): SparseGeometry {
  const { heads, pattern } = node.attrs;
  const [batch, n, c] = ctx.inputType(0).shape as [number, number, number];
  const g = pattern.globalTokens;
  const bs = pattern.blockSize;
  const { layout } = pattern;
  const local = n - g;
  const blocks = layout.queryBlocks;
  const width = layout.blocksPerRow;
  const keys = g + width * bs;
  const layoutHeads = layout.heads === 1 ? 1 : heads;
  const keyPos = new Int32Array(layoutHeads * blocks * keys);
  const isPad = new Uint8Array(keyPos.length);
  for (let h = 0; h < layoutHeads; h++) {
    for (let m = 0; m < blocks; m++) {
      const row = (h * blocks + m) * keys;
      for (let s = 0; s < g; s++) keyPos[row + s] = s;
      for (let j = 0; j < width; j++) {
        const kb = layoutBlock(layout, h, m, j);
        for (let t = 0; t < bs; t++) {
          const pos = kb * bs + t;
          keyPos[row + g + j * bs + t] = g + pos;
          isPad[row + g + j * bs + t] = pos >= local ? 1 : 0;
        }
      }
    }
  }
  return {
    batch,
    n,
    c,
    heads,
    d: c / heads,
    g,
    local,
    bs,
    blocks,
    keys,
    lp: blocks * bs,
    np: g + blocks * bs,
    layoutHeads,
    keyPos,
    isPad,
    anyPad: isPad.some((p) => p === 1),
  };
}

/**
 * blockSparseAttention, with Lp = M·bs local tokens after padding, Np = G + Lp and
 * K = G + W·bs keys per local query.
 *
 * Global rows: dense over the N real keys (`leadingRows`, or head-split MatMuls in the
 * portable form); their probabilities are the node's second output [B, H, G, N].
 *
 * Local rows, all blocks at once: the keys of query block m are the constant positions
 * keyPos[m] (the global tokens, then the layout row's blocks), read from k and v
 * zero-padded to Np tokens by one Gather per layer. Padded keys are those zero vectors:
 * in mode "reference" their logit is 0 + bias(token → CLS) as in the authors' code; in
 * mode "masked" they get -∞. Rows of padded queries are computed and sliced off.
 * - contrib: queries [B·M, bs, C]; keys and values gathered straight into
 *   [B·M, H, K, d] (row keyPos·H + h of k viewed as [B, Np·H, d]); bias [B·M, H, bs, K];
 *   one MultiHeadAttention over the B·M blocks gives the context [B·M, bs, C].
 * - portable: heads split to [B, H, Np, d]; keys gathered to [B, H, M, K, d]; two batched
 *   MatMuls over (B, H, M): [bs, d]·[d, K] → softmax → [bs, K]·[K, d].
 */
export const lowerBlockSparseAttention: Lowering<"blockSparseAttention"> = (node, ctx) => {
  const s = sparseGeometry(node, ctx);
  const { padding, relPosBias } = node.attrs;
  const maskPadding = padding === "masked" && s.anyPad;
  const contrib = ctx.options.contribOps;
  const bias =
    relPosBias === null
      ? null
      : sparseRelPosBias(ctx, biasInputs(ctx, relPosBias, s.heads, 3), s, maskPadding, contrib);
  return contrib
    ? sparseContrib(ctx, s, maskPadding, bias?.global ?? null, bias?.local ?? null)
    : sparsePortable(ctx, s, maskPadding, bias?.global ?? null, bias?.local ?? null);
};

function sparseContrib(
  ctx: LowerContext,
  s: SparseGeometry,
  maskPadding: boolean,
  globalBias: string | null,
  relBias: string | null,
): string[] {
  const { e } = ctx;
  const { batch, n, c, heads, d, g, bs, blocks, keys, lp, np, local } = s;
  const padded = lp - local;
  const [q, k, v] = [ctx.input(0), ctx.input(1), ctx.input(2)];
  const global = leadingRows(e, { q, k, v }, { b: batch, n, c, heads, rows: g }, globalBias, true);

  const qLocal = e.reshape(e.padEnd(e.slice(q, [g], [n], [1]), 3, 1, padded), [
    batch * blocks,
    bs,
    c,
  ]);
  // Row keyPos·H + h of [B, Np·H, d] is head h of token keyPos: gathered as [B, M, H, K, d].
  const rows = new Int32Array(blocks * heads * keys);
  for (let m = 0; m < blocks; m++) {
    for (let h = 0; h < heads; h++) {
      const hl = s.layoutHeads === 1 ? 0 : h;
      for (let j = 0; j < keys; j++) {
        rows[(m * heads + h) * keys + j] = s.keyPos[(hl * blocks + m) * keys + j]! * heads + h;
      }
    }
  }
  const rowIdx = e.w.i32(rows, [blocks, heads, keys]);
  const gatherBlocks = (x: string): string =>
    e.reshape(e.gather(e.reshape(e.padEnd(x, 3, 1, padded), [batch, np * heads, d]), rowIdx, 1), [
      batch * blocks,
      heads,
      keys,
      d,
    ]);
  let bias: string | null = null;
  if (relBias !== null) {
    bias = relBias; // [B·M, H, bs, K]
  } else if (maskPadding) {
    // -∞ on padded keys, as a constant [B·M, Hl, bs, K].
    const hl = s.layoutHeads;
    const mask = new Float32Array(batch * blocks * hl * bs * keys);
    for (let b = 0; b < batch; b++) {
      for (let m = 0; m < blocks; m++) {
        for (let h = 0; h < hl; h++) {
          for (let j = 0; j < keys; j++) {
            if (s.isPad[(h * blocks + m) * keys + j] !== 1) continue;
            for (let r = 0; r < bs; r++) {
              mask[(((b * blocks + m) * hl + h) * bs + r) * keys + j] = Number.NEGATIVE_INFINITY;
            }
          }
        }
      }
    }
    bias = e.w.f32(mask, [batch * blocks, hl, bs, keys]);
  }
  const attended = mha(e, qLocal, gatherBlocks(k), gatherBlocks(v), bias, heads, d);
  let localContext = e.reshape(attended, [batch, lp, c]);
  if (padded > 0) localContext = e.slice(localContext, [0], [local], [1]);
  return [e.concat([global.context!, localContext], 1), global.probs];
}

function sparsePortable(
  ctx: LowerContext,
  s: SparseGeometry,
  maskPadding: boolean,
  globalBias: string | null,
  relBias: string | null,
): string[] {
  const { e } = ctx;
  const { batch, n, c, heads, d, g, bs, blocks, keys, lp, np, local } = s;
  const padded = lp - local;
  const q = splitHeads(e, ctx.input(0), batch, n, heads, d);
  const k = splitHeads(e, ctx.input(1), batch, n, heads, d);
  const v = splitHeads(e, ctx.input(2), batch, n, heads, d);

  let globalScores = scores(e, e.slice(q, [0], [g], [2]), k, 4, d);
  if (globalBias !== null) globalScores = e.add(globalScores, globalBias);
  const globalProbs = e.softmax(globalScores);
  const globalContext = e.matmul(globalProbs, v);

  const qLocal = e.reshape(e.slice(e.padEnd(q, 4, 2, padded), [g], [np], [2]), [
    batch,
    heads,
    blocks,
    bs,
    d,
  ]);
  const gatherRows = (x: string): string => {
    const full = e.padEnd(x, 4, 2, padded);
    if (s.layoutHeads === 1) return e.gather(full, e.w.i32(s.keyPos, [blocks, keys]), 2);
    // Per-head rows: offset h·Np into the heads-flattened [B, H·Np, d].
    const offsets = s.keyPos.map((pos, i) => pos + Math.floor(i / (blocks * keys)) * np);
    return e.gather(
      e.reshape(full, [batch, heads * np, d]),
      e.w.i32(offsets, [heads, blocks, keys]),
      1,
    );
  };
  let localScores = scores(e, qLocal, gatherRows(k), 5, d);
  if (relBias !== null) {
    localScores = e.add(localScores, relBias); // [Bi, H, M, bs, K]
  } else if (maskPadding) {
    const mask = new Float32Array(s.keyPos.length);
    s.isPad.forEach((p, i) => {
      if (p === 1) mask[i] = Number.NEGATIVE_INFINITY;
    });
    localScores = e.add(localScores, e.w.f32(mask, [1, s.layoutHeads, blocks, 1, keys]));
  }
  const localProbs = e.softmax(localScores);
  let localContext = e.reshape(e.matmul(localProbs, gatherRows(v)), [batch, heads, lp, d]);
  if (padded > 0) localContext = e.slice(localContext, [0], [local], [2]);
  return [mergeHeads(e, e.concat([globalContext, localContext], 2), batch, n, c), globalProbs];
}
