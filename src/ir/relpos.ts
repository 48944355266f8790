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
