import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { readSafetensors } from "../../src/io/safetensors.js";
import {
  hilbertCodes,
  TOKEN_ORDER_KINDS,
  type TokenWindow,
  tokenOrder,
  zCurveCodes,
} from "../../src/models/token-order.js";

/** The g1 case, found next to the checkout (../shared); a missing file fails the test. */
const G1 = fileURLToPath(
  new URL("../../../shared/conformance/g1_token_order.safetensors", import.meta.url),
);

/** True when perm holds every value 0..n-1 exactly once. */
function isPermutation(perm: Int32Array): boolean {
  const seen = new Uint8Array(perm.length);
  for (const value of perm) {
    if (value < 0 || value >= perm.length || seen[value] === 1) {
      return false;
    }
    seen[value] = 1;
  }
  return true;
}

/** (t, h, w) of a token index in C order. */
function coordsOf(index: number, [, H, W]: TokenWindow): [number, number, number] {
  return [Math.floor(index / (H * W)), Math.floor(index / W) % H, index % W];
}

describe("token order: SViTT conformance case g1", () => {
  const cases = [
    ["zcurve", [4, 14, 14]],
    ["hilbert", [4, 14, 14]],
    ["zcurve", [8, 14, 14]],
    ["hilbert", [8, 14, 14]],
  ] as const;

  for (const [kind, window] of cases) {
    const name = `expected.${kind}.order.${window.join("x")}`;
    it(`${name} matches exactly`, async () => {
      const expected = (await readSafetensors(G1)).tensors.get(name);
      // The file stores I64; the reader narrows integer tensors to i32.
      expect(expected?.dtype).toBe("i32");
      if (expected === undefined) throw new Error(`${G1} has no tensor ${name}`);
      const got = tokenOrder(kind, window);
      expect(got).not.toBeNull();
      expect(expected.shape).toEqual([window[0] * window[1] * window[2]]);
      expect(Array.from(got!)).toEqual(Array.from(expected.data));
      expect(isPermutation(got!)).toBe(true);
    });
  }
});

describe("token order: hand-checked cases", () => {
  it("zcurve (1,2,2): t is the lowest bit of each triple, then h, then w", () => {
    // nbits = bit_length(2) = 2. Tokens in C order: 0=(0,0,0) 1=(0,0,1) 2=(0,1,0) 3=(0,1,1).
    // code = sum bit_j(c_i) << (3j + i) with (c_0, c_1, c_2) = (t, h, w):
    //   token 1: w=1 -> 1 << 2 = 4;  token 2: h=1 -> 1 << 1 = 2;  token 3: 4 + 2 = 6.
    // Codes [0, 4, 2, 6] sort to tokens [0, 2, 1, 3]: the curve walks down h before along w.
    expect(Array.from(zCurveCodes([1, 2, 2]))).toEqual([0, 4, 2, 6]);
    expect(Array.from(tokenOrder("zcurve", [1, 2, 2])!)).toEqual([0, 2, 1, 3]);
  });

  it("zcurve (2,2,1): frames interleave fastest", () => {
    // Tokens 0=(0,0,0) 1=(0,1,0) 2=(1,0,0) 3=(1,1,0). Codes: h=1 -> 2, t=1 -> 1, both -> 3.
    // Codes [0, 2, 1, 3] sort to [0, 2, 1, 3]: frame 1 of a patch follows frame 0 directly.
    expect(Array.from(zCurveCodes([2, 2, 1]))).toEqual([0, 2, 1, 3]);
    expect(Array.from(tokenOrder("zcurve", [2, 2, 1])!)).toEqual([0, 2, 1, 3]);
  });

  it("hilbert (1,1,2): Skilling's transpose by hand", () => {
    // nbits = 2, top bit Q = 2. Token 1 has X = (t, h, w) = (0, 0, 1).
    // Inverse undo, Q = 2, P = 1: bit 2 is clear in every X_i, so each i exchanges the low bit
    //   of X_0 and X_i: i = 0, 1 swap zeros; i = 2 swaps -> X = (1, 0, 0).
    // Gray encode: X_1 ^= X_0 -> 1, X_2 ^= X_1 -> 1, so X = (1, 1, 1); X_2 has no bit 2 set,
    //   so no final flip.
    // Interleave (X_0 most significant in a group): bit plane 0 = 1,1,1 -> code 0b111 = 7.
    expect(Array.from(hilbertCodes([1, 1, 2]))).toEqual([0, 7]);
    expect(Array.from(tokenOrder("hilbert", [1, 1, 2])!)).toEqual([0, 1]);
  });

  it("hilbert (2,2,2) visits the cube corners with unit steps from the origin", () => {
    // 0=(0,0,0) 2=(0,1,0) 6=(1,1,0) 4=(1,0,0) 5=(1,0,1) 7=(1,1,1) 3=(0,1,1) 1=(0,0,1)
    expect(Array.from(tokenOrder("hilbert", [2, 2, 2])!)).toEqual([0, 2, 6, 4, 5, 7, 3, 1]);
  });
});

describe("token order: structural properties", () => {
  const windows: TokenWindow[] = [
    [1, 1, 1],
    [1, 3, 5],
    [2, 7, 7],
    [3, 1, 16],
    [4, 14, 14],
    [16, 2, 9],
  ];

  it("every curve order is a permutation with unique codes", () => {
    for (const window of windows) {
      for (const codesOf of [zCurveCodes, hilbertCodes]) {
        const codes = codesOf(window);
        expect(new Set(codes).size).toBe(codes.length);
      }
      for (const kind of ["zcurve", "hilbert"] as const) {
        const perm = tokenOrder(kind, window)!;
        expect(perm.length).toBe(window[0] * window[1] * window[2]);
        expect(isPermutation(perm)).toBe(true);
      }
    }
  });

  it("on a (4,4,4) window both curves fill the low octant: codes are exactly 0..63", () => {
    // nbits = bit_length(4) = 3, but coordinates < 4 leave the top bit clear; both curves
    // cover the origin octant first, so the 64 codes are 0..63.
    for (const codesOf of [zCurveCodes, hilbertCodes]) {
      const sorted = Array.from(codesOf([4, 4, 4])).sort((a, b) => a - b);
      expect(sorted).toEqual(Array.from({ length: 64 }, (_, k) => k));
    }
  });

  it("on (4,4,4) and (8,8,8) the hilbert order moves one unit along one axis at a time", () => {
    for (const window of [
      [4, 4, 4],
      [8, 8, 8],
    ] as const) {
      const perm = tokenOrder("hilbert", window)!;
      for (let p = 1; p < perm.length; p++) {
        const a = coordsOf(perm[p - 1]!, window);
        const b = coordsOf(perm[p]!, window);
        const distance = a.reduce((sum, c, i) => sum + Math.abs(c - b[i]!), 0);
        expect(distance).toBe(1);
      }
    }
  });

  it('"none" returns null and every kind is listed', () => {
    expect(tokenOrder("none", [4, 14, 14])).toBeNull();
    expect([...TOKEN_ORDER_KINDS].sort()).toEqual(["hilbert", "none", "zcurve"]);
  });
});

describe("token order: invalid windows", () => {
  const bad: [string, TokenWindow][] = [
    ["zero", [0, 14, 14]],
    ["negative", [4, -1, 14]],
    ["fractional", [4, 14, 2.5]],
    ["NaN", [Number.NaN, 14, 14]],
    ["infinite", [4, Number.POSITIVE_INFINITY, 14]],
  ];
  for (const [label, window] of bad) {
    it(`rejects a ${label} dim with a RangeError`, () => {
      for (const kind of TOKEN_ORDER_KINDS) {
        expect(() => tokenOrder(kind, window)).toThrow(RangeError);
      }
      expect(() => zCurveCodes(window)).toThrow(/positive integer/);
      expect(() => hilbertCodes(window)).toThrow(/positive integer/);
    });
  }

  it("rejects windows whose codes exceed 53 bits, naming the window", () => {
    // max dim 2^17 -> nbits = 18 -> 54 bits.
    const window: TokenWindow = [1, 1, 2 ** 17];
    expect(() => zCurveCodes(window)).toThrow(/\(1, 1, 131072\).*54 bits/);
    expect(() => tokenOrder("hilbert", window)).toThrow(RangeError);
  });

  it("rejects windows with more tokens than Int32 indices hold", () => {
    expect(() => tokenOrder("zcurve", [2048, 1024, 1024])).toThrow(/Int32/);
  });

  it("rejects windows that are not 3-D", () => {
    const flat = [14, 14] as unknown as TokenWindow;
    expect(() => tokenOrder("zcurve", flat)).toThrow(/3 dims/);
  });
});
