/**
 * The authors' evaluation transform of decoded frames (dataset/__init__.py, test_transform):
 *
 *   Resize((S, S), interpolation=BICUBIC)  on the uint8 (T, C, H, W) tensor
 *   x.float().div(255.)
 *   Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
 *
 * torchvision 0.14 resizes a uint8 tensor by converting it to float32, calling
 * `F.interpolate(mode="bicubic", align_corners=False, antialias=False)`, clamping to
 * [0, 255], rounding half to even (torch.round) and casting back to uint8; only then is it
 * scaled and normalised.
 *
 * The interpolation, per axis, for output index i (in = input size, out = output size):
 *
 *   scale = in / out                                  float32
 *   src   = scale * (i + 0.5) - 0.5                   float64 (half-pixel centres; may be < 0)
 *   i0    = floor(float32(src)),  t = float32(src - i0)
 *   taps  = i0 - 1, i0, i0 + 1, i0 + 2, each clamped to [0, in - 1]
 *   w     = [k2(t + 1), k1(t), k1(1 - t), k2((1 - t) + 1)]   Keys' cubic, a = -0.75, float32:
 *     k1(x) = ((a + 2) x - (a + 3)) x x + 1        for |x| <= 1
 *     k2(x) = ((a x - 5a) x + 8a) x - 4a           for 1 < |x| < 2
 *   value(y, x) = sum_j wy[j] * (sum_i wx[i] * in[tapy[j], tapx[i]])
 *     float32, each sum accumulated left to right from its j = 0 / i = 0 term
 *
 * Every float32 step is rounded with Math.fround, in the order above. Two details are not
 * what UpSample.h reads like but what PyTorch 1.13's compiled CPU kernel does, found by
 * comparing with it (torch 1.13.0a0 from Debian, the build that made the conformance case):
 * the source coordinate is not rounded to float32 before t is taken from it (rounding it
 * changes ~700 of the 896 weights of a 96 -> 224 resize), and the floor is taken of its
 * float32 rounding (which differs when src lies just below an integer). With both, this
 * file reproduces torch's portable kernel (ATEN_CPU_CAPABILITY=default) bit for bit on
 * every float value of 13 resizes tried, up and down, odd sizes included. torch's AVX2
 * kernel (its default on x86-64) contracts some multiply-adds into FMAs and so differs
 * from its own portable kernel by one uint8 level in about 3 of 100,000 values.
 *
 * The horizontal sums depend only on the input row and the output column, so they are
 * computed once per row and reused: the same operations in the same order as the kernel's
 * per-pixel loop, without its repeated work.
 *
 * Against the conformance case v1_video_preprocess (test/inputs/resize.test.ts): every
 * value equal, at 64x64 (49152) and at 224x224 (150528).
 */

import { f32Tensor, type HostTensor } from "../ir/tensor.js";

/** Decoded frames as the reference holds them: uint8, row-major [T, C, H, W]. */
export interface FramesU8 {
  readonly shape: readonly [frames: number, channels: number, height: number, width: number];
  readonly data: Uint8Array;
}

/** The cubic convolution parameter of PyTorch (and OpenCV); PIL uses -0.5. */
const CUBIC_A = -0.75;

const f32 = Math.fround;

/** The four input taps and their weights for each output position along one axis. */
interface AxisTaps {
  /** taps[4 * i + j]: input index of tap j for output i (already clamped). */
  readonly taps: Int32Array;
  /** weights[4 * i + j]: float32 weight of that tap. */
  readonly weights: Float32Array;
}

/** Keys' cubic for |x| <= 1, in float32: ((a + 2) x - (a + 3)) x x + 1. */
function cubicNear(x: number): number {
  return f32(f32(f32(f32(f32((CUBIC_A + 2) * x) - (CUBIC_A + 3)) * x) * x) + 1);
}

/** Keys' cubic for 1 < |x| < 2, in float32: ((a x - 5a) x + 8a) x - 4a. */
function cubicFar(x: number): number {
  const a = CUBIC_A;
  return f32(f32(f32(f32(f32(f32(a * x) - 5 * a) * x) + 8 * a) * x) - 4 * a);
}

/** Tap indices and weights for resizing one axis from `inSize` to `outSize` samples. */
export function bicubicAxisTaps(inSize: number, outSize: number): AxisTaps {
  const taps = new Int32Array(4 * outSize);
  const weights = new Float32Array(4 * outSize);
  const scale = f32(inSize / outSize);
  for (let i = 0; i < outSize; i++) {
    // float64, not rounded to float32 (see the file comment).
    const source = scale * (i + 0.5) - 0.5;
    const base = Math.floor(f32(source));
    const t = f32(source - base);
    const rest = f32(1 - t);
    weights[4 * i] = cubicFar(f32(t + 1));
    weights[4 * i + 1] = cubicNear(t);
    weights[4 * i + 2] = cubicNear(rest);
    weights[4 * i + 3] = cubicFar(f32(rest + 1));
    for (let j = 0; j < 4; j++) {
      taps[4 * i + j] = Math.min(Math.max(base - 1 + j, 0), inSize - 1);
    }
  }
  return { taps, weights };
}

/** torch.round: nearest integer, ties to even. */
function roundHalfToEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction > 0.5) return floor + 1;
  if (fraction < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The uint8 a float32 interpolation result becomes: clamp to [0, 255], round, cast. */
function toUint8(value: number): number {
  return roundHalfToEven(Math.min(Math.max(value, 0), 255));
}

/**
 * Bicubic resize of every plane of `frames` to `height` x `width`, exactly as torchvision's
 * tensor Resize with InterpolationMode.BICUBIC and no antialias (see the file comment).
 */
export function resizeBicubicU8(frames: FramesU8, height: number, width: number): FramesU8 {
  const [count, channels, inHeight, inWidth] = frames.shape;
  for (const [name, size] of [
    ["height", height],
    ["width", width],
  ] as const) {
    if (!Number.isSafeInteger(size) || size < 1) {
      throw new RangeError(`resize ${name} must be a positive integer, got ${size}`);
    }
  }
  const columns = bicubicAxisTaps(inWidth, width);
  const rows = bicubicAxisTaps(inHeight, height);
  const planes = count * channels;
  const output = new Uint8Array(planes * height * width);
  // Horizontal sums of one input plane: rowSums[r * width + x] for every input row r.
  const rowSums = new Float32Array(inHeight * width);
  for (let plane = 0; plane < planes; plane++) {
    const input = frames.data.subarray(
      plane * inHeight * inWidth,
      (plane + 1) * inHeight * inWidth,
    );
    horizontalPass(input, inHeight, inWidth, columns, width, rowSums);
    verticalPass(rowSums, width, rows, height, output.subarray(plane * height * width));
  }
  return { shape: [count, channels, height, width], data: output };
}

function horizontalPass(
  input: Uint8Array,
  inHeight: number,
  inWidth: number,
  columns: AxisTaps,
  width: number,
  rowSums: Float32Array,
): void {
  const { taps, weights } = columns;
  for (let r = 0; r < inHeight; r++) {
    const row = r * inWidth;
    for (let x = 0; x < width; x++) {
      const k = 4 * x;
      let sum = f32(input[row + taps[k]!]! * weights[k]!);
      for (let j = 1; j < 4; j++) {
        sum = f32(sum + f32(input[row + taps[k + j]!]! * weights[k + j]!));
      }
      rowSums[r * width + x] = sum;
    }
  }
}

function verticalPass(
  rowSums: Float32Array,
  width: number,
  rows: AxisTaps,
  height: number,
  output: Uint8Array,
): void {
  const { taps, weights } = rows;
  for (let y = 0; y < height; y++) {
    const k = 4 * y;
    for (let x = 0; x < width; x++) {
      let sum = f32(rowSums[taps[k]! * width + x]! * weights[k]!);
      for (let j = 1; j < 4; j++) {
        sum = f32(sum + f32(rowSums[taps[k + j]! * width + x]! * weights[k + j]!));
      }
      output[y * width + x] = toUint8(sum);
    }
  }
}

/** Per-channel normalisation constants; the BEiT/ViT models use 0.5 and 0.5. */
export interface Normalization {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

export const BEIT_NORMALIZATION: Normalization = { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };

/**
 * The float32 value each uint8 level becomes in channel c:
 * ((level / 255) - mean[c]) / std[c], rounded to float32 after each operation, as
 * `x.float().div(255.)` followed by Normalize (whose mean and std are float32 tensors).
 */
export function levelTable(mean: number, std: number): Float32Array {
  const table = new Float32Array(256);
  const mean32 = f32(mean);
  const std32 = f32(std);
  for (let level = 0; level < 256; level++) {
    table[level] = f32(f32(f32(level / 255) - mean32) / std32);
  }
  return table;
}

/** uint8 frames [T, C, H, W] -> float32 pixel values of the same shape. */
export function toPixelValues(
  frames: FramesU8,
  normalization: Normalization = BEIT_NORMALIZATION,
): HostTensor & { dtype: "f32" } {
  const [count, channels, height, width] = frames.shape;
  if (normalization.mean.length !== channels || normalization.std.length !== channels) {
    throw new RangeError(
      `normalization has ${normalization.mean.length} means and ${normalization.std.length} stds for ${channels} channels`,
    );
  }
  const tables = normalization.mean.map((mean, c) => levelTable(mean, normalization.std[c]!));
  const planeSize = height * width;
  const values = new Float32Array(frames.data.length);
  for (let plane = 0; plane < count * channels; plane++) {
    const table = tables[plane % channels]!;
    for (let p = plane * planeSize; p < (plane + 1) * planeSize; p++) {
      values[p] = table[frames.data[p]!]!;
    }
  }
  return f32Tensor([count, channels, height, width], values);
}
