import type { Node } from "../../../src/ir/graph.js";
import { nodeLabel } from "../../../src/ir/graph.js";
import type { RelPosBiasAttrs } from "../../../src/ir/ops/index.js";
import {
  attentionPlanOf,
  entryReads,
  layoutHeadOf,
  planRow,
  rowSlots,
  SLOT_EXCLUDED,
  SLOT_READ,
  SLOT_ZERO_KEY,
} from "../../../src/ir/attention-plan.js";
import { relPosIndex } from "../../../src/ir/relpos.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import { f32In, f32Out, type I32Tensor, i32In, outShape } from "./util.js";

/**
 * Attention kernels.
 *
 * Multi-head attention with H heads over width C uses d = C / H channels per head, head h
 * owning channels h·d .. h·d + d - 1. For query i and key j of head h:
 *   logit[i, j] = q_i · k_j / √d + bias_h(i, j) + mask[j],
 *   p[i, :]     = softmax_j(logit[i, :])          (the row maximum subtracted first),
 *   context_i   = Σ_j p[i, j] v_j                  (heads joined back to width C).
 *
 * Relative position bias (one CLS token, token window (T, Hw, Ww)): every sequence
 * position has a position id, 0 for the CLS token and tokenIdx[i - 1] + 1 for local token
 * i, where tokenIdx holds the local tokens' original indices t·Hw·Ww + h·Ww + w. The bias
 * is bias_h(i, j) = table[relPosIndex(id_i, id_j), h].
 */

// ---- relative position bias --------------------------------------------------------------

/**
 * Position ids of the n sequence positions of batch item b: 0 for the CLS token, then
 * tokenIdx[b', i - 1] + 1 with b' = b, or 0 when the token index has batch 1. Throws a
 * RangeError naming the node when an index lies outside the window.
 */
export function positionIds(
  node: Node,
  window: readonly [number, number, number],
  tokenIdx: I32Tensor,
  b: number,
  n: number,
): Int32Array {
  const ids = new Int32Array(n);
  const row = tokenIdx.shape[0] === 1 ? 0 : b;
  const len = tokenIdx.shape[1]!;
  const windowTokens = window[0] * window[1] * window[2];
  for (let i = 1; i < n; i++) {
    const original = tokenIdx.data[row * len + i - 1]!;
    if (!(original >= 0 && original < windowTokens)) {
      throw new RangeError(
        `reference: ${nodeLabel(node)}: token index ${original} (batch ${row}, position ${i - 1}) outside the ${windowTokens}-token window`,
      );
    }
    ids[i] = original + 1;
  }
  return ids;
}

/** The bias inputs of an attention node with relPosBias set. */
interface RelPos {
  readonly window: readonly [number, number, number];
  readonly table: Float32Array;
  readonly tokenIdx: I32Tensor;
}

function relPosInputs(
  node: Node,
  attrs: RelPosBiasAttrs | null,
  inputs: readonly HostTensor[],
  first: number,
): RelPos | null {
  if (attrs === null) return null;
  return {
    window: attrs.window,
    table: f32In(node, inputs, first).data,
    tokenIdx: i32In(node, inputs, first + 1),
  };
}

// ---- shared row helpers ----------------------------------------------------------------------

/** Copies head h of x [B, n, C] for batch item b into dst [n, d] (contiguous rows). */
function packHead(
  x: Float32Array,
  b: number,
  n: number,
  c: number,
  h: number,
  d: number,
  dst: Float32Array,
): void {
  for (let j = 0; j < n; j++) {
    const src = (b * n + j) * c + h * d;
    dst.set(x.subarray(src, src + d), j * d);
  }
}

/** dst[0..d) = the head-h slice of row i of x [B, n, C] for batch item b, as float64. */
function loadRow(
  x: Float32Array,
  b: number,
  n: number,
  c: number,
  h: number,
  d: number,
  i: number,
  dst: Float64Array,
): void {
  const src = (b * n + i) * c + h * d;
  for (let t = 0; t < d; t++) dst[t] = x[src + t]!;
}

/** q · keys[j] for a packed [n, d] head. */
function dot(q: Float64Array, keys: Float32Array, j: number, d: number): number {
  const off = j * d;
  let s = 0;
  for (let t = 0; t < d; t++) s += q[t]! * keys[off + t]!;
  return s;
}

/** In place: x[0..n) ← exp(x - max) / Σ exp(x - max). Entries of -∞ become 0. */
function softmax(x: Float64Array, n: number): void {
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < n; j++) if (x[j]! > max) max = x[j]!;
  let sum = 0;
  for (let j = 0; j < n; j++) {
    const e = Math.exp(x[j]! - max);
    x[j] = e;
    sum += e;
  }
  for (let j = 0; j < n; j++) x[j] = x[j]! / sum;
}

/** acc += w · values[j] for a packed [n, d] head. */
function accumulate(
  acc: Float64Array,
  w: number,
  values: Float32Array,
  j: number,
  d: number,
): void {
  const off = j * d;
  for (let t = 0; t < d; t++) acc[t] = acc[t]! + w * values[off + t]!;
}

/** Writes acc into the head-h slice of row i of out [B, n, C]. */
function storeRow(
  out: Float32Array,
  b: number,
  n: number,
  c: number,
  h: number,
  d: number,
  i: number,
  acc: Float64Array,
): void {
  const dst = (b * n + i) * c + h * d;
  for (let t = 0; t < d; t++) out[dst + t] = acc[t]!;
}

/**
 * One head of one batch item: its keys and values packed as [n, d], the logit scale 1/√d,
 * and, with a bias, the bias inputs and the position ids of the sequence.
 */
interface Head {
  readonly h: number;
  readonly heads: number;
  readonly d: number;
  readonly scale: number;
  readonly keys: Float32Array;
  readonly values: Float32Array;
  readonly rel: RelPos | null;
  readonly ids: Int32Array | null;
}

/** bias_h between position ids a (query) and c (key); 0 without a bias. */
function bias(head: Head, a: number, c: number): number {
  const { rel } = head;
  if (rel === null) return 0;
  return rel.table[relPosIndex(rel.window, a, c) * head.heads + head.h]!;
}

/**
 * Dense query row i over all n keys of the head: leaves the probabilities in p[0..n) and
 * the head's context row in acc. `mask` is an additive mask read from offset `maskOff`.
 */
function denseRow(
  head: Head,
  i: number,
  n: number,
  qRow: Float64Array,
  mask: Float32Array | null,
  maskOff: number,
  p: Float64Array,
  acc: Float64Array,
): void {
  const { ids, keys, values, d, scale } = head;
  for (let j = 0; j < n; j++) {
    let logit = dot(qRow, keys, j, d) * scale;
    if (ids !== null) logit += bias(head, ids[i]!, ids[j]!);
    if (mask !== null) logit += mask[maskOff + j]!;
    p[j] = logit;
  }
  softmax(p, n);
  acc.fill(0);
  for (let j = 0; j < n; j++) accumulate(acc, p[j]!, values, j, d);
}

// ---- kernels -------------------------------------------------------------------------------------

/**
 * attention (dense): inputs q [B, Nq, C], k and v [B, Nk, C], then mask [B, Nk] or
 * [B, Nq, Nk] if attrs.mask, then table [P + 3, H] and tokenIdx i32 [1|B, Nq - 1] if
 * attrs.relPosBias.
 *   logit[b, h, i, j] = q_i · k_j / √d + bias_h(i, j) + mask[b, (i,) j],  p = softmax_j(logit),
 *   context[b, i, h·d + t] = Σ_j p[b, h, i, j] v[b, j, h·d + t].
 * Output 0 is the context [B, Nq, C]; output 1 the probabilities [B, H, R, Nk] of the first
 * R = numCls rows ("cls") or of all rows ("all").
 */
export function attention(node: Node<"attention">, inputs: readonly HostTensor[]): HostTensor[] {
  const { heads, numCls, probs, mask, relPosBias } = node.attrs;
  const q = f32In(node, inputs, 0);
  const k = f32In(node, inputs, 1);
  const v = f32In(node, inputs, 2);
  const maskData = mask ? f32In(node, inputs, 3).data : null;
  const maskPerPair = mask && inputs[3]!.shape.length === 3;
  const rel = relPosInputs(node, relPosBias, inputs, mask ? 4 : 3);
  const [batch, nq, c] = q.shape as [number, number, number];
  const nk = k.shape[1]!;
  const d = c / heads;
  const scale = 1 / Math.sqrt(d);
  const rows = probs === "cls" ? numCls : nq;
  const context = new Float32Array(batch * nq * c);
  const probsOut = new Float32Array(batch * heads * rows * nk);
  const kh = new Float32Array(nk * d);
  const vh = new Float32Array(nk * d);
  const qRow = new Float64Array(d);
  const acc = new Float64Array(d);
  const p = new Float64Array(nk);
  for (let b = 0; b < batch; b++) {
    const ids = rel === null ? null : positionIds(node, rel.window, rel.tokenIdx, b, nq);
    for (let h = 0; h < heads; h++) {
      packHead(k.data, b, nk, c, h, d, kh);
      packHead(v.data, b, nk, c, h, d, vh);
      const head: Head = { h, heads, d, scale, keys: kh, values: vh, rel, ids };
      for (let i = 0; i < nq; i++) {
        loadRow(q.data, b, nq, c, h, d, i, qRow);
        denseRow(head, i, nk, qRow, maskData, (maskPerPair ? b * nq + i : b) * nk, p, acc);
        storeRow(context, b, nq, c, h, d, i, acc);
        if (i < rows) {
          const dst = ((b * heads + h) * rows + i) * nk;
          for (let j = 0; j < nk; j++) probsOut[dst + j] = p[j]!;
        }
      }
    }
  }
  return [f32Out(outShape(node, 0), context), f32Out(outShape(node, 1), probsOut)];
}

/**
 * blockSparseAttention: self-attention over N = G + L tokens under a block pattern, as its
 * attention plan (src/ir/attention-plan.ts) states it. Inputs q, k, v [B, N, C], then table
 * and tokenIdx when attrs.relPosBias is set.
 * - Global query i < G attends densely to all N keys, exactly as in `attention`.
 * - Local query at local position r (sequence position G + r, block m = ⌊r / bs⌋, row
 *   r - m·bs) attends to the G global keys, then to the key slots of its layout row (rowSlots):
 *   per entry, the bs positions of its key block, in order. A padded position (≥ L) is a zero
 *   key and value: in padding mode "reference" it stays in the softmax with logit
 *   0 + bias_h(id_i, 0) (the authors pad token indices with the CLS index 0) and so absorbs
 *   probability mass; in mode "masked" it is left out. A real key of a partial entry whose
 *   token mask clears the pair (entryReads) is left out too.
 * - Slots are formed per entry, so a block a row lists twice (allowed under padding
 *   "reference" only, verifier rule 4) fills two runs of slots with the same keys, values
 *   and bias entries: it counts twice in the softmax and in the sum, the authors'
 *   duplicated-block softmax.
 * Output 0 is the context [B, N, C] (rows of padded query positions are never formed);
 * output 1 the global rows' probabilities [B, H, G, N].
 */
export function blockSparseAttention(
  node: Node<"blockSparseAttention">,
  inputs: readonly HostTensor[],
): HostTensor[] {
  const plan = attentionPlanOf(node);
  const { heads, relPosBias } = node.attrs;
  const q = f32In(node, inputs, 0);
  const k = f32In(node, inputs, 1);
  const v = f32In(node, inputs, 2);
  const rel = relPosInputs(node, relPosBias, inputs, 3);
  const { batch, tokens: n, hidden: c, globalTokens: g, blockSize: bs, headDim: d } = plan;
  const scale = 1 / Math.sqrt(d);
  const context = new Float32Array(batch * n * c);
  const probsOut = new Float32Array(batch * heads * g * n);
  const kh = new Float32Array(n * d);
  const vh = new Float32Array(n * d);
  const qRow = new Float64Array(d);
  const acc = new Float64Array(d);
  const p = new Float64Array(Math.max(n, g + plan.widestRow * bs));
  // The key slots of every layout row, formed once.
  const rows = Array.from({ length: plan.layoutHeads * plan.queryBlocks }, (_, row) =>
    rowSlots(plan, Math.floor(row / plan.queryBlocks), row % plan.queryBlocks),
  );
  for (let b = 0; b < batch; b++) {
    const ids = rel === null ? null : positionIds(node, rel.window, rel.tokenIdx, b, n);
    for (let h = 0; h < heads; h++) {
      packHead(k.data, b, n, c, h, d, kh);
      packHead(v.data, b, n, c, h, d, vh);
      const head: Head = { h, heads, d, scale, keys: kh, values: vh, rel, ids };
      // Global rows: dense.
      for (let i = 0; i < g; i++) {
        loadRow(q.data, b, n, c, h, d, i, qRow);
        denseRow(head, i, n, qRow, null, 0, p, acc);
        storeRow(context, b, n, c, h, d, i, acc);
        const dst = ((b * heads + h) * g + i) * n;
        for (let j = 0; j < n; j++) probsOut[dst + j] = p[j]!;
      }
      // Local rows, one query block at a time.
      const hl = layoutHeadOf(plan, h);
      for (let m = 0; m < plan.queryBlocks; m++) {
        const { positions, kinds } = rows[hl * plan.queryBlocks + m]!;
        const { first } = planRow(plan, hl, m);
        const end = Math.min(plan.localTokens, (m + 1) * bs);
        for (let r = m * bs; r < end; r++) {
          const i = g + r;
          loadRow(q.data, b, n, c, h, d, i, qRow);
          for (let s = 0; s < positions.length; s++) {
            const key = positions[s]!;
            const kind = kinds[s]!;
            // Padded keys follow the padding mode alone; a real key may be masked out.
            const entry = first + Math.floor((s - g) / bs);
            const cleared =
              kind === SLOT_READ && s >= g && !entryReads(plan, entry, r - m * bs, (s - g) % bs);
            if (kind === SLOT_EXCLUDED || cleared) {
              p[s] = Number.NEGATIVE_INFINITY;
            } else if (kind === SLOT_ZERO_KEY) {
              // A zero key: q · 0 = 0, plus the bias towards position id 0 (the CLS id).
              p[s] = ids === null ? 0 : bias(head, ids[i]!, 0);
            } else {
              const logit = dot(qRow, kh, key, d) * scale;
              p[s] = ids === null ? logit : logit + bias(head, ids[i]!, ids[key]!);
            }
          }
          softmax(p, positions.length);
          acc.fill(0);
          for (let s = 0; s < positions.length; s++) {
            if (kinds[s] === SLOT_READ && p[s]! > 0) accumulate(acc, p[s]!, vh, positions[s]!, d);
          }
          storeRow(context, b, n, c, h, d, i, acc);
        }
      }
    }
  }
  return [f32Out(outShape(node, 0), context), f32Out(outShape(node, 1), probsOut)];
}
