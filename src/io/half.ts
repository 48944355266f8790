/**
 * 16-bit float formats as bit patterns, and their exact conversions to and from float32.
 *
 *   float16  (IEEE binary16): sign 1 | exponent 5 (bias 15)  | mantissa 10
 *   bfloat16:                 sign 1 | exponent 8 (bias 127) | mantissa 7
 *   float32:                  sign 1 | exponent 8 (bias 127) | mantissa 23
 *
 * Both widenings are exact (every 16-bit value is a float32), and keep NaN payloads.
 * Narrowing float32 to float16 rounds to nearest, ties to even, as PyTorch's `.half()`.
 */

/** Float32 views over 32-bit words, to set exact bit patterns (NaN payloads included). */
function float32FromWords(words: Uint32Array): Float32Array {
  return new Float32Array(words.buffer, words.byteOffset, words.length);
}

/**
 * float16 bits -> float32 bits. A normal half value (-1)^s · 2^(e-15) · 1.m becomes
 * exponent e - 15 + 127 with the mantissa shifted left by 13. A subnormal 2^-14 · 0.m is
 * normalised: shift m left until its leading one reaches bit 10, lowering the exponent
 * once per shift.
 */
function float16BitsToFloat32Bits(half: number): number {
  const sign = (half & 0x8000) << 16;
  const exponent = (half >> 10) & 0x1f;
  let mantissa = half & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent !== 0) return (sign | ((exponent + 112) << 23) | (mantissa << 13)) >>> 0;
  if (mantissa === 0) return sign >>> 0;
  let shifted = 0;
  while ((mantissa & 0x400) === 0) {
    mantissa <<= 1;
    shifted++;
  }
  // Leading one at bit 10 now means 2^(-14 - shifted) · 1.m'; float32 exponent 113 - shifted.
  return (sign | ((113 - shifted) << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
}

/** Widens float16 bit patterns to float32, exactly. */
export function float16BitsToFloat32(bits: Uint16Array): Float32Array {
  const words = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) words[i] = float16BitsToFloat32Bits(bits[i]!);
  return float32FromWords(words);
}

/** Widens bfloat16 bit patterns to float32, exactly: bfloat16 is float32's top half. */
export function bfloat16BitsToFloat32(bits: Uint16Array): Float32Array {
  const words = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) words[i] = bits[i]! << 16;
  return float32FromWords(words);
}

/**
 * float32 bits -> float16 bits, round to nearest, ties to even.
 *
 * With the half exponent e = E - 127 + 15 (E the float32 exponent field):
 *   e >= 31: overflow to infinity;
 *   1 <= e <= 30: keep the top 10 of 23 mantissa bits and round on the 13 dropped ones;
 *     a carry out of the mantissa correctly bumps the exponent (up to infinity);
 *   e <= 0: subnormal result q · 2^-24 with q = (1.m · 2^23) >> (14 - e), rounded on the
 *     dropped bits; q can round up to 0x400, the smallest normal, whose bits are the same.
 * NaN stays NaN (quiet, with the payload's top bits).
 */
function float32BitsToFloat16Bits(word: number): number {
  const sign = (word >>> 16) & 0x8000;
  const exponent = (word >>> 23) & 0xff;
  const mantissa = word & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200 | (mantissa >>> 13));
  const halfExponent = exponent - 112;
  if (halfExponent >= 31) return sign | 0x7c00;
  if (halfExponent >= 1) {
    const rounded = roundShiftRightEven(mantissa, 13);
    return sign | ((halfExponent << 10) + rounded);
  }
  const shift = 14 - halfExponent;
  // Values below half the smallest subnormal (2^-25) round to zero; 24 bits of 1.m fit.
  if (shift > 24) return sign;
  return sign | roundShiftRightEven(mantissa | 0x800000, shift);
}

/** value >> shift, rounded to nearest with ties to even, for 1 <= shift <= 24. */
function roundShiftRightEven(value: number, shift: number): number {
  const kept = value >>> shift;
  const dropped = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return dropped > half || (dropped === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** Narrows float32 values to float16 bit patterns, round to nearest, ties to even. */
export function float32ToFloat16Bits(values: Float32Array): Uint16Array {
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) bits[i] = float32BitsToFloat16Bits(words[i]!);
  return bits;
}
