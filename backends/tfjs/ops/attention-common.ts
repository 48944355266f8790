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
 * d = C / H; block size bs, M query blocks of W key blocks; Kk = G + W·bs keys per local
 * query block (the global keys first, then the W blocks in layout order).
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

export interface SparseGeometry {
  readonly batch: number;
  readonly tokens: number;
  readonly hidden: number;
  readonly heads: number;
  readonly headDim: number;
  readonly global: number;
  readonly blockSize: number;
  readonly local: number;
  readonly blocks: number;
  readonly width: number;
  /** Keys per local query block: G + W·bs. */
  readonly keys: number;
  /** 1 (shared) or H. */
  readonly layoutHeads: number;
  readonly masked: boolean;
  /**
   * Sequence position of key slot s of query block m under layout head h' at
   * [(h'·M + m)·Kk + s]; -1 marks a padded key (a local position ≥ L).
   */
  readonly keyPos: Int32Array;
}

export function sparseGeometry(
  node: Node<"blockSparseAttention">,
  ctx: LowerContext,
): SparseGeometry {
  const [batch, tokens, hidden] = inShape(ctx.graph, node, 0) as [number, number, number];
  const { heads, pattern, padding } = node.attrs;
  const { layout } = pattern;
  const global = pattern.globalTokens;
  const blockSize = pattern.blockSize;
  const local = tokens - global;
  const blocks = layout.queryBlocks;
  const width = layout.blocksPerRow;
  const keys = global + width * blockSize;
  const keyPos = new Int32Array(layout.heads * blocks * keys);
  for (let h = 0; h < layout.heads; h++) {
    for (let m = 0; m < blocks; m++) {
      const base = (h * blocks + m) * keys;
      for (let s = 0; s < global; s++) keyPos[base + s] = s;
      for (let j = 0; j < width; j++) {
        const kb = layout.blocks[(h * blocks + m) * width + j]!;
        for (let t = 0; t < blockSize; t++) {
          const p = kb * blockSize + t;
          keyPos[base + global + j * blockSize + t] = p < local ? global + p : -1;
        }
      }
    }
  }
  return {
    batch,
    tokens,
    hidden,
    heads,
    headDim: hidden / heads,
    global,
    blockSize,
    local,
    blocks,
    width,
    keys,
    layoutHeads: layout.heads,
    masked: padding === "masked",
    keyPos,
  };
}

/**
 * Bias of the local query rows, [H, M, bs, Kk] for one batch row of ids:
 *   bias[h, m, r, s] = table[index(id_q, id_k), h]
 * with id_q the id of local position m·bs + r (0 for padded query rows, whose outputs are
 * discarded) and id_k the id of key slot s; a padded key has id 0 in padding mode
 * "reference" (logit 0 + token→CLS bias) and bias -∞ in mode "masked" (out of the softmax).
 * With relPos null only the masking term remains: 0, or -∞ at padded keys.
 */
export function sparseLocalBias(
  geo: SparseGeometry,
  rel: RelPos | null,
  table: Float32Array | null,
  ids: Int32Array | null,
  out: Float32Array = new Float32Array(geo.heads * geo.blocks * geo.blockSize * geo.keys),
  index: Int32Array = new Int32Array(geo.blocks * geo.blockSize * geo.keys),
): Float32Array {
  const { heads, blocks, blockSize, keys, global, local, layoutHeads, masked, keyPos } = geo;
  const plane = blocks * blockSize * keys;
  const keyIds = new Int32Array(keys);
  for (let lh = 0; lh < layoutHeads; lh++) {
    // Table rows for layout head lh (-1: masked out).
    for (let m = 0; m < blocks; m++) {
      const slots = keyPos.subarray((lh * blocks + m) * keys, (lh * blocks + m + 1) * keys);
      if (rel === null || ids === null) {
        const rows = index.subarray(m * blockSize * keys, (m + 1) * blockSize * keys);
        rows.fill(0);
        if (masked) {
          for (let r = 0; r < blockSize; r++) {
            slots.forEach((pos, s) => {
              if (pos < 0) rows[r * keys + s] = -1;
            });
          }
        }
        continue;
      }
      // Padded keys: the CLS id 0 (reference) or masked out.
      slots.forEach((pos, s) => {
        keyIds[s] = pos >= 0 ? ids[pos]! : masked ? -1 : 0;
      });
      const keySet = rel.keySet(keyIds);
      for (let r = 0; r < blockSize; r++) {
        const p = m * blockSize + r;
        const a = p >= local ? 0 : ids[global + p]!;
        const base = (m * blockSize + r) * keys;
        rel.fillRow(a, keySet, index.subarray(base, base + keys));
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
