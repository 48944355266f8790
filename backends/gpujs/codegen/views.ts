/**
 * How tensors live on the device, and the index arithmetic kernels use to read them.
 *
 * gpu.js kernels index their arguments at most three levels deep (`t[z][y][x]`) and produce
 * outputs of at most three dimensions, so every tensor is stored as a 3-D array, its *view*
 * (Z, Y, X), row-major like the host tensor:
 *   rank 1 [a]          -> (1, 1, a)
 *   rank 2 [a, b]       -> (1, a, b)
 *   rank 3 [a, b, c]    -> (a, b, c)
 *   rank r >= 4         -> (s0·s1···s(r-3), s(r-2), s(r-1))   (leading axes merged into Z)
 * A kernel's thread (x, y, z) computes the element at view position [z][y][x] of its output.
 *
 * All index arithmetic in generated kernels stays in values that float32 represents exactly
 * (GLSL ES 1.0 computes with floats): integer division by a constant d is written
 * floor((a + 0.5) / d), which is exact while a·2^-22 < 0.5/d, i.e. for the small quotients
 * it is used for here (heads, frames, rows of merged axes). Callers check the bound.
 */

/** The (Z, Y, X) sizes of a tensor's device view. */
export interface View {
  readonly z: number;
  readonly y: number;
  readonly x: number;
}

/** Largest dividend for which floorDiv is exact in float32 arithmetic. */
export const EXACT_DIVIDEND_LIMIT = 1 << 21;

export function viewOf(shape: readonly number[]): View {
  const r = shape.length;
  if (r === 0) return { z: 1, y: 1, x: 1 };
  if (r === 1) return { z: 1, y: 1, x: shape[0]! };
  if (r === 2) return { z: 1, y: shape[0]!, x: shape[1]! };
  let z = 1;
  for (let i = 0; i < r - 2; i++) z *= shape[i]!;
  return { z, y: shape[r - 2]!, x: shape[r - 1]! };
}

/**
 * Texture side every target is assumed to support: 8192 (WebGL2 on SwiftShader, many laptop
 * and mobile GPUs; desktop GPUs have 16384). gpu.js stores a kernel's output in one float32
 * texture: a 2-D view (z = 1) as an x-by-y texture, any other view near-square.
 */
export const TEXTURE_SIDE = 8192;

/**
 * Whether a value with this view is stored in gpu.js's memory-optimized layout (four floats
 * per RGBA texel, near-square; `optimizeFloatMemory`): when the plain layout would not fit a
 * TEXTURE_SIDE texture, such as the [10938, 12] relative-position table at 8 frames (a 2-D
 * view, z = 1 and y > 1, is stored x-by-y: 10938 texels tall) or the dense [12, 3137, 3137] attention logits at 16 frames (more
 * texels than 8192²). Only then: reading packed texels costs extra shader arithmetic.
 */
export function packedLayout(view: View): boolean {
  const tall = view.z === 1 && view.y > 1 && Math.max(view.x, view.y) > TEXTURE_SIDE;
  return tall || view.x * view.y * view.z > TEXTURE_SIDE * TEXTURE_SIDE;
}

/** Texture sides [w, h] gpu.js allocates for a value (see packedLayout). */
export function textureSize(view: View): [number, number] {
  const count = view.x * view.y * view.z;
  if (packedLayout(view)) return nearSquare(Math.ceil(count / 4));
  if (view.z === 1 && view.y > 1) return [view.x, view.y];
  return nearSquare(count);
}

/** The [w, h] of gpu.js's near-square layout: w·h >= count, w close to √count. */
function nearSquare(count: number): [number, number] {
  let high = Math.ceil(Math.sqrt(count));
  let low = Math.floor(Math.sqrt(count));
  while (high * low < count) {
    high--;
    low = Math.ceil(count / high);
  }
  return [low, Math.ceil(count / low)];
}

/** gpu.js output sizes ([x, y, z] order) of a view. */
export function outputSize(view: View): [number, number, number] {
  return [view.x, view.y, view.z];
}

export function sameView(a: View, b: View): boolean {
  return a.x === b.x && a.y === b.y && a.z === b.z;
}

/** An integer literal. */
export function int(n: number): string {
  if (!Number.isSafeInteger(n)) throw new RangeError(`not an integer literal: ${n}`);
  return String(n);
}

/** A float literal that reads as a float in GLSL too (always has a '.' or an exponent). */
export function flt(v: number): string {
  if (!Number.isFinite(v)) throw new RangeError(`not a finite float literal: ${v}`);
  const text = String(v);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/** ⌊a / d⌋ for integer-valued a in [0, EXACT_DIVIDEND_LIMIT), written float32-exactly. */
export function floorDiv(a: string, d: number): string {
  if (d === 1) return a;
  return `Math.floor((${a} + 0.5) / ${int(d)})`;
}

/** `name[z]![y]![x]!`: one element of a device tensor (the `!`s vanish in JavaScript). */
export function at(name: string, z: string, y: string, x: string): string {
  return `${name}[${z}]![${y}]![${x}]!`;
}

/**
 * Statements binding the per-axis indices of the element at view position (z, y, x) of a
 * tensor of `shape`, and those indices as expressions (axis i of the tensor). Merged leading
 * axes are recovered from z by mixed-radix division.
 */
export function axesOfView(
  shape: readonly number[],
  prefix: string,
  coords: { readonly z: string; readonly y: string; readonly x: string } = {
    z: "z",
    y: "y",
    x: "x",
  },
): { readonly lines: string[]; readonly axes: string[] } {
  const r = shape.length;
  if (r === 1) return { lines: [], axes: [coords.x] };
  if (r === 2) return { lines: [], axes: [coords.y, coords.x] };
  if (r === 3) return { lines: [], axes: [coords.z, coords.y, coords.x] };
  // z = ((a0·s1 + a1)·s2 + ...)·s(r-3) + a(r-3): peel the last merged axis first.
  const lines: string[] = [];
  const lead: string[] = new Array<string>(r - 2);
  let rest = coords.z;
  for (let i = r - 3; i >= 1; i--) {
    const q = `${prefix}q${i}`;
    lines.push(`const ${q} = ${floorDiv(rest, shape[i]!)};`);
    lines.push(`const ${prefix}a${i} = ${rest} - ${q} * ${int(shape[i]!)};`);
    lead[i] = `${prefix}a${i}`;
    rest = q;
  }
  lead[0] = rest;
  return { lines, axes: [...lead, coords.y, coords.x] };
}

/** Expression reading element (axes[0], ..., axes[r-1]) of tensor `name` of `shape`. */
export function elementAt(name: string, shape: readonly number[], axes: readonly string[]): string {
  const r = shape.length;
  if (axes.length !== r) throw new RangeError(`${r}-d tensor indexed with ${axes.length} axes`);
  if (r === 1) return at(name, "0", "0", axes[0]!);
  if (r === 2) return at(name, "0", axes[0]!, axes[1]!);
  if (r === 3) return at(name, axes[0]!, axes[1]!, axes[2]!);
  let merged = axes[0]!;
  for (let i = 1; i < r - 2; i++) {
    merged = merged === "0" ? axes[i]! : `(${merged}) * ${int(shape[i]!)} + ${axes[i]}`;
  }
  return at(name, merged, axes[r - 2]!, axes[r - 1]!);
}

/**
 * The axes of an operand of shape `inShape` read at output axes `outAxes` under NumPy
 * broadcasting: shapes align on the right, size-1 axes read index 0.
 */
export function broadcastAxes(
  inShape: readonly number[],
  outShape: readonly number[],
  outAxes: readonly string[],
): string[] {
  const offset = outShape.length - inShape.length;
  return inShape.map((size, i) =>
    size === 1 && outShape[offset + i] !== 1 ? "0" : outAxes[offset + i]!,
  );
}
