import { ConfigError } from "../ir/errors.js";
import type { BlockLayout } from "../ir/pattern.js";
import { layoutFromPredicate } from "./predicate.js";

/**
 * 3-D neighbourhood attention over video tokens, as in NATTEN (Hassani, Walton, Li, Li and
 * Shi, "Neighborhood Attention Transformer", CVPR 2023; the NATTEN library's 3-D
 * neighbourhood attention, na3d): each query at (t, y, x) reads the kt x kh x kw keys
 * around it. Per axis of length n with window size k (odd) and dilation δ:
 *   - the axis splits into δ interleaved groups (positions ≡ ρ mod δ), and a query only
 *     reads keys of its own group;
 *   - in its group (positions ρ, ρ + δ, ..., n_ρ of them) a query at group index i reads
 *     the k consecutive group indices starting at clamp(i - ⌊k/2⌋, 0, n_ρ - k): the window
 *     is centred where it fits and shifted inwards at the borders, so every query reads
 *     exactly k keys along the axis (NATTEN's behaviour, unlike zero-padded windows).
 * A query reads a key when every axis admits it. The CLS token stays global (reads and is
 * read by all), as in every sprig pattern.
 *
 * Tokens are the T·Hp·Wp local tokens of a clip in raster order, local index
 * t·Hp·Wp + y·Wp + x, i.e. a layer before any token drop and without token reordering. The
 * layout (src/patterns/predicate.ts) has rows of different lengths and partial blocks: a
 * block of bs consecutive tokens spans a few image rows, of which a window reads only some
 * pairs.
 */
export interface Window3dSpec {
  /** Token grid (T, Hp, Wp): frames, patch rows, patch columns. */
  readonly grid: readonly [number, number, number];
  /** Window size per axis (kt, kh, kw), each odd. */
  readonly kernel: readonly [number, number, number];
  /** Dilation per axis (default 1, 1, 1). */
  readonly dilation?: readonly [number, number, number];
}

const AXES = ["t", "y", "x"] as const;

/** Per axis: for each position, the first group index its window reads. */
function windowStarts(n: number, k: number, dilation: number): Int32Array {
  const starts = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const residue = i % dilation;
    const groupLength = Math.floor((n - 1 - residue) / dilation) + 1;
    const index = Math.floor(i / dilation);
    starts[i] = Math.min(Math.max(index - (k - 1) / 2, 0), groupLength - k);
  }
  return starts;
}

/** Checks the spec; `where` names the use. */
function checkSpec(spec: Window3dSpec, where: string): readonly [number, number, number] {
  const dilation = spec.dilation ?? [1, 1, 1];
  AXES.forEach((axis, a) => {
    const n = spec.grid[a]!;
    const k = spec.kernel[a]!;
    const d = dilation[a]!;
    if (!(Number.isInteger(d) && d >= 1)) {
      throw new ConfigError(
        `pattern.window3d.dilation.${axis}`,
        `${where}: must be an integer >= 1, got ${d}`,
      );
    }
    if (!(Number.isInteger(k) && k >= 1 && k % 2 === 1)) {
      throw new ConfigError(
        `pattern.window3d.kernel.${axis}`,
        `${where}: must be an odd integer >= 1, got ${k}`,
      );
    }
    if (k > Math.floor(n / d)) {
      throw new ConfigError(
        `pattern.window3d.kernel.${axis}`,
        `${where}: window ${k} with dilation ${d} does not fit the ${n} tokens of axis ${axis} (at most ${Math.floor(n / d)})`,
      );
    }
  });
  return dilation;
}

/**
 * The window along each axis a (0: t, 1: y, 2: x): whether a query at position qi reads a
 * key at ki, and the interval [lo, hi] of positions the query's window spans (every read
 * key lies in it; with dilation δ only every δ-th position of it is read).
 */
export interface Window3dAxes {
  readonly admits: (axis: number, qi: number, ki: number) => boolean;
  readonly interval: (axis: number, qi: number) => readonly [number, number];
  readonly dilation: readonly [number, number, number];
}

export function window3dAxes(spec: Window3dSpec, where = "window3d"): Window3dAxes {
  const dilation = checkSpec(spec, where);
  const starts = AXES.map((_, a) => windowStarts(spec.grid[a]!, spec.kernel[a]!, dilation[a]!));
  const admits = (a: number, qi: number, ki: number): boolean => {
    const d = dilation[a]!;
    if (qi % d !== ki % d) return false;
    const offset = Math.floor(ki / d) - starts[a]![qi]!;
    return offset >= 0 && offset < spec.kernel[a]!;
  };
  // Group index g of residue ρ sits at position g·δ + ρ.
  const interval = (a: number, qi: number): readonly [number, number] => {
    const d = dilation[a]!;
    const lo = starts[a]![qi]! * d + (qi % d);
    return [lo, lo + (spec.kernel[a]! - 1) * d];
  };
  return { admits, interval, dilation };
}

/** Whether local query q reads local key k (raster order over the grid). */
export function window3dReads(
  spec: Window3dSpec,
  where = "window3d",
): (q: number, k: number) => boolean {
  const { admits } = window3dAxes(spec, where);
  const [, hn, wn] = spec.grid;
  const frame = hn * wn;
  return (q, k) => {
    const qt = Math.floor(q / frame);
    const kt = Math.floor(k / frame);
    if (!admits(0, qt, kt)) return false;
    const qr = q - qt * frame;
    const kr = k - kt * frame;
    const qy = Math.floor(qr / wn);
    const ky = Math.floor(kr / wn);
    return admits(1, qy, ky) && admits(2, qr - qy * wn, kr - ky * wn);
  };
}

/** The block layout of a 3-D window over the grid's T·Hp·Wp tokens, shared by every head. */
export function window3dLayout(
  spec: Window3dSpec,
  blockSize: number,
  localTokens: number,
  where: string,
): BlockLayout {
  const [t, h, w] = spec.grid;
  if (localTokens !== t * h * w) {
    throw new ConfigError(
      "pattern.window3d",
      `${where}: a 3-D window needs the ${t * h * w} tokens of the ${t}x${h}x${w} grid in raster order (a layer before any token drop, without token reordering); this layer has ${localTokens}`,
    );
  }
  const reads = window3dReads(spec, where);
  return layoutFromPredicate({
    localTokens,
    blockSize,
    heads: 1,
    reads: (_head, q, k) => reads(q, k),
    where,
  });
}

/** "window3d 3x7x7" (with ", dilation a x b x c" when not 1). */
export function window3dLabel(spec: Pick<Window3dSpec, "kernel" | "dilation">): string {
  const dilation = spec.dilation ?? [1, 1, 1];
  const dilated = dilation.some((d) => d !== 1) ? `, dilation ${dilation.join("x")}` : "";
  return `window3d ${spec.kernel.join("x")}${dilated}`;
}
