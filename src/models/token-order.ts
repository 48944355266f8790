/**
 * 3-D token orderings for video tokens: space-filling curves over the (T, H, W) patch grid,
 * as built by SViTT's `BeitEncoder._register_token_order`.
 *
 * The math, for a window (T, H, W):
 *
 *   - Tokens are enumerated in C order (numpy `np.ndindex(T, H, W)`): the token at coordinate
 *     (t, h, w) has index t*H*W + h*W + w. Coordinate i of a token is c_0 = t, c_1 = h, c_2 = w.
 *   - nbits = bit_length(max(T, H, W)), e.g. 4 for 14 and 4 for 8 (8 = 0b1000). Every coordinate
 *     is < max(T, H, W) < 2^nbits, so nbits bits hold it.
 *   - zcurve (Morton order): code = sum over dims i in {0,1,2} and bits j in [0, nbits) of
 *     bit_j(c_i) * 2^(3j + i). Within each 3-bit group the FIRST coordinate (t) is the LEAST
 *     significant bit, then h, then w (this is zCurve 0.0.4 `par_interlace`, and the conformance
 *     data g1 confirms it).
 *   - hilbert: Skilling's algorithm ("Programming the Hilbert curve", AIP Conf. Proc. 707, 2004),
 *     as numpy-hilbert-curve 1.0.1 `encode(coords, 3, nbits)` applies it:
 *       1. "inverse undo excess work": for Q = 2^(nbits-1) down to 2, with P = Q - 1, for each
 *          dim i: if bit Q of X_i is set, invert the low bits of X_0 (X_0 ^= P); otherwise swap
 *          the low bits of X_0 and X_i;
 *       2. Gray encode: X_i ^= X_{i-1} for i = 1..n-1, then, for every Q whose bit is set in
 *          X_{n-1}, flip the bits below it (t ^= Q - 1) in every X_i. The X_i are now the
 *          "transpose" of the Hilbert index;
 *       3. interleave: the index reads the transpose bit-plane by bit-plane from the most
 *          significant one, and within a plane X_0 first, so
 *          code = sum over i, j of bit_j(X_i) * 2^(3j + (2 - i)). Note this is the opposite
 *          within-group order from the zcurve above.
 *   - order = argsort(code). Codes of distinct coordinates are distinct (both encodings are
 *     bijections on the 2^nbits cube), so the sort has no ties and stability is moot.
 *
 * The result is a permutation `perm` of 0..T*H*W-1: position p of the reordered sequence holds
 * original token perm[p]. The encoder index-selects the local tokens with it and then passes it
 * as `token_idx` to every layer (for relative position bias lookups in original numbering).
 *
 * Codes are kept as JS numbers (float64, exact integers below 2^53) because 3*nbits bits exceed
 * the 32 bits of JS bitwise operators as soon as nbits > 10; the per-coordinate bit twiddling
 * stays within 32 bits (nbits <= 17) and composing the code uses multiplication, not shifts.
 */

export type TokenOrderKind = "none" | "zcurve" | "hilbert";

export const TOKEN_ORDER_KINDS: readonly TokenOrderKind[] = ["none", "zcurve", "hilbert"];

/** A video token window: (frames T, patch rows H, patch columns W). */
export type TokenWindow = readonly [number, number, number];

const DIMS = 3;

/** Largest token index an Int32Array permutation can hold. */
const MAX_TOKENS = 2 ** 31 - 1;

/** Bits needed for a non-negative integer (Python's int.bit_length()). */
function bitLength(value: number): number {
  let bits = 0;
  let rest = value;
  while (rest > 0) {
    rest = Math.floor(rest / 2);
    bits += 1;
  }
  return bits;
}

function describe(window: TokenWindow): string {
  return `(${window.join(", ")})`;
}

/**
 * Checks the window and returns nbits. Rejects windows whose codes would not be exact numbers
 * (3*nbits > 53) or whose token indices would not fit an Int32Array.
 */
function validateWindow(window: TokenWindow): number {
  if (window.length !== DIMS) {
    throw new RangeError(
      `token order window must have 3 dims (T, H, W), got ${window.length}: ${describe(window)}`,
    );
  }
  const names = ["T", "H", "W"] as const;
  window.forEach((size, i) => {
    if (!Number.isInteger(size) || size < 1) {
      throw new RangeError(
        `token order window ${describe(window)}: ${names[i]} must be a positive integer, got ${size}`,
      );
    }
  });
  const [T, H, W] = window;
  const nbits = bitLength(Math.max(T, H, W));
  if (DIMS * nbits > 53) {
    throw new RangeError(
      `token order window ${describe(window)}: curve codes need ${DIMS * nbits} bits ` +
        `(3 x ${nbits}), more than the 53 a number holds exactly`,
    );
  }
  if (T * H * W > MAX_TOKENS) {
    throw new RangeError(
      `token order window ${describe(window)}: ${T * H * W} tokens exceed the Int32 index range`,
    );
  }
  return nbits;
}

/**
 * Calls visit(index, t, h, w) for every token in C order (index = t*H*W + h*W + w).
 */
function forEachToken(
  window: TokenWindow,
  visit: (index: number, t: number, h: number, w: number) => void,
): void {
  const [T, H, W] = window;
  let index = 0;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++) {
        visit(index, t, h, w);
        index += 1;
      }
    }
  }
}

/**
 * Bit interleaving of three nbits-bit integers into one number:
 * sum over j of bit_j(low) * 2^(3j) + bit_j(mid) * 2^(3j + 1) + bit_j(high) * 2^(3j + 2).
 * Built with multiplication rather than shifts because the result may exceed 32 bits.
 */
function interleave3(low: number, mid: number, high: number, nbits: number): number {
  let code = 0;
  let place = 1; // 2^(3j)
  for (let j = 0; j < nbits; j++) {
    const group = ((low >>> j) & 1) | (((mid >>> j) & 1) << 1) | (((high >>> j) & 1) << 2);
    code += group * place;
    place *= 8;
  }
  return code;
}

/**
 * Morton (Z-order) codes of every token, in token index order:
 * code = sum of bit_j(c_i) * 2^(3j + i) with (c_0, c_1, c_2) = (t, h, w).
 */
export function zCurveCodes(window: TokenWindow): Float64Array {
  const nbits = validateWindow(window);
  const [T, H, W] = window;
  const codes = new Float64Array(T * H * W);
  forEachToken(window, (index, t, h, w) => {
    codes[index] = interleave3(t, h, w, nbits);
  });
  return codes;
}

/**
 * Skilling's AxesToTranspose, in place on x (length n, each entry < 2^nbits): afterwards x holds
 * the Hilbert index in "transpose" form (bit-plane j of the index spread over bit j of x[0..n)).
 */
function axesToTranspose(x: Int32Array, nbits: number): void {
  const n = x.length;
  const top = 1 << (nbits - 1);
  // Inverse undo excess work: walk the bit levels from the top, undoing the reflections
  // (invert) and rotations (exchange with x[0]) that the decoder would apply at that level.
  for (let q = top; q > 1; q >>>= 1) {
    const lowMask = q - 1;
    for (let i = 0; i < n; i++) {
      if ((x[i]! & q) !== 0) {
        x[0] = x[0]! ^ lowMask;
      } else {
        const swap = (x[0]! ^ x[i]!) & lowMask;
        x[0] = x[0]! ^ swap;
        x[i] = x[i]! ^ swap;
      }
    }
  }
  // Gray encode across dims, then fold the parity of the last dim back into every dim.
  for (let i = 1; i < n; i++) {
    x[i] = x[i]! ^ x[i - 1]!;
  }
  let flip = 0;
  for (let q = top; q > 1; q >>>= 1) {
    if ((x[n - 1]! & q) !== 0) {
      flip ^= q - 1;
    }
  }
  for (let i = 0; i < n; i++) {
    x[i] = x[i]! ^ flip;
  }
}

/**
 * Hilbert codes of every token, in token index order (Skilling's transpose algorithm, then
 * interleaving with coordinate 0 as the most significant bit of each 3-bit group).
 */
export function hilbertCodes(window: TokenWindow): Float64Array {
  const nbits = validateWindow(window);
  const [T, H, W] = window;
  const codes = new Float64Array(T * H * W);
  const transpose = new Int32Array(DIMS);
  forEachToken(window, (index, t, h, w) => {
    transpose[0] = t;
    transpose[1] = h;
    transpose[2] = w;
    axesToTranspose(transpose, nbits);
    // X_0 is the most significant bit of each group, so it goes in the "high" slot.
    codes[index] = interleave3(transpose[2]!, transpose[1]!, transpose[0]!, nbits);
  });
  return codes;
}

/** Token indices sorted by code (ascending; ties, which valid codes never have, keep index order). */
function argsort(codes: Float64Array): Int32Array {
  const order = new Int32Array(codes.length);
  for (let i = 0; i < order.length; i++) {
    order[i] = i;
  }
  // TypedArray.prototype.sort is stable (ES2019+), so equal codes would keep index order.
  return order.sort((a, b) => codes[a]! - codes[b]!);
}

/**
 * The token permutation for a curve over the window (T, H, W), or null for "none".
 * Position p of the reordered sequence holds original token perm[p] (index t*H*W + h*W + w).
 */
export function tokenOrder(kind: TokenOrderKind, window: TokenWindow): Int32Array | null {
  switch (kind) {
    case "none":
      validateWindow(window);
      return null;
    case "zcurve":
      return argsort(zCurveCodes(window));
    case "hilbert":
      return argsort(hilbertCodes(window));
    default: {
      const unknown: never = kind;
      throw new RangeError(
        `unknown token order "${String(unknown)}" (expected one of ${TOKEN_ORDER_KINDS.join(", ")})`,
      );
    }
  }
}
