import { describe, expect, it } from "vitest";
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToFloat16Bits,
} from "../../src/io/half.js";

/** All 65536 16-bit patterns. */
const ALL_BITS = Uint16Array.from({ length: 1 << 16 }, (_, i) => i);

/**
 * float16 decoded from its definition, in float64 arithmetic:
 * (-1)^s · 2^(e-15) · (1 + m/1024) for 0 < e < 31, (-1)^s · m · 2^-24 for e = 0.
 */
function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * 2 ** (exponent - 15) * (1 + mantissa / 1024);
}

const isNaNBits = (bits: number) => (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;

describe("float16 <-> float32", () => {
  it("widens every float16 pattern to its exact value (signed zeros and infinities too)", () => {
    const widened = float16BitsToFloat32(ALL_BITS);
    const wrong = [...ALL_BITS].filter((bits) => {
      const expected = float16Value(bits);
      const got = widened[bits]!;
      return Number.isNaN(expected) ? !Number.isNaN(got) : !Object.is(got, expected);
    });
    expect(wrong).toEqual([]);
  });

  it("narrows every float16 value back to its own pattern", () => {
    const back = float32ToFloat16Bits(float16BitsToFloat32(ALL_BITS));
    const wrong = [...ALL_BITS].filter((bits) =>
      isNaNBits(bits) ? !isNaNBits(back[bits]!) : back[bits] !== bits,
    );
    expect(wrong).toEqual([]);
  });

  it("rounds midpoints between neighbouring float16 values to the even one", () => {
    // Positive finite patterns 0 .. 0x7bff; the midpoint of h and h + 1 is a float32
    // (float16 has 11 significant bits, the midpoint 12) and must go to the even pattern;
    // the float32 neighbours just below and above it go to h and h + 1.
    const wrong: string[] = [];
    const patterns = Array.from({ length: 0x7bff }, (_, i) => i);
    const midpoints = patterns.map((bits) => (float16Value(bits) + float16Value(bits + 1)) / 2);
    const rounded = float32ToFloat16Bits(Float32Array.from(midpoints));
    const below = float32ToFloat16Bits(Float32Array.from(midpoints, (mid) => nextFloat32(mid, -1)));
    const above = float32ToFloat16Bits(Float32Array.from(midpoints, (mid) => nextFloat32(mid, 1)));
    for (const bits of patterns) {
      const even = bits % 2 === 0 ? bits : bits + 1;
      if (Math.fround(midpoints[bits]!) !== midpoints[bits]) wrong.push(`${bits}: not a float32`);
      if (rounded[bits] !== even) wrong.push(`${bits}: midpoint -> ${rounded[bits]}`);
      if (below[bits] !== bits) wrong.push(`${bits}: below midpoint -> ${below[bits]}`);
      if (above[bits] !== bits + 1) wrong.push(`${bits}: above midpoint -> ${above[bits]}`);
    }
    expect(wrong).toEqual([]);
  });

  it("overflows to infinity from 65520 (the midpoint above the largest finite) up", () => {
    const bits = float32ToFloat16Bits(
      Float32Array.of(65504, 65519.996, 65520, 1e6, -70000, Number.POSITIVE_INFINITY),
    );
    expect([...bits]).toEqual([0x7bff, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x7c00]);
  });

  it("flushes values below half the smallest subnormal to signed zero", () => {
    const bits = float32ToFloat16Bits(
      Float32Array.of(2 ** -25, 2 ** -25 * 1.0001, -(2 ** -26), 1e-30),
    );
    expect([...bits]).toEqual([0x0000, 0x0001, 0x8000, 0x0000]);
  });

  it("keeps NaN a NaN", () => {
    const bits = float32ToFloat16Bits(Float32Array.of(Number.NaN));
    expect(isNaNBits(bits[0]!)).toBe(true);
  });
});

describe("bfloat16 -> float32", () => {
  it("widens every pattern to the float32 with those top 16 bits", () => {
    const widened = bfloat16BitsToFloat32(ALL_BITS);
    const words = new Uint32Array(widened.buffer);
    expect([...ALL_BITS].filter((bits) => words[bits] !== bits * 65536)).toEqual([]);
  });
});

/** The neighbouring float32 of a float32 value `x`, towards +/- infinity. */
function nextFloat32(x: number, direction: 1 | -1): number {
  const words = new Uint32Array(Float32Array.of(x).buffer);
  // For positive x, stepping the bit pattern steps the value.
  words[0] = words[0]! + direction;
  return new Float32Array(words.buffer)[0]!;
}
