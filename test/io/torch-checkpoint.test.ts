/**
 * The checkpoint reader against conformance/inputs: the three k1 checkpoints written by
 * torch.save (zip float32, zip float16 with views, legacy float16) must give every
 * state_dict entry of checkpoints.json with its dtype and shape, and values equal to the
 * k1 safetensors tensors under the entry's rule.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { readSafetensors } from "../../src/io/safetensors.js";
import {
  findStateDict,
  readTorchCheckpoint,
  readTorchStateDict,
  stateDictHostTensors,
  type TorchStateDict,
  type TorchTensor,
} from "../../src/io/torch-checkpoint.js";
import type { HostTensor } from "../../src/ir/tensor.js";

const INPUTS = new URL("../../../shared/conformance/inputs/", import.meta.url);
const inputPath = (name: string) => fileURLToPath(new URL(name, INPUTS));
const K1_PATH = fileURLToPath(
  new URL(
    "../../../shared/conformance/video-text/k1_retrieval_pixels.safetensors",
    import.meta.url,
  ),
);

interface EntrySpec {
  dtype: "float32" | "float16" | "int64";
  shape: number[];
  stride: number[];
  storage_offset: number;
  storage_numel: number;
  contiguous: boolean;
  source: string;
  rule: "exact" | "fp16_rne";
  shares_storage_with?: string[];
}
interface FileSpec {
  format: "zip" | "legacy";
  model: Record<string, EntrySpec>;
  top_level_keys: string[];
}
interface CheckpointsSpec {
  non_model: Record<string, unknown>;
  fp16_views: {
    fused_storage: string[];
    fused_bias_storage: string[];
    transposed: string;
    strided_with_offset: string;
  };
  files: Record<string, FileSpec>;
}

const SPEC = JSON.parse(readFileSync(inputPath("checkpoints.json"), "utf8")) as CheckpointsSpec;
const CHECKPOINTS = ["k1_checkpoint.pth", "k1_checkpoint_fp16.pth", "k1_checkpoint_legacy.pth"];
const DTYPES = { float32: "f32", float16: "f16", int64: "i64" } as const;

let k1: Map<string, HostTensor>;
beforeAll(async () => {
  k1 = (await readSafetensors(K1_PATH)).tensors;
});

/**
 * float16 round-to-nearest-even of a float32, computed from the definition in float64
 * arithmetic: with e the exponent of the leading bit (at least -14, where subnormals
 * start), |x| / 2^(e-10) is the significand scaled to an integer in [1024, 2048) (or
 * below 1024 for subnormals); round it half to even, carry 2048 into the exponent.
 */
function float16Rne(x: number): number {
  if (Number.isNaN(x)) throw new Error("k1 holds no NaN");
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(x);
  if (magnitude === 0) return sign;
  if (magnitude === Number.POSITIVE_INFINITY) return sign | 0x7c00;
  let exponent = Math.floor(Math.log2(magnitude));
  while (2 ** exponent > magnitude) exponent--;
  while (2 ** (exponent + 1) <= magnitude) exponent++;
  exponent = Math.max(exponent, -14);
  let significand = roundHalfEven(magnitude / 2 ** (exponent - 10));
  if (significand === 2048) {
    significand = 1024;
    exponent++;
  }
  if (exponent > 15) return sign | 0x7c00;
  if (significand < 1024) return sign | significand;
  return sign | ((exponent + 15) << 10) | (significand - 1024);
}

function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (fraction !== 0.5) return fraction < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** float16 bits to their value from the definition (for the HostTensor widening). */
function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * 2 ** (exponent - 15) * (1 + mantissa / 1024);
}

/** The k1 source tensor's expected contents in the checkpoint tensor's representation. */
function expectedData(spec: EntrySpec): Uint32Array | Uint16Array | BigInt64Array {
  const source = k1.get(spec.source);
  expect(source, spec.source).toBeDefined();
  if (spec.dtype === "int64") {
    expect(source!.dtype).toBe("i32");
    return BigInt64Array.from(source!.data as Int32Array, (value) => BigInt(value));
  }
  expect(source!.dtype).toBe("f32");
  const values = source!.data as Float32Array;
  if (spec.rule === "exact") {
    return new Uint32Array(values.buffer, values.byteOffset, values.length);
  }
  return Uint16Array.from(values, float16Rne);
}

function actualData(tensor: TorchTensor): Uint32Array | Uint16Array | BigInt64Array {
  if (tensor.dtype === "f32") {
    return new Uint32Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.length);
  }
  if (tensor.dtype === "f16" || tensor.dtype === "i64") return tensor.data;
  throw new Error(`unexpected dtype ${tensor.dtype}`);
}

/** Flat indices where two arrays differ (at most a few, for the message). */
function mismatches(a: ArrayLike<unknown>, b: ArrayLike<unknown>): number[] {
  const out: number[] = [];
  for (let i = 0; i < Math.max(a.length, b.length) && out.length < 5; i++) {
    if (a[i] !== b[i]) out.push(i);
  }
  return out;
}

describe.each(CHECKPOINTS)("%s", (file) => {
  const fileSpec = SPEC.files[file]!;
  let stateDict: TorchStateDict;
  beforeAll(async () => {
    const checkpoint = await readTorchCheckpoint(inputPath(file));
    expect(checkpoint.format).toBe(fileSpec.format);
    stateDict = findStateDict(checkpoint);
  });

  it('finds the state_dict under "model" with every entry, in order, with dtype and shape', () => {
    expect(stateDict.location).toBe("model");
    expect([...stateDict.tensors.keys()]).toEqual(Object.keys(fileSpec.model));
    for (const [name, spec] of Object.entries(fileSpec.model)) {
      const tensor = stateDict.tensors.get(name)!;
      expect(tensor.dtype, name).toBe(DTYPES[spec.dtype]);
      expect(tensor.shape, name).toEqual(spec.shape);
      expect(tensor.data.length, name).toBe(spec.shape.reduce((a, b) => a * b, 1));
    }
  });

  it("holds the k1 values under each entry's rule (exact bits, or float16 RNE bits)", () => {
    for (const [name, spec] of Object.entries(fileSpec.model)) {
      const actual = actualData(stateDict.tensors.get(name)!);
      const expected = expectedData(spec);
      expect(mismatches(actual, expected), name).toEqual([]);
    }
  });

  it("converts to HostTensors: f32 as is, f16 widened exactly, i64 narrowed to i32", () => {
    const host = stateDictHostTensors(stateDict);
    for (const [name, spec] of Object.entries(fileSpec.model)) {
      const tensor = host.get(name)!;
      const source = k1.get(spec.source)!;
      expect(tensor.shape, name).toEqual(spec.shape);
      if (spec.dtype === "int64") {
        expect(tensor.dtype).toBe("i32");
        expect(mismatches(tensor.data, source.data), name).toEqual([]);
      } else if (spec.rule === "exact") {
        expect(tensor.dtype).toBe("f32");
        expect(
          mismatches(new Uint32Array(tensor.data.buffer), new Uint32Array(source.data.buffer)),
          name,
        ).toEqual([]);
      } else {
        expect(tensor.dtype).toBe("f32");
        const widened = Array.from(source.data as Float32Array, (x) => float16Value(float16Rne(x)));
        expect(mismatches(Array.from(tensor.data), widened), name).toEqual([]);
      }
    }
  });

  it("keeps the non-model entries as plain JSON (epoch, global_step, optimizer, config)", () => {
    const expected = Object.fromEntries(
      fileSpec.top_level_keys
        .filter((key) => key !== "model")
        .map((key) => [key, SPEC.non_model[key]]),
    );
    expect(stateDict.metadata).toEqual(expected);
    expect(stateDict.skipped).toEqual([]);
    expect(stateDict.metadata.epoch).toBe(3);
    expect(stateDict.metadata.global_step).toBe(120);
    const config = stateDict.metadata.config as { video_input: { num_frames: unknown } };
    expect(config.video_input.num_frames).toBe(2);
  });

  it("gives the same state_dict when reading only the state_dict", async () => {
    const only = await readTorchStateDict(inputPath(file));
    expect(only.location).toBe("model");
    expect(only.metadata).toEqual(stateDict.metadata);
    for (const [name, tensor] of stateDict.tensors) {
      const other = only.tensors.get(name)!;
      expect(other.dtype, name).toBe(tensor.dtype);
      expect(other.shape, name).toEqual(tensor.shape);
      expect(mismatches(actualData(other), actualData(tensor)), name).toEqual([]);
    }
  });
});

describe("k1_checkpoint_fp16.pth views", () => {
  const views = SPEC.fp16_views;
  const model = SPEC.files["k1_checkpoint_fp16.pth"]!.model;
  let tensors: ReadonlyMap<string, TorchTensor>;
  beforeAll(async () => {
    tensors = (await readTorchStateDict(inputPath("k1_checkpoint_fp16.pth"))).tensors;
  });

  /** The entry's float16 bits, checked against the RNE of its k1 source. */
  const bitsOf = (name: string) => {
    const tensor = tensors.get(name)!;
    expect(tensor.dtype).toBe("f16");
    expect(mismatches(tensor.data as Uint16Array, expectedData(model[name]!)), name).toEqual([]);
    return tensor.data as Uint16Array;
  };

  it("reads q/k/v weights as three slices of one fused storage (offsets 0, 4096, 8192)", () => {
    expect(views.fused_storage.map((name) => model[name]!.storage_offset)).toEqual([0, 4096, 8192]);
    expect(new Set(views.fused_storage.map((name) => model[name]!.storage_numel))).toEqual(
      new Set([12288]),
    );
    const [query, key, value] = views.fused_storage.map(bitsOf);
    // Distinct slices, not the first one three times.
    expect(mismatches(query!, key!).length).toBeGreaterThan(0);
    expect(mismatches(key!, value!).length).toBeGreaterThan(0);
  });

  it("reads query/value biases from one shared storage", () => {
    expect(views.fused_bias_storage.map((name) => model[name]!.storage_offset)).toEqual([0, 64]);
    const [query, value] = views.fused_bias_storage.map(bitsOf);
    expect(mismatches(query!, value!).length).toBeGreaterThan(0);
  });

  it("reads the transposed text_proj.weight (stride [1, 32]) in row-major order", () => {
    expect(model[views.transposed]!.stride).toEqual([1, 32]);
    const bits = bitsOf(views.transposed);
    const source = k1.get(views.transposed)!.data as Float32Array;
    // Element [i][j] of the [32, 48] tensor is k1's [i][j], not the storage's i·48 + j.
    expect(bits[1 * 48 + 2]).toBe(float16Rne(source[1 * 48 + 2]!));
  });

  it("reads vision_proj.bias with stride [2] from offset 1, skipping the -1 fillers", () => {
    const spec = model[views.strided_with_offset]!;
    expect([spec.stride, spec.storage_offset, spec.storage_numel]).toEqual([[2], 1, 67]);
    const bits = bitsOf(views.strided_with_offset);
    const minusOne = float16Rne(-1);
    expect([...bits].filter((b) => b === minusOne)).toEqual([]);
  });
});
