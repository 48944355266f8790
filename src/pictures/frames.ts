import type { Raster } from "./png.js";
import { fillRect, newRaster } from "./png.js";
import { mix, type Rgb, WHITE } from "./scene.js";

/**
 * Which tokens a token drop kept, drawn over the clip's frames: the T frames side by side
 * (8 per row), each cut into its Hp x Wp patches of `patch` pixels; a kept patch is shown
 * as it is, a dropped one faded towards white. Over a real video the frames are the model's own input
 * (pixel_values, un-normalised: v·0.5 + 0.5, sampled nearest to the display size); without
 * one, kept patches are blue and dropped ones grey.
 */
export interface KeptTokensOptions {
  /** The clip's token grid (T, Hp, Wp). */
  readonly grid: readonly [number, number, number];
  /** Raster indices t·Hp·Wp + y·Wp + x of the kept tokens (token_idx.j of one clip). */
  readonly kept: ArrayLike<number>;
  /** Display pixels per patch (default 8). */
  readonly patch?: number;
  /** pixel_values of the clip, [T, 3, S, S], normalised with mean = std = 0.5. */
  readonly pixels?: { readonly data: Float32Array; readonly imageSize: number };
}

const GAP = 6;
const PER_ROW = 8;
const KEPT: Rgb = [74, 144, 200];
const DROPPED: Rgb = [225, 225, 225];
const FADED: Rgb = [255, 255, 255];

/** The picture's size for T frames of Hp x Wp patches. */
export function keptTokensSize(
  grid: readonly [number, number, number],
  patch = 8,
): { width: number; height: number } {
  const [frames, rows, cols] = grid;
  const across = Math.min(frames, PER_ROW);
  const down = Math.ceil(frames / PER_ROW);
  return {
    width: across * cols * patch + (across - 1) * GAP,
    height: down * rows * patch + (down - 1) * GAP,
  };
}

export function keptTokensRaster(options: KeptTokensOptions): Raster {
  const [frames, rows, cols] = options.grid;
  const patch = options.patch ?? 8;
  const { width, height } = keptTokensSize(options.grid, patch);
  const raster = newRaster(width, height, WHITE);
  const kept = new Set(Array.from(options.kept));
  for (let t = 0; t < frames; t++) {
    const left = (t % PER_ROW) * (cols * patch + GAP);
    const top = Math.floor(t / PER_ROW) * (rows * patch + GAP);
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < cols; x++) {
        const isKept = kept.has(t * rows * cols + y * cols + x);
        const px = left + x * patch;
        const py = top + y * patch;
        if (options.pixels === undefined) {
          fillRect(raster, px, py, patch - 1, patch - 1, isKept ? KEPT : DROPPED);
        } else {
          drawPatch(raster, options.pixels, { t, y, x, px, py, patch, rows, cols, isKept });
        }
      }
    }
  }
  return raster;
}

/** One patch of the real frame, nearest-sampled, faded when dropped. */
function drawPatch(
  raster: Raster,
  pixels: NonNullable<KeptTokensOptions["pixels"]>,
  at: {
    t: number;
    y: number;
    x: number;
    px: number;
    py: number;
    patch: number;
    rows: number;
    cols: number;
    isKept: boolean;
  },
): void {
  const s = pixels.imageSize;
  const plane = s * s;
  for (let dy = 0; dy < at.patch; dy++) {
    for (let dx = 0; dx < at.patch; dx++) {
      const sy = Math.min(s - 1, Math.floor(((at.y * at.patch + dy) * s) / (at.rows * at.patch)));
      const sx = Math.min(s - 1, Math.floor(((at.x * at.patch + dx) * s) / (at.cols * at.patch)));
      const base = at.t * 3 * plane + sy * s + sx;
      const channel = (c: number) =>
        Math.max(0, Math.min(255, Math.round((pixels.data[base + c * plane]! * 0.5 + 0.5) * 255)));
      const color: Rgb = [channel(0), channel(1), channel(2)];
      fillRect(raster, at.px + dx, at.py + dy, 1, 1, at.isKept ? color : mix(color, FADED, 0.8));
    }
  }
}
