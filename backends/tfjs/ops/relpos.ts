import * as tf from "@tensorflow/tfjs-core";
import { type Node, nodeLabel } from "../../../src/ir/graph.js";
import { relPosCode, relPosLinear, type RelPosWindow } from "../../../src/ir/relpos.js";

/**
 * The 3-D relative position bias (src/ir/relpos.ts), in a form that vectorises.
 *
 * Position ids: 0 for the CLS token (sequence position 0), tokenIdx[i - 1] + 1 for position
 * i ≥ 1. For ids a (query) and c (key) the table row is
 *   a = 0: c = 0 ? P + 2 : P;   c = 0 (a ≠ 0): P + 1;   else U(a) - U(c) + K0,
 * because relPosIndex's ((Δt + T-1)(2Hw-1) + (Δh + Hw-1))(2Ww-1) + (Δw + Ww-1) is linear in
 * the coordinate differences: with U(id) = t·(2Hw-1)(2Ww-1) + h·(2Ww-1) + w for the window
 * coordinates (t, h, w) of token id - 1, and K0 = U evaluated at (T-1, Hw-1, Ww-1).
 * Padded keys of block-sparse attention carry id 0 (the reference pads token indices with
 * the CLS index), so they read the token→CLS row P + 1.
 */
/** Keys of one attention row set, prepared for RelPos.fillRow. */
export interface KeySet {
  /** U(id) of every key (0 for CLS and masked keys). */
  readonly u: Int32Array;
  /** Slots whose key has the CLS id 0. */
  readonly cls: readonly number[];
  /** Slots whose key is masked out. */
  readonly masked: readonly number[];
}

export class RelPos {
  readonly pairs: number;
  readonly k0: number;
  readonly tokens: number;
  /** U(id) for id in [1, tokens]; U[0] is unused. */
  readonly u: Int32Array;

  constructor(readonly window: RelPosWindow) {
    // The core's linear form of the index (src/ir/relpos.ts): U is its code, K0 its offset.
    const lin = relPosLinear(window);
    this.pairs = lin.clsToToken;
    this.k0 = lin.offset;
    this.tokens = lin.windowTokens;
    this.u = new Int32Array(this.tokens + 1);
    for (let o = 0; o < this.tokens; o++) this.u[o + 1] = relPosCode(lin, o);
  }

  /** Table row for query id a and key id c. */
  index(a: number, c: number): number {
    if (a === 0) return c === 0 ? this.pairs + 2 : this.pairs;
    if (c === 0) return this.pairs + 1;
    return this.u[a]! - this.u[c]! + this.k0;
  }

  /**
   * Table rows of query id `a` against a key set: out[s] = index(a, id_s), or -1 where the
   * key is masked out. The key set is given as `keys` (see keySet): U of every key, and the
   * slots holding the CLS id 0 or a masked key, patched after the common case
   * out[s] = U(a) + K0 - U(id_s).
   */
  fillRow(a: number, keys: KeySet, out: Int32Array): void {
    const { u, cls, masked } = keys;
    if (a === 0) {
      out.fill(this.pairs);
      for (const s of cls) out[s] = this.pairs + 2;
    } else {
      const base = this.u[a]! + this.k0;
      for (let s = 0; s < u.length; s++) out[s] = base - u[s]!;
      for (const s of cls) out[s] = this.pairs + 1;
    }
    for (const s of masked) out[s] = -1;
  }

  /** A key set from key ids (-1: masked out). */
  keySet(ids: Int32Array): KeySet {
    const u = new Int32Array(ids.length);
    const cls: number[] = [];
    const masked: number[] = [];
    ids.forEach((id, s) => {
      if (id < 0) masked.push(s);
      else if (id === 0) cls.push(s);
      else u[s] = this.u[id]!;
    });
    return { u, cls, masked };
  }

  /**
   * Position ids of the n sequence positions for batch row `row` of tokenIdx [rows, len]
   * (a RangeError naming the node when an index lies outside the window).
   */
  ids(node: Node, tokenIdx: Int32Array, len: number, row: number, n: number): Int32Array {
    const ids = new Int32Array(n);
    for (let i = 1; i < n; i++) {
      const original = tokenIdx[row * len + i - 1]!;
      if (!(original >= 0 && original < this.tokens)) {
        throw new RangeError(
          `tfjs: ${nodeLabel(node)}: token index ${original} (batch ${row}, position ${i - 1}) outside the ${this.tokens}-token window`,
        );
      }
      ids[i] = original + 1;
    }
    return ids;
  }

  /**
   * Device version for the "device" strategy: flat table positions index·H + h for query
   * ids `a` and key ids `c` (int32 tensors broadcasting against each other and against
   * `head`, an int32 tensor of head numbers), so that gathering the flattened [P+3, H] table
   * at them yields the bias. Range checks happen in tf.gather.
   */
  deviceFlatIndex(a: tf.Tensor, c: tf.Tensor, heads: number, head: tf.Tensor): tf.Tensor {
    const [, hw, ww] = this.window;
    const frame = hw * ww;
    const { rowStride: sh, frameStride: st } = relPosLinear(this.window);
    const u = (ids: tf.Tensor) => {
      const o = tf.sub(ids, tf.scalar(1, "int32"));
      const t = tf.floorDiv(o, tf.scalar(frame, "int32"));
      const r = tf.sub(o, tf.mul(t, tf.scalar(frame, "int32")));
      const h = tf.floorDiv(r, tf.scalar(ww, "int32"));
      const w = tf.sub(r, tf.mul(h, tf.scalar(ww, "int32")));
      return tf.add(
        tf.add(tf.mul(t, tf.scalar(st, "int32")), tf.mul(h, tf.scalar(sh, "int32"))),
        w,
      );
    };
    // The case split of `index` as integer arithmetic on 0/1 flags rather than tf.where:
    // tfjs-webgl's Select kernel stops at rank 4 and block-sparse biases are rank 5.
    //   index = aCls ? P + 2·cCls : (cCls ? P + 1 : local)
    const zero = tf.scalar(0, "int32");
    const one = tf.scalar(1, "int32");
    const aCls = tf.cast(tf.equal(a, zero), "int32");
    const cCls = tf.cast(tf.equal(c, zero), "int32");
    const local = tf.add(tf.sub(u(a), u(c)), tf.scalar(this.k0, "int32"));
    const fromCls = tf.add(tf.scalar(this.pairs, "int32"), tf.mul(cCls, tf.scalar(2, "int32")));
    const toCls = tf.add(
      tf.mul(cCls, tf.scalar(this.pairs + 1, "int32")),
      tf.mul(tf.sub(one, cCls), local),
    );
    const index = tf.add(tf.mul(aCls, fromCls), tf.mul(tf.sub(one, aCls), toCls));
    return tf.add(tf.mul(index, tf.scalar(heads, "int32")), head);
  }
}
