/**
 * The 3-D relative position bias of SViTT's BEiT layers (BeitRelativePositionBias3D), as
 * op semantics shared by every backend.
 *
 * Window (T, Hw, Ww) of local tokens, one CLS token. Every sequence position has a
 * position id: 0 for CLS, original local index + 1 for local tokens, where the original
 * index of the token at (t, h, w) is t·Hw·Ww + h·Ww + w. The bias of query id a and key
 * id c for head h is table[relPosIndex(a, c), h], table of P + 3 rows with
 * P = (2T-1)(2Hw-1)(2Ww-1).
 */

export type RelPosWindow = readonly [number, number, number];

/** P = (2T-1)(2Hw-1)(2Ww-1): table rows before the three CLS entries. */
export function relPosPairs(window: RelPosWindow): number {
  const [t, h, w] = window;
  return (2 * t - 1) * (2 * h - 1) * (2 * w - 1);
}

/** Rows of the bias table: P + 3 (cls→token, token→cls, cls→cls). */
export function relPosTableRows(window: RelPosWindow): number {
  return relPosPairs(window) + 3;
}

/**
 * Row of the bias table for query id a and key id c: cls→cls (a = c = 0) is P + 2,
 * cls→token (a = 0) is P, token→cls (c = 0) is P + 1, and between local tokens with
 * window coordinates of a - 1 and c - 1 and Δ = coord_a - coord_c:
 *   ((Δt + T - 1)(2Hw - 1) + (Δh + Hw - 1))(2Ww - 1) + (Δw + Ww - 1).
 */
export function relPosIndex(window: RelPosWindow, a: number, c: number): number {
  const [tw, hw, ww] = window;
  const pairs = relPosPairs(window);
  if (a === 0) return c === 0 ? pairs + 2 : pairs;
  if (c === 0) return pairs + 1;
  const frame = hw * ww;
  const ia = a - 1;
  const ic = c - 1;
  const dt = Math.floor(ia / frame) - Math.floor(ic / frame);
  const dh = Math.floor((ia % frame) / ww) - Math.floor((ic % frame) / ww);
  const dw = (ia % ww) - (ic % ww);
  return ((dt + tw - 1) * (2 * hw - 1) + (dh + hw - 1)) * (2 * ww - 1) + (dw + ww - 1);
}

/**
 * The linear form of relPosIndex, which every fast kernel uses. With code(i) = t·A + h·B + w
 * for the local token of original index i = t·Hw·Ww + h·Ww + w, A = (2Hw-1)(2Ww-1) and
 * B = 2Ww-1, the row between two local tokens is
 *   ((Δt + T-1)(2Hw-1) + Δh + Hw-1)(2Ww-1) + Δw + Ww-1 = code(a) - code(c) + offset,
 *   offset = (T-1)·A + (Hw-1)·B + Ww-1,
 * one subtraction per (query, key) pair; the rows involving the CLS token are constants.
 */
export interface RelPosLinear {
  readonly window: RelPosWindow;
  /** Local tokens of the window, T·Hw·Ww: original indices lie in [0, windowTokens). */
  readonly windowTokens: number;
  readonly tableRows: number;
  /** Code strides of a frame (A) and of a row (B); a column step is 1. */
  readonly frameStride: number;
  readonly rowStride: number;
  readonly offset: number;
  /** Rows of the pairs with the CLS token: cls→token P, token→cls P + 1, cls→cls P + 2. */
  readonly clsToToken: number;
  readonly tokenToCls: number;
  readonly clsToCls: number;
}

export function relPosLinear(window: RelPosWindow): RelPosLinear {
  const [t, h, w] = window;
  const rowStride = 2 * w - 1;
  const frameStride = (2 * h - 1) * rowStride;
  const pairs = relPosPairs(window);
  return {
    window,
    windowTokens: t * h * w,
    tableRows: relPosTableRows(window),
    frameStride,
    rowStride,
    offset: (t - 1) * frameStride + (h - 1) * rowStride + (w - 1),
    clsToToken: pairs,
    tokenToCls: pairs + 1,
    clsToCls: pairs + 2,
  };
}

/** code(i) of the local token with original index i (in [0, windowTokens)). */
export function relPosCode(lin: RelPosLinear, original: number): number {
  const [, h, w] = lin.window;
  const frame = Math.floor(original / (h * w));
  const inFrame = original - frame * h * w;
  const row = Math.floor(inFrame / w);
  return frame * lin.frameStride + row * lin.rowStride + (inFrame - row * w);
}

/**
 * Codes of every local token of a token index [rows, len] (original indices), as one
 * Int32Array [rows, len]; `onOutside` is called (and must throw) for an index outside the
 * window, with its batch row and position.
 */
export function relPosCodes(
  lin: RelPosLinear,
  tokenIdx: Int32Array,
  len: number,
  onOutside: (original: number, row: number, position: number) => never,
): Int32Array {
  const codes = new Int32Array(tokenIdx.length);
  for (let i = 0; i < tokenIdx.length; i++) {
    const original = tokenIdx[i]!;
    if (!(original >= 0 && original < lin.windowTokens)) {
      onOutside(original, Math.floor(i / len), i % len);
    }
    codes[i] = relPosCode(lin, original);
  }
  return codes;
}
