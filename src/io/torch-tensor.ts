/**
 * Tensors of a PyTorch checkpoint: views of storages, materialised contiguous.
 *
 * A tensor is `_rebuild_tensor_v2(storage, offset, size, stride, ...)`: element
 * (i0, i1, ...) is storage[offset + Σ_d i_d · stride[d]], counted in elements. Several
 * tensors may view one storage (fused q/k/v weights, a shared bias), views may be
 * transposed or strided, start at an offset and leave storage elements unused.
 *
 * Checks before anything is allocated:
 *   - the view stays inside its storage: for a non-empty tensor the largest element
 *     index offset + Σ_d (size[d] - 1) · stride[d] is below the storage's numel (an
 *     empty one needs offset <= numel);
 *   - every storage reference with one key agrees on dtype and numel;
 *   - the copies made for views together stay within a byte budget, the file's size. A
 *     view that is its whole storage (offset 0, contiguous, all elements) reuses the
 *     storage's buffer, and identical views share one tensor (tied weights), so a real
 *     checkpoint never comes near it; a crafted file of many overlapping views cannot
 *     make the reader allocate much more than the file holds.
 *
 * Data are little-endian in the file; typed arrays are in host byte order.
 */
import { f32Tensor, formatShape, type HostTensor, i32Tensor } from "../ir/tensor.js";
import { CheckpointError } from "./checkpoint-error.js";
import { bfloat16BitsToFloat32, float16BitsToFloat32 } from "./half.js";
import {
  STORAGE_ELEMENT_BYTES,
  type StorageDType,
  type StorageRef,
  type TensorRecipe,
} from "./pickle.js";

export type TorchDType = StorageDType;

interface TensorFields {
  readonly kind: "tensor";
  readonly shape: readonly number[];
}

/** A materialised tensor, row-major; f16 and bf16 hold their bit patterns. */
export type TorchTensor =
  | (TensorFields & { readonly dtype: "f32"; readonly data: Float32Array })
  | (TensorFields & { readonly dtype: "f16" | "bf16"; readonly data: Uint16Array })
  | (TensorFields & { readonly dtype: "f64"; readonly data: Float64Array })
  | (TensorFields & { readonly dtype: "i64"; readonly data: BigInt64Array })
  | (TensorFields & { readonly dtype: "i32"; readonly data: Int32Array });

export function isTorchTensor(value: unknown): value is TorchTensor {
  return (
    typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "tensor"
  );
}

/** Reads a storage's bytes: exactly numel × element size, little-endian, byteOffset 0. */
export interface StorageSource {
  read(ref: StorageRef): Uint8Array;
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** A storage in host order, as 16-bit words (every element size is a multiple of 2). */
interface LoadedStorage {
  readonly ref: StorageRef;
  readonly words: Uint16Array;
}

/** Turns tensor recipes into tensors, reading each storage once. */
export class TensorMaterialiser {
  private readonly storages = new Map<string, LoadedStorage>();
  private readonly views = new Map<string, TorchTensor>();
  private bytesLeft: number;

  constructor(
    private readonly file: string,
    private readonly source: StorageSource,
    /** Most bytes all view copies together may take (the file's size). */
    budgetBytes: number,
  ) {
    this.bytesLeft = budgetBytes;
  }

  /** `name` (a state_dict key) names the tensor in errors; else its storage key does. */
  materialise(recipe: TensorRecipe, name?: string): TorchTensor {
    const place =
      name === undefined
        ? `storage ${JSON.stringify(recipe.storage.key)}`
        : `tensor ${JSON.stringify(name)}`;
    const fail = (detail: string): never => {
      throw new CheckpointError(this.file, place, detail);
    };
    const signature = JSON.stringify([
      recipe.storage.key,
      recipe.storage.dtype,
      recipe.storageOffset,
      recipe.shape,
      recipe.stride,
    ]);
    const known = this.views.get(signature);
    if (known !== undefined) return known;

    const count = checkView(recipe, fail);
    const storage = this.load(recipe.storage, fail);
    const wordsPerElement = STORAGE_ELEMENT_BYTES[recipe.storage.dtype] / 2;
    let words: Uint16Array;
    if (count === recipe.storage.numel && recipe.storageOffset === 0 && isContiguous(recipe)) {
      words = storage.words;
    } else {
      const bytes = count * wordsPerElement * 2;
      if (bytes > this.bytesLeft) {
        fail(
          `copying this view needs ${bytes} bytes, past what is left of the file-size budget ` +
            `(${this.bytesLeft}): too many overlapping views of storages`,
        );
      }
      this.bytesLeft -= bytes;
      words = gather(storage.words, wordsPerElement, recipe, count);
    }
    const tensor = wrap(recipe.storage.dtype, recipe.shape, words);
    this.views.set(signature, tensor);
    return tensor;
  }

  private load(ref: StorageRef, fail: (detail: string) => never): LoadedStorage {
    const cached = this.storages.get(ref.key);
    if (cached !== undefined) {
      if (cached.ref.dtype !== ref.dtype || cached.ref.numel !== ref.numel) {
        fail(
          `storage ${JSON.stringify(ref.key)} is referenced as ${ref.dtype}[${ref.numel}] and as ` +
            `${cached.ref.dtype}[${cached.ref.numel}]`,
        );
      }
      return cached;
    }
    const bytes = this.source.read(ref);
    const elementBytes = STORAGE_ELEMENT_BYTES[ref.dtype];
    if (!HOST_IS_LITTLE_ENDIAN) swapBytes(bytes, elementBytes);
    const loaded = {
      ref,
      words: new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2),
    };
    this.storages.set(ref.key, loaded);
    return loaded;
  }
}

/** Checks the view lies inside its storage and returns its element count. */
function checkView(recipe: TensorRecipe, fail: (detail: string) => never): number {
  const { shape, stride, storageOffset, storage } = recipe;
  const describeView = () =>
    `view ${formatShape(shape)} with stride ${formatShape(stride)} at offset ${storageOffset}`;
  let count = 1;
  for (const size of shape) {
    count *= size;
    if (!Number.isSafeInteger(count)) fail(`${describeView()} has too many elements`);
  }
  if (count === 0) {
    if (storageOffset > storage.numel) {
      fail(`${describeView()} starts past the storage's ${storage.numel} elements`);
    }
    return 0;
  }
  let last = storageOffset;
  for (let d = 0; d < shape.length; d++) {
    last += (shape[d]! - 1) * stride[d]!;
    if (!Number.isSafeInteger(last)) fail(`${describeView()} reaches out of range`);
  }
  if (last >= storage.numel) {
    fail(`${describeView()} reaches element ${last}, past the storage's ${storage.numel} elements`);
  }
  return count;
}

/** Row-major contiguous: each stride is the product of the later sizes (size-1 dims aside). */
function isContiguous(recipe: TensorRecipe): boolean {
  let expected = 1;
  for (let d = recipe.shape.length - 1; d >= 0; d--) {
    const size = recipe.shape[d]!;
    if (size !== 1 && recipe.stride[d] !== expected) return false;
    expected *= size;
  }
  return true;
}

/**
 * Copies the view's elements in row-major order. An odometer walks the index vector;
 * `source` is the element index offset + Σ index[d] · stride[d], kept up to date: a step
 * in dimension d adds stride[d], and wrapping it back to 0 subtracts size[d] · stride[d].
 */
function gather(
  storage: Uint16Array,
  wordsPerElement: number,
  recipe: TensorRecipe,
  count: number,
): Uint16Array {
  const { shape, stride, storageOffset } = recipe;
  if (isContiguous(recipe)) {
    return storage.slice(
      storageOffset * wordsPerElement,
      (storageOffset + count) * wordsPerElement,
    );
  }
  const out = new Uint16Array(count * wordsPerElement);
  const index = new Array<number>(shape.length).fill(0);
  let source = storageOffset;
  for (let i = 0; i < count; i++) {
    for (let w = 0; w < wordsPerElement; w++) {
      out[i * wordsPerElement + w] = storage[source * wordsPerElement + w]!;
    }
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]!++;
      source += stride[d]!;
      if (index[d]! < shape[d]!) break;
      source -= shape[d]! * stride[d]!;
      index[d] = 0;
    }
  }
  return out;
}

function wrap(dtype: TorchDType, shape: readonly number[], words: Uint16Array): TorchTensor {
  const { buffer, byteOffset, length } = words;
  const bytes = length * 2;
  const fields = { kind: "tensor", shape: [...shape] } as const;
  switch (dtype) {
    case "f32":
      return { ...fields, dtype, data: new Float32Array(buffer, byteOffset, bytes / 4) };
    case "f16":
    case "bf16":
      return { ...fields, dtype, data: words };
    case "f64":
      return { ...fields, dtype, data: new Float64Array(buffer, byteOffset, bytes / 8) };
    case "i64":
      return { ...fields, dtype, data: new BigInt64Array(buffer, byteOffset, bytes / 8) };
    case "i32":
      return { ...fields, dtype, data: new Int32Array(buffer, byteOffset, bytes / 4) };
    default:
      return dtype satisfies never;
  }
}

function swapBytes(bytes: Uint8Array, elementBytes: number): void {
  for (let at = 0; at < bytes.length; at += elementBytes) {
    bytes.subarray(at, at + elementBytes).reverse();
  }
}

// ---------------------------------------------------------------------------------------
// To sprig's host tensors
// ---------------------------------------------------------------------------------------

/**
 * A checkpoint tensor as sprig's HostTensor: f32 as is (sharing the data), f16 and bf16
 * widened exactly, f64 rounded to nearest f32 (a finite value beyond the f32 range is
 * an error), i64 narrowed to i32 with every value range-checked (PyTorch stores index
 * buffers as int64; a silent wrap-around would corrupt gathers), i32 as is.
 */
export function torchTensorToHost(tensor: TorchTensor, file: string, name: string): HostTensor {
  const fail = (detail: string): never => {
    throw new CheckpointError(file, `tensor ${JSON.stringify(name)}`, detail);
  };
  switch (tensor.dtype) {
    case "f32":
      return f32Tensor(tensor.shape, tensor.data);
    case "f16":
      return f32Tensor(tensor.shape, float16BitsToFloat32(tensor.data));
    case "bf16":
      return f32Tensor(tensor.shape, bfloat16BitsToFloat32(tensor.data));
    case "f64": {
      const values = Float32Array.from(tensor.data);
      for (let i = 0; i < values.length; i++) {
        if (!Number.isFinite(values[i]!) && Number.isFinite(tensor.data[i]!)) {
          fail(`f64 value ${tensor.data[i]} at flat index ${i} is outside the f32 range`);
        }
      }
      return f32Tensor(tensor.shape, values);
    }
    case "i64":
      return i32Tensor(tensor.shape, narrowInt64(tensor.data, fail));
    case "i32":
      return i32Tensor(tensor.shape, tensor.data);
    default:
      return tensor satisfies never;
  }
}

/** An int64 fits int32 exactly when its high word is the sign extension of its low word. */
function narrowInt64(values: BigInt64Array, fail: (detail: string) => never): Int32Array {
  const words = new Int32Array(values.buffer, values.byteOffset, values.length * 2);
  const [low, high] = HOST_IS_LITTLE_ENDIAN ? [0, 1] : [1, 0];
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const lowWord = words[2 * i + low]!;
    if (words[2 * i + high]! !== lowWord >> 31) {
      fail(
        `i64 value ${values[i]} at flat index ${i} is outside the int32 range ` +
          `[-2147483648, 2147483647]`,
      );
    }
    out[i] = lowWord;
  }
  return out;
}

/** Every tensor of a state_dict as a HostTensor (see torchTensorToHost). */
export function stateDictToHost(
  stateDict: ReadonlyMap<string, TorchTensor>,
  file: string,
): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, tensor] of stateDict) out.set(name, torchTensorToHost(tensor, file, name));
  return out;
}
