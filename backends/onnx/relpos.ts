import { SLOT_EXCLUDED, SLOT_READ } from "../../src/ir/attention-plan.js";
import type { RelPosBiasAttrs } from "../../src/ir/ops/index.js";
import { relPosIndex, relPosLinear, type RelPosWindow } from "../../src/ir/relpos.js";
import type { HostTensor } from "../../src/ir/tensor.js";
import type { SparseGroup } from "./attention.js";
import type { Emitter } from "./emit.js";
import type { LowerContext } from "./lower.js";

/**
 * Relative position bias of attention nodes (src/ir/relpos.ts): bias_h(i, j) =
 * table[relPosIndex(id_i, id_j), h] with position ids 0 (CLS) and tokenIdx + 1 (local).
 *
 * Every bias is built in two steps: an int32 index tensor (table rows), then a lookup that
 * puts the heads where the attention kernel wants them, [P, H, Q]. Where the index comes
 * from depends on what is known when the model is built:
 * - token index and table both known (a graph constant and a weight, as in every layer
 *   before the first token drop): the bias is computed here, in JS, and stored as an
 *   initializer, up to a per-tensor and per-model size budget (LowerContext.claimFold).
 *   Left to ORT, the same subgraph would be constant-folded when the session is created,
 *   but ORT folds large Gathers slowly (measured: ~4 s per 8-frame dense layer, 4 s for the
 *   4 sparse layers of the 8-frame SViTT encoder, against ~0.5 s for all the rest).
 * - token index known, bias over budget (dense attention over thousands of tokens): the
 *   index is computed here and stored as an *overridable* initializer (also listed as a
 *   graph input), which ORT does not constant-fold, so the lookup runs per forward pass.
 * - token index known only at run time (layers after a token drop): the index is computed
 *   in the graph from position codes (below), the lookup per forward pass.
 *
 * Position codes: the linear form of the index (relPosLinear, src/ir/relpos.ts), the table
 * row of two local tokens being code(a) - code(c) + offset, so an index tensor is one
 * broadcast Sub of code vectors plus the offset; entries involving the CLS token (P + 2, P,
 * P + 1) are put in with Where.
 *
 * The lookup. ORT's Gather costs a 64-bit division per index (~3-5 ns), so gathering
 * single floats (H per index) is slow; measured on 17·56·225 indices, H = 12:
 *   Gather of single floats from the [H, R] table           ~9 ms
 *   Gather of [H]-rows from [R, H], then a 3-D Transpose     ~0.5 ms
 *   GatherElements on [H, R] with [H, n] indices             ~1.7 ms
 * so indices shared by the heads gather rows, and per-head indices use GatherElements.
 */

/** Largest bias computed at build time, in bytes, and the total per model. */
export const FOLD_TENSOR_BYTES = 64 << 20;
export const FOLD_MODEL_BYTES = 512 << 20;

/** Where a node's bias inputs come from. */
export interface BiasInputs {
  readonly window: RelPosWindow;
  readonly heads: number;
  /**
   * The table [P + 3, H]: its ONNX value (emitted on first use, so a bias computed here
   * leaves no unread initializer) and, when a weight or constant, its values.
   */
  readonly table: () => string;
  readonly tableValue: HostTensor | null;
  /** The token index i32 [Bi, L], likewise, and a key naming its source for memos. */
  readonly tokenIdx: () => string;
  readonly tokenIdxValue: HostTensor | null;
  readonly tokenIdxKey: string;
  readonly idxBatch: number;
}

export function biasInputs(
  ctx: LowerContext,
  rel: RelPosBiasAttrs,
  heads: number,
  tableInput: number,
): BiasInputs {
  return {
    window: rel.window,
    heads,
    table: () => ctx.input(tableInput),
    tableValue: ctx.known(tableInput),
    tokenIdx: () => ctx.input(tableInput + 1),
    tokenIdxValue: ctx.known(tableInput + 1),
    tokenIdxKey: ctx.inputKey(tableInput + 1),
    idxBatch: ctx.inputType(tableInput + 1).shape[0]!,
  };
}

// ---- build-time indices -------------------------------------------------------------------

/** Position ids [0, tokenIdx[b] + 1 ...] of batch row b, checked against the window. */
function positionIds(ctx: LowerContext, src: BiasInputs, b: number): Int32Array {
  const value = src.tokenIdxValue!;
  const len = value.shape[1]!;
  const windowTokens = src.window[0] * src.window[1] * src.window[2];
  const ids = new Int32Array(len + 1);
  for (let i = 0; i < len; i++) {
    const original = value.data[b * len + i]!;
    if (!(original >= 0 && original < windowTokens)) {
      ctx.fail(
        `token index ${original} (batch ${b}, position ${i}) outside the ${windowTokens}-token window`,
      );
    }
    ids[i + 1] = original + 1;
  }
  return ids;
}

/** Dense index [Bi, N·N]: relPosIndex(id_i, id_j). */
function denseIndexHost(ctx: LowerContext, src: BiasInputs, n: number): Int32Array {
  const out = new Int32Array(src.idxBatch * n * n);
  for (let b = 0; b < src.idxBatch; b++) {
    const ids = positionIds(ctx, src, b);
    for (let i = 0; i < n; i++) {
      const row = (b * n + i) * n;
      for (let j = 0; j < n; j++) out[row + j] = relPosIndex(src.window, ids[i]!, ids[j]!);
    }
  }
  return out;
}

/**
 * Sparse local index of one block group, [Bi, Mb, bs, K] for a shared layout or
 * [H, Bi, Mb, bs, K] per head: the row of query (block, row r) and key slot s. Zero-padded
 * keys read token → CLS (P + 1), excluded slots and cleared pairs the -∞ row P + 3; padded
 * queries read as local token 0.
 */
function sparseIndexHost(ctx: LowerContext, src: BiasInputs, s: SparseGroup): Int32Array {
  const lin = relPosLinear(src.window);
  const { bs, g, local, layoutHeads: hl, group } = s;
  const { keys, keyPos, slotKind, rowExcluded } = group;
  const count = group.blocks.length;
  const idsByBatch = Array.from({ length: src.idxBatch }, (_, b) => positionIds(ctx, src, b));
  const out = new Int32Array(hl * src.idxBatch * count * bs * keys);
  let o = 0;
  for (let h = 0; h < hl; h++) {
    for (let b = 0; b < src.idxBatch; b++) {
      const ids = idsByBatch[b]!;
      for (let i = 0; i < count; i++) {
        const row = (h * count + i) * keys;
        for (let r = 0; r < bs; r++) {
          const lq = group.blocks[i]! * bs + r;
          const idq = lq < local ? ids[g + lq]! : 1;
          for (let j = 0; j < keys; j++) {
            const kind = slotKind[row + j]!;
            const cleared = rowExcluded?.[((h * count + i) * bs + r) * keys + j] === 1;
            if (j < g) out[o++] = relPosIndex(src.window, idq, 0);
            else if (kind === SLOT_EXCLUDED || cleared) out[o++] = lin.clsToCls + 1;
            else if (kind !== SLOT_READ) out[o++] = lin.tokenToCls;
            else out[o++] = relPosIndex(src.window, idq, ids[keyPos[row + j]!]!);
          }
        }
      }
    }
  }
  return out;
}

/** The CLS query row's index [N]: P + 2 for the CLS key, P for the others. */
function clsRowIndex(window: RelPosWindow, n: number): Int32Array {
  const lin = relPosLinear(window);
  return Int32Array.from({ length: n }, (_, j) => (j === 0 ? lin.clsToCls : lin.clsToToken));
}

// ---- in-graph indices ---------------------------------------------------------------------

/** Codes (int32 [Bi, L]) of the token index (relPosLinear), shared by every node reading it. */
function codes(ctx: LowerContext, src: BiasInputs): string {
  const { e } = ctx;
  return ctx.memo(`relpos-codes:${src.tokenIdxKey}:${src.window.join("x")}`, () => {
    const [, h, w] = src.window;
    const lin = relPosLinear(src.window);
    const tokenIdx = src.tokenIdx();
    const frame = e.div(tokenIdx, e.int(h * w));
    const inFrame = e.mod(tokenIdx, e.int(h * w));
    const row = e.div(inFrame, e.int(w));
    const col = e.mod(inFrame, e.int(w));
    return e.add(
      e.add(e.mul(frame, e.int(lin.frameStride)), e.mul(row, e.int(lin.rowStride))),
      col,
    );
  });
}

/** Dense index [Bi, 1, N, N] from the run-time token index. */
function denseIndexGraph(ctx: LowerContext, src: BiasInputs, n: number): string {
  const { e } = ctx;
  const lin = relPosLinear(src.window);
  const bi = src.idxBatch;
  const all = e.concat([e.w.i32(new Int32Array(bi), [bi, 1]), codes(ctx, src)], 1);
  const local = e.add(
    e.sub(e.reshape(all, [bi, 1, n, 1]), e.reshape(all, [bi, 1, 1, n])),
    e.int(lin.offset),
  );
  const clsColumn = e.w.bool(
    Array.from({ length: n }, (_, j) => j === 0),
    [1, 1, 1, n],
  );
  const clsRowMask = e.w.bool(
    Array.from({ length: n }, (_, i) => i === 0),
    [1, 1, n, 1],
  );
  const clsRow = e.w.i32(clsRowIndex(src.window, n), [1, 1, 1, n]);
  return e.where(clsRowMask, clsRow, e.where(clsColumn, e.int(lin.tokenToCls), local));
}

/**
 * Sparse local index of one block group ([Bi, Mb, bs, K] or per head [H, Bi, Mb, bs, K])
 * from the run-time index; special slots as in sparseIndexHost, per slot or, for a group
 * with partial blocks, per (query row, slot).
 */
function sparseIndexGraph(ctx: LowerContext, src: BiasInputs, s: SparseGroup): string {
  const { e } = ctx;
  const lin = relPosLinear(src.window);
  const { group } = s;
  const count = group.blocks.length;
  const { keys } = group;
  const bi = src.idxBatch;
  const hl = s.layoutHeads;
  const zeros = (n: number): string => e.w.i32(new Int32Array(bi * n), [bi, n]);
  const parts = [zeros(s.g), codes(ctx, src)];
  if (s.np > s.n) parts.push(zeros(s.np - s.n));
  // Codes of the padded sequence; padded positions read code 0 (see sparseIndexHost).
  const all = e.concat(parts, 1);
  const lead = hl === 1 ? [] : [1];
  let queryCodes: string;
  if (s.whole) {
    queryCodes = e.slice(all, [s.g], [s.np], [1]);
  } else {
    const positions = new Int32Array(count * s.bs);
    group.blocks.forEach((m, i) => {
      for (let r = 0; r < s.bs; r++) positions[i * s.bs + r] = s.g + m * s.bs + r;
    });
    queryCodes = e.gather(all, e.w.i32(positions, [count * s.bs]), 1);
  }
  queryCodes = e.reshape(queryCodes, [...lead, bi, count, s.bs, 1]);
  let keyCodes = e.gather(all, e.w.i32(group.keyPos, [hl * count * keys]), 1);
  if (hl > 1 && bi > 1) {
    keyCodes = e.transpose(e.reshape(keyCodes, [bi, hl, count * keys]), [1, 0, 2]);
  }
  keyCodes = e.reshape(keyCodes, [...(hl === 1 ? [] : [hl]), bi, count, 1, keys]);
  const localIdx = e.add(e.sub(queryCodes, keyCodes), e.int(lin.offset));
  const rows = group.rowExcluded === null ? 1 : s.bs;
  const special: boolean[] = [];
  const specialIdx = new Int32Array(hl * count * rows * keys);
  for (let i = 0; i < specialIdx.length; i++) {
    const j = i % keys;
    const slot = Math.floor(i / (rows * keys)) * keys + j;
    const kind = group.slotKind[slot]!;
    const excluded = kind === SLOT_EXCLUDED || group.rowExcluded?.[i] === 1;
    special.push(j < s.g || kind !== SLOT_READ || excluded);
    specialIdx[i] = excluded ? lin.clsToCls + 1 : lin.tokenToCls;
  }
  const maskShape = [...(hl === 1 ? [] : [hl]), 1, count, rows, keys];
  return e.where(e.w.bool(special, maskShape), e.w.i32(specialIdx, maskShape), localIdx);
}

// ---- lookups ------------------------------------------------------------------------------

/** The table [P + 3, H], plus a -∞ row P + 3 when masked padding reads it. */
function tableWithMask(e: Emitter, table: string, heads: number, withMinusInf: boolean): string {
  if (!withMinusInf) return table;
  const inf = e.w.f32(new Float32Array(heads).fill(Number.NEGATIVE_INFINITY), [1, heads]);
  return e.concat([table, inf], 0);
}

/** Bias [P, H, Q] from indices shared by the heads (P·Q of them): rows of [R', H], Transpose. */
function sharedLookup(e: Emitter, table: string, idx: string, p: number, q: number): string {
  return e.transpose(e.gather(table, e.reshape(idx, [p, q]), 0), [0, 2, 1]);
}

/** Bias [P, H, Q] from head-major indices [H, P·Q]: GatherElements on [H, R'], Transpose. */
function perHeadLookup(
  e: Emitter,
  table: string,
  idx: string,
  heads: number,
  p: number,
  q: number,
): string {
  const byHead = e.transpose(table, [1, 0]);
  const gathered = e.op("GatherElements", [byHead, e.reshape(idx, [heads, p * q])], { axis: 1 });
  const shaped = e.reshape(gathered, [heads, p, q]);
  return p === 1 ? e.reshape(shaped, [1, heads, q]) : e.transpose(shaped, [1, 0, 2]);
}

/** Bias [P, H, Q] computed here from host indices (shared [P·Q] or head-major [H, P·Q]). */
function lookupHost(
  table: HostTensor,
  idx: Int32Array,
  heads: number,
  p: number,
  q: number,
  perHead: boolean,
): Float32Array {
  const rows = table.shape[0]!;
  const values = table.data;
  const out = new Float32Array(p * heads * q);
  for (let pp = 0; pp < p; pp++) {
    for (let h = 0; h < heads; h++) {
      const src = perHead ? (h * p + pp) * q : pp * q;
      const dst = (pp * heads + h) * q;
      for (let j = 0; j < q; j++) {
        const row = idx[src + j]!;
        out[dst + j] = row < rows ? values[row * heads + h]! : Number.NEGATIVE_INFINITY;
      }
    }
  }
  return out;
}

/**
 * The bias [P, H, Q] of an index that is `host` (computed here) or `graph` (a value),
 * choosing between a build-time initializer, an overridable index with a run-time lookup,
 * and a run-time index (see the file comment); returned with shape `shape` (P·H·Q elements
 * times `repeat`: the whole bias repeated along the first axis, e.g. over a batch that a
 * batch-1 token index serves). A build-time bias is written in its final shape: ORT
 * constant-folds even a Reshape of a large initializer slowly (~1 s for 17 MB).
 */
function biasFrom(
  ctx: LowerContext,
  src: BiasInputs,
  index: { host: () => Int32Array; graph: () => string; memoKey: string | null },
  dims: { p: number; q: number; perHead: boolean; maskRow: boolean; repeat: number },
  shape: readonly number[],
): string {
  const { e } = ctx;
  const { p, q, perHead, maskRow, repeat } = dims;
  const { heads } = src;
  const size = p * heads * q;
  const hostKnown = src.tokenIdxValue !== null;
  if (hostKnown && src.tableValue !== null && ctx.claimFold(4 * size * repeat)) {
    const bias = lookupHost(src.tableValue, index.host(), heads, p, q, perHead);
    const repeated = new Float32Array(size * repeat);
    for (let r = 0; r < repeat; r++) repeated.set(bias, r * size);
    return e.w.initializer(`${e.base}/relpos_bias`, "float", shape, repeated);
  }
  let idx: string;
  if (hostKnown) {
    const make = (): string => {
      const values = index.host();
      const idxShape = perHead ? [heads, p * q] : [p, q];
      // Overridable (a graph input with a default): ORT does not constant-fold through it.
      return e.w.initializer(`${e.base}/relpos_index`, "int32", idxShape, values, {
        overridable: src.tableValue !== null,
      });
    };
    idx = index.memoKey === null ? make() : ctx.memo(index.memoKey, make);
  } else {
    idx = index.graph();
  }
  const table = tableWithMask(e, src.table(), heads, maskRow);
  let bias = perHead
    ? perHeadLookup(e, table, idx, heads, p, q)
    : sharedLookup(e, table, idx, p, q);
  if (repeat > 1) bias = e.expand(e.reshape(bias, [1, size]), [repeat, size]);
  return e.reshape(bias, shape);
}

/** The CLS query row's bias [1, H, 1, N] (one CLS token). */
export function clsRowBias(ctx: LowerContext, src: BiasInputs, n: number): string {
  const { e } = ctx;
  const idx = clsRowIndex(src.window, n);
  if (src.tableValue !== null) {
    const bias = lookupHost(src.tableValue, idx, src.heads, 1, n, false);
    return e.w.initializer(`${e.base}/relpos_cls_bias`, "float", [1, src.heads, 1, n], bias);
  }
  const lookup = sharedLookup(e, src.table(), e.w.i32(idx, [1, n]), 1, n);
  return e.reshape(lookup, [1, src.heads, 1, n]);
}

/** Dense attention's bias: all rows [Bi, H, N, N] and the CLS row [1, H, 1, N]. */
export function denseRelPosBias(
  ctx: LowerContext,
  src: BiasInputs,
  n: number,
): { full: string; clsRow: string } {
  const bi = src.idxBatch;
  const full = biasFrom(
    ctx,
    src,
    {
      host: () => denseIndexHost(ctx, src, n),
      graph: () =>
        ctx.memo(`dense-relpos-index:${src.tokenIdxKey}:${src.window.join("x")}`, () =>
          denseIndexGraph(ctx, src, n),
        ),
      memoKey: `dense-relpos-host-index:${src.tokenIdxKey}:${src.window.join("x")}`,
    },
    { p: bi, q: n * n, perHead: false, maskRow: false, repeat: 1 },
    [bi, src.heads, n, n],
  );
  return { full, clsRow: clsRowBias(ctx, src, n) };
}

/**
 * Block-sparse attention's local bias for one block group, as [B·Mb, H, bs, K]
 * (`blockRows`: MultiHeadAttention's attention_bias over the B·Mb blocks, a batch-1 token
 * index repeated over the batch) or [Bi, H, Mb, bs, K]; -∞ at excluded slots and cleared
 * pairs (the table's extra row P + 3).
 */
export function sparseRelPosBias(
  ctx: LowerContext,
  src: BiasInputs,
  s: SparseGroup,
  blockRows: boolean,
): string {
  const bi = src.idxBatch;
  const count = s.group.blocks.length;
  const { keys } = s.group;
  const [p, q] = blockRows ? [bi * count, s.bs * keys] : [bi, count * s.bs * keys];
  const repeat = blockRows ? s.batch / bi : 1;
  const shape = blockRows
    ? [s.batch * count, s.heads, s.bs, keys]
    : [bi, s.heads, count, s.bs, keys];
  return biasFrom(
    ctx,
    src,
    {
      host: () => sparseIndexHost(ctx, src, s),
      graph: () => sparseIndexGraph(ctx, src, s),
      memoKey: null,
    },
    { p, q, perHead: s.layoutHeads > 1, maskRow: s.excludes, repeat },
    shape,
  );
}
