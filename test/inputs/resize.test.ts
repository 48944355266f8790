import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import {
  bicubicAxisTaps,
  type FramesU8,
  levelTable,
  resizeBicubicU8,
  toPixelValues,
} from "../../src/inputs/resize.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import type { HostTensor } from "../../src/ir/tensor.js";

const INPUTS = fileURLToPath(new URL("../../../shared/conformance/inputs/", import.meta.url));

let tensors: Map<string, HostTensor>;
let sidecar: {
  tensors: Record<string, { tolerance: { atol: number } | string }>;
};
beforeAll(async () => {
  tensors = (await readSafetensors(`${INPUTS}v1_video_preprocess.safetensors`)).tensors;
  sidecar = JSON.parse(await readFile(`${INPUTS}v1_video_preprocess.json`, "utf8"));
});

function tensor(name: string): HostTensor {
  const found = tensors.get(name);
  if (found === undefined) throw new Error(`conformance tensor ${name} is missing`);
  return found;
}

/** A U8 tensor of the case (read widened to i32) as uint8 frames. */
function framesOf(name: string): FramesU8 {
  const { shape, data } = tensor(name);
  const [t, c, h, w] = shape as [number, number, number, number];
  return { shape: [t, c, h, w], data: Uint8Array.from(data) };
}

function atol(name: string): number {
  const tolerance = sidecar.tensors[name]!.tolerance;
  if (typeof tolerance === "string") throw new Error(`${name} has no atol`);
  return tolerance.atol;
}

/** Weight per input index for output `x` (taps clamped onto the same index add up). */
function mergedWeights(inSize: number, outSize: number, x: number): Record<number, number> {
  const { taps, weights } = bicubicAxisTaps(inSize, outSize);
  const merged: Record<number, number> = {};
  for (let j = 0; j < 4; j++) {
    const index = taps[4 * x + j]!;
    merged[index] = Math.fround((merged[index] ?? 0) + weights[4 * x + j]!);
  }
  for (const key of Object.keys(merged)) if (merged[Number(key)] === 0) delete merged[Number(key)];
  return merged;
}

describe("toPixelValues: x.float().div(255.) then Normalize(0.5, 0.5)", () => {
  it("equals expected.u8_to_pixel_value for every uint8 level", () => {
    const expected = tensor("expected.u8_to_pixel_value").data;
    expect(expected).toHaveLength(256);
    expect([...levelTable(0.5, 0.5)]).toEqual([...expected]);
    const levels = Uint8Array.from({ length: 3 * 256 }, (_, i) => i % 256);
    const values = toPixelValues({ shape: [1, 3, 16, 16], data: levels });
    expect(values.shape).toEqual([1, 3, 16, 16]);
    expect([...values.data.subarray(256, 512)]).toEqual([...expected]);
  });
});

describe("resizeBicubicU8: torchvision Resize((S, S), BICUBIC) on uint8 tensors", () => {
  it("64x64: pixel values equal expected.pixel_values.t4.res64 (tolerance atol 2/255)", () => {
    const name = "expected.pixel_values.t4.res64";
    const expected = tensor(name).data;
    const resized = resizeBicubicU8(framesOf("input.frames_u8.t4"), 64, 64);
    expect(resized.shape).toEqual([4, 3, 64, 64]);
    const values = toPixelValues(resized).data;
    expect(values).toHaveLength(expected.length);
    let worst = 0;
    let differing = 0;
    for (let i = 0; i < values.length; i++) {
      const difference = Math.abs(values[i]! - expected[i]!);
      worst = Math.max(worst, difference);
      if (difference !== 0) differing += 1;
    }
    expect(worst).toBeLessThanOrEqual(atol(name));
    // Measured: all 49152 values identical (the same float32 algorithm as torch's kernel).
    expect(differing).toBe(0);
  });

  it("224x224: the first frame's uint8 resize equals expected.resized_u8.t4f0.res224 (1 level)", () => {
    const name = "expected.resized_u8.t4f0.res224";
    const expected = tensor(name).data;
    const first = framesOf("input.frames_u8.t4");
    const frame0: FramesU8 = { shape: [1, 3, 72, 96], data: first.data.subarray(0, 3 * 72 * 96) };
    const resized = resizeBicubicU8(frame0, 224, 224);
    let worst = 0;
    let offByOne = 0;
    for (let i = 0; i < expected.length; i++) {
      const difference = Math.abs(resized.data[i]! - expected[i]!);
      worst = Math.max(worst, difference);
      if (difference === 1) offByOne += 1;
    }
    expect(worst).toBeLessThanOrEqual(atol(name));
    // Measured: none of the 150528 values off (a float32 source coordinate would put 3 off).
    expect(offByOne).toBe(0);
    expect(worst).toBe(0);
  });

  it("weights equal torch's where float rounding of the source coordinate matters", () => {
    // From torch 1.13.0a0 (Debian python3-torch 1.13.1+dfsg-4, ATEN_CPU_CAPABILITY=default):
    // F.interpolate(one-hot rows, size=(1, out), mode="bicubic", align_corners=False).
    // 96 -> 224, x = 10: exact source 4.0, but float32(96/224) * 10.5 - 0.5 in float64 is
    // 4.0000000447, so t = 4.47e-8 (a float32 source coordinate would round to 4.0: [0, 1, 0, 0]).
    expect(mergedWeights(96, 224, 10)).toEqual({ 4: 1, 5: 2 ** -24 });
    expect(mergedWeights(96, 224, 100)).toEqual({
      41: -0.07871651649475098,
      42: 0.4985416531562805,
      43: 0.6851317286491394,
      44: -0.10495662689208984,
    });
    // Source coordinates just below an integer (float64 2.99999992, 3.9999999, 2.9999999):
    // the floor is taken of their float32 rounding.
    expect(mergedWeights(4, 100, 87)).toEqual({ 3: 0.9999998807907104 });
    expect(mergedWeights(12, 100, 37)).toEqual({ 4: 1, 5: -(2 ** -23) });
    expect(mergedWeights(7, 31, 15)).toEqual({ 3: 1, 4: -(2 ** -23) });
  });

  it("a 1.5x downscale has the exact dyadic Keys weights", () => {
    // 96 -> 64: source 1.5 i + 0.25; i = 2 -> 3.25, taps 2..5, t = 0.25:
    // k2(1.25) = -27/256, k1(0.25) = 225/256, k1(0.75) = 67/256, k2(1.75) = -9/256.
    const { taps, weights } = bicubicAxisTaps(96, 64);
    expect([...taps.subarray(8, 12)]).toEqual([2, 3, 4, 5]);
    expect([...weights.subarray(8, 12)]).toEqual([-27 / 256, 225 / 256, 67 / 256, -9 / 256]);
  });

  it("clamps to [0, 255] and rounds half to even", () => {
    // One row of 6 -> 4 columns (the 1 -> 1 vertical pass is exact): output 0 reads taps
    // [0, 0, 1, 2] with the weights above, so it is (198 v0 + 67 v1 - 9 v2) / 256 exactly.
    const row = (v0: number, v1: number, v2: number): number => {
      const data = Uint8Array.from([v0, v1, v2, 0, 0, 0]);
      return resizeBicubicU8({ shape: [1, 1, 1, 6], data }, 1, 4).data[0]!;
    };
    expect(row(128, 54, 18)).toBe(112); // 28800 / 256 = 112.5 -> even 112
    expect(row(128, 64, 64)).toBe(114); // 29056 / 256 = 113.5 -> even 114
    expect(row(0, 0, 255)).toBe(0); // -8.96, clamped (not wrapped to 247)
    expect(row(255, 255, 0)).toBe(255); // 263.9, clamped
  });

  it("resizing to the same size is the identity", () => {
    const frames = framesOf("input.frames_u8.t4");
    expect(resizeBicubicU8(frames, 72, 96).data).toEqual(frames.data);
  });

  it("rejects a non-positive size", () => {
    const frames: FramesU8 = { shape: [1, 1, 2, 2], data: new Uint8Array(4) };
    expect(() => resizeBicubicU8(frames, 0, 4)).toThrow(RangeError);
  });
});
