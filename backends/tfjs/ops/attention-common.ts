import {
  attentionPlanOf,
  SLOT_EXCLUDED,
  SLOT_READ,
  SLOT_ZERO_KEY,
} from "../../../src/ir/attention-plan.js";
import type { Node } from "../../../src/ir/graph.js";
import type { LowerContext } from "../types.js";
import { inputRef, inShape } from "../util.js";
import { RelPos } from "./relpos.js";

/**
 * What both attention lowerings (device and host) share: the static geometry of a node,
 * the relative-position bias computed in JS, and the compile-time precomputation of that
 * bias when both the table (a weight) and the token index (a constant) are known.
 *
 * Notation as in src/ir/ops/types.ts: B batch, N = G + L tokens, C hidden, H heads,
 * d = C / H; block size bs, M query blocks; the node's attention plan groups them, Mb blocks
 * of Kk = G + W·bs keys per query each (the global keys first, then the row's blocks).
 */

/**
 * Default cap, in floats (64 MiB), on a precomputed bias per attention node; larger biases
 * are rebuilt per run. The dense 8-frame layer's [12, 1569, 1569] bias (118 MB) is over it:
 * keeping one per layer would hold 1.4 GB for a 12-layer encoder.
 */
export const STATIC_BIAS_LIMIT = 1 << 24;

/** The relative-position inputs of an attention node, as known at compile time. */
export interface RelPosInputs {
  readonly rel: RelPos;
  /** Index of the table among the node's inputs (the token index follows it). */
  readonly tableInput: number;
  /** Batch rows of the token index (1 or B). */
  readonly idxRows: number;
  /** Length of a token-index row (N - 1). */
  readonly idxLen: number;
  /** Table values when the table is a weight, else null (then read per run). */
  readonly table: Float32Array | null;
  /** Token index values when it is a constant, else null (then read per run). */
  readonly tokenIdx: Int32Array | null;
}

export function relPosInputs(
  node: Node,
  window: readonly [number, number, number] | undefined,
  tableInput: number,
  ctx: LowerContext,
): RelPosInputs | null {
  if (window === undefined) return null;
  const [idxRows, idxLen] = inShape(ctx.graph, node, tableInput + 1) as [number, number];
  const table = ctx.known(inputRef(node, tableInput));
  const tokenIdx = ctx.known(inputRef(node, tableInput + 1));
  return {
    rel: new RelPos(window),
    tableInput,
    idxRows,
    idxLen,
    table: table?.dtype === "f32" ? table.data : null,
    tokenIdx: tokenIdx?.dtype === "i32" ? tokenIdx.data : null,
  };
}

/** Position ids of every token-index row: ids[row] has length n. */
export function allIds(
  node: Node,
  rp: RelPosInputs,
  tokenIdx: Int32Array,
  n: number,
): Int32Array[] {
  return Array.from({ length: rp.idxRows }, (_, row) =>
    rp.rel.ids(node, tokenIdx, rp.idxLen, row, n),
  );
}

// ---- dense attention ---------------------------------------------------------------------------

/** Table rows index(ids[i], ids[j]) for i < nq, j < nk: [nq, nk]. */
export function denseIndex(
  rel: RelPos,
  ids: Int32Array,
  nq: number,
  nk: number,
  index: Int32Array = new Int32Array(nq * nk),
): Int32Array {
  const keys = rel.keySet(ids.subarray(0, nk));
  for (let i = 0; i < nq; i++) rel.fillRow(ids[i]!, keys, index.subarray(i * nk, (i + 1) * nk));
  return index;
}

/**
 * dst[e] = table[index[e], h] for every entry e of a table-row array: -∞ where the row is
 * -1 (a masked key), and 0 everywhere else when `table` is null.
 */
export function headBias(
  index: Int32Array,
  table: Float32Array | null,
  heads: number,
  h: number,
  dst: Float32Array,
): void {
  if (table === null) dst.fill(0);
  for (let e = 0; e < index.length; e++) {
    const row = index[e]!;
    if (row < 0) dst[e] = Number.NEGATIVE_INFINITY;
    else if (table !== null) dst[e] = table[row * heads + h]!;
  }
}

/**
 * headBias for every head: [H, entries], one sequential pass per head plane (strided
 * writes across planes would thrash caches). `out` may be a reused buffer.
 */
export function biasFromIndex(
  index: Int32Array,
  table: Float32Array | null,
  heads: number,
  out: Float32Array = new Float32Array(heads * index.length),
): Float32Array {
  const plane = index.length;
  for (let h = 0; h < heads; h++)
    headBias(index, table, heads, h, out.subarray(h * plane, (h + 1) * plane));
  return out;
}

/** bias[h, i, j] = table[index(ids[i], ids[j]), h] for i < nq, j < nk: [H, nq, nk]. */
export function denseBias(
  rel: RelPos,
  table: Float32Array,
  heads: number,
  ids: Int32Array,
  nq: number,
  nk: number,
): Float32Array {
  return biasFromIndex(denseIndex(rel, ids, nq, nk), table, heads);
}

// ---- block-sparse attention --------------------------------------------------------------------

/**
 * One block group of a node's attention plan (src/ir/attention-plan.ts), as both tfjs
 * lowerings read it: Mb query blocks batched as one problem of Kk key slots each (the
 * global keys, then the rows' key blocks, shorter rows filled with excluded slots).
 */
export interface SparseGeometry {
  readonly batch: number;
  readonly tokens: number;
  readonly hidden: number;
  readonly heads: number;
  readonly headDim: number;
  readonly global: number;
  readonly blockSize: number;
  readonly local: number;
  /** Query blocks of the whole layer (M) and of the group (Mb), and the group's blocks. */
  readonly layerBlocks: number;
  readonly blocks: number;
  readonly queryBlocks: Int32Array;
  /** Whether the group is every query block in order. */
  readonly whole: boolean;
  /** Key slots per query of the group: G + W·bs. */
  readonly keys: number;
  /** 1 (shared) or H. */
  readonly layoutHeads: number;
  /**
   * Sequence position of key slot s of the group's block i under layout head h' at
   * [(h'·Mb + i)·Kk + s]; -1 marks a slot without a key: a zero-padded key (a local
   * position ≥ L) or an excluded one (its zero key gets -∞).
   */
  readonly keyPos: Int32Array;
  /** SLOT_* kind of each slot, same layout as keyPos. */
  readonly slotKind: Uint8Array;
  /** [Hl, Mb, bs, Kk]: 1 where a query row does not read a slot; null without partial blocks. */
  readonly rowExcluded: Uint8Array | null;
  /** Whether some slot or pair gets -∞. */
  readonly excludes: boolean;
}

/** The node's plan, as one SparseGeometry per block group. */
export function sparseGroups(node: Node<"blockSparseAttention">): SparseGeometry[] {
  const plan = attentionPlanOf(node);
  return plan.groups.map((group) => ({
    batch: plan.batch,
    tokens: plan.tokens,
    hidden: plan.hidden,
    heads: plan.heads,
    headDim: plan.headDim,
    global: plan.globalTokens,
    blockSize: plan.blockSize,
    local: plan.localTokens,
    layerBlocks: plan.queryBlocks,
    blocks: group.blocks.length,
    queryBlocks: group.blocks,
    whole: plan.singleGroup,
    keys: group.keys,
    layoutHeads: plan.layoutHeads,
    keyPos: group.keyPos.map((pos, s) => (group.slotKind[s] === SLOT_READ ? pos : -1)),
    slotKind: group.slotKind,
    rowExcluded: group.rowExcluded,
    excludes: group.anyExcluded || group.rowExcluded !== null,
  }));
}

/**
 * Bias of a group's local query rows, [H, Mb, bs, Kk] for one batch row of ids:
 *   bias[h, i, r, s] = table[index(id_q, id_k), h]
 * with id_q the id of local position m·bs + r of the group's block i = m (0 for padded query
 * rows, whose outputs are discarded) and id_k the id of key slot s; a zero-padded key has id
 * 0 (padding "reference": logit 0 + token→CLS bias), an excluded slot or cleared pair bias -∞.
 * With relPos null only the masking term remains: 0, or -∞ where excluded.
 */
export function sparseLocalBias(
  geo: SparseGeometry,
  rel: RelPos | null,
  table: Float32Array | null,
  ids: Int32Array | null,
  out: Float32Array = new Float32Array(geo.heads * geo.blocks * geo.blockSize * geo.keys),
  index: Int32Array = new Int32Array(geo.blocks * geo.blockSize * geo.keys),
): Float32Array {
  const { heads, blocks, blockSize, keys, global, local, layoutHeads, keyPos, slotKind } = geo;
  const plane = blocks * blockSize * keys;
  const keyIds = new Int32Array(keys);
  for (let lh = 0; lh < layoutHeads; lh++) {
    // Table rows for layout head lh (-1: masked out).
    for (let i = 0; i < blocks; i++) {
      const at = (lh * blocks + i) * keys;
      const rows = index.subarray(i * blockSize * keys, (i + 1) * blockSize * keys);
      if (rel === null || ids === null) {
        rows.fill(0);
        for (let r = 0; r < blockSize; r++) {
          for (let s = 0; s < keys; s++)
            if (slotKind[at + s] === SLOT_EXCLUDED) rows[r * keys + s] = -1;
        }
      } else {
        for (let s = 0; s < keys; s++) {
          const kind = slotKind[at + s]!;
          keyIds[s] = kind === SLOT_READ ? ids[keyPos[at + s]!]! : kind === SLOT_ZERO_KEY ? 0 : -1;
        }
        const keySet = rel.keySet(keyIds);
        for (let r = 0; r < blockSize; r++) {
          const p = geo.queryBlocks[i]! * blockSize + r;
          const a = p >= local ? 0 : ids[global + p]!;
          rel.fillRow(a, keySet, rows.subarray(r * keys, (r + 1) * keys));
        }
      }
      if (geo.rowExcluded !== null) {
        const cleared = geo.rowExcluded.subarray(at * blockSize, (at + keys) * blockSize);
        cleared.forEach((x, e) => {
          if (x === 1) rows[e] = -1;
        });
      }
    }
    const first = layoutHeads === 1 ? 0 : lh;
    const last = layoutHeads === 1 ? heads : lh + 1;
    for (let h = first; h < last; h++) {
      headBias(index, table, heads, h, out.subarray(h * plane, (h + 1) * plane));
    }
  }
  return out;
}

/** Bias of the global query rows over all N keys, [H, G, N]: table[index(id_g, id_j), h]. */
export function sparseGlobalBias(
  geo: SparseGeometry,
  rel: RelPos,
  table: Float32Array,
  ids: Int32Array,
): Float32Array {
  return denseBias(rel, table, geo.heads, ids, geo.global, geo.tokens);
}

/** Static values of a node's relative-position inputs, when both are known. */
export function staticRelPos(
  rp: RelPosInputs | null,
): { table: Float32Array; tokenIdx: Int32Array } | null {
  if (rp === null || rp.table === null || rp.tokenIdx === null) return null;
  return { table: rp.table, tokenIdx: rp.tokenIdx };
}
