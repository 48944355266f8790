import * as tf from "@tensorflow/tfjs-core";
import { BackendError } from "../../src/ir/errors.js";
import {
  type Graph,
  type Node,
  nodeLabel,
  type TensorRef,
  tensorType,
} from "../../src/ir/graph.js";
import type { DType } from "../../src/ir/dtype.js";
import type { HostTensor } from "../../src/ir/tensor.js";

/** sprig's element types as tfjs dtypes. */
export function tfDtype(dtype: DType): "float32" | "int32" {
  switch (dtype) {
    case "f32":
      return "float32";
    case "i32":
      return "int32";
    default:
      return dtype satisfies never;
  }
}

/** Uploads a host tensor (tfjs copies or adopts the array; callers never mutate it after). */
export function upload(t: HostTensor): tf.Tensor {
  return tf.tensor(t.data, [...t.shape], tfDtype(t.dtype));
}

/** Static shape of input `index` of `node`. */
export function inShape(graph: Graph, node: Node, index: number): readonly number[] {
  const ref = node.inputs[index];
  if (ref === undefined) throw new BackendError(`tfjs: ${nodeLabel(node)} has no input ${index}`);
  return tensorType(graph, ref).shape;
}

/** Static shape of output `index` of `node`. */
export function outShape(node: Node, index = 0): number[] {
  const type = node.outputs[index];
  if (type === undefined) throw new BackendError(`tfjs: ${nodeLabel(node)} has no output ${index}`);
  return [...type.shape];
}

/** Input `index` of a step's arguments (the executor passes exactly the node's inputs). */
export function arg(inputs: readonly tf.Tensor[], index: number): tf.Tensor {
  const t = inputs[index];
  if (t === undefined) throw new BackendError(`tfjs: step is missing input ${index}`);
  return t;
}

export function inputRef(node: Node, index: number): TensorRef {
  const ref = node.inputs[index];
  if (ref === undefined) throw new BackendError(`tfjs: ${nodeLabel(node)} has no input ${index}`);
  return ref;
}

/**
 * Reusable host arrays, one per role, shared by every step of one executable (steps run one
 * at a time). Why: every fresh large ArrayBuffer is page-faulted in anew, and in this VM a
 * fresh 34 MB read-back costs ~100 ms against ~5 ms into warm memory; reusing arrays keeps
 * a 16-frame block-sparse layer linear in its size. A tensor must never adopt a scratch
 * array beyond its step (the cpu backend keeps the array it is given), so scratch only
 * feeds uploads whose tensors die with the step.
 */
export class Scratch {
  private readonly f32s = new Map<string, Float32Array>();
  private readonly i32s = new Map<string, Int32Array>();

  f32(role: string, size: number): Float32Array {
    let a = this.f32s.get(role);
    if (a === undefined || a.length < size) {
      a = new Float32Array(size);
      this.f32s.set(role, a);
    }
    return a.subarray(0, size);
  }

  i32(role: string, size: number): Int32Array {
    let a = this.i32s.get(role);
    if (a === undefined || a.length < size) {
      a = new Int32Array(size);
      this.i32s.set(role, a);
    }
    return a.subarray(0, size);
  }
}

/** The wasm backend's view of a tensor in its heap (valid until the heap next grows). */
interface HeapBackend {
  typedArrayFromHeap(t: tf.TensorInfo): ArrayLike<number>;
}

function heapView(t: tf.Tensor): Float32Array | Int32Array | null {
  const backend = tf.backend() as unknown as Partial<HeapBackend>;
  if (typeof backend.typedArrayFromHeap !== "function") return null;
  const view = backend.typedArrayFromHeap(t);
  return view instanceof Float32Array || view instanceof Int32Array ? view : null;
}

/**
 * Host values of a tensor, read synchronously (only on backends that allow it: cpu, wasm).
 * On wasm the values are copied from the heap into the scratch array of `role` (dataSync
 * would allocate a fresh array per read); elsewhere they come from dataSync, which on cpu
 * is the backend's own storage. Read the result, never write it, and do not keep it past
 * the step.
 */
export function readF32(t: tf.Tensor, scratch?: Scratch, role?: string): Float32Array {
  if (t.dtype !== "float32") throw new BackendError(`tfjs: expected float32, got ${t.dtype}`);
  if (scratch !== undefined && role !== undefined) {
    const view = heapView(t);
    if (view instanceof Float32Array) {
      const out = scratch.f32(role, view.length);
      out.set(view);
      return out;
    }
  }
  const data = t.dataSync();
  if (!(data instanceof Float32Array)) throw new BackendError(`tfjs: expected float32 values`);
  return data;
}

export function readI32(t: tf.Tensor): Int32Array {
  const data = t.dataSync();
  if (!(data instanceof Int32Array)) throw new BackendError(`tfjs: expected int32, got ${t.dtype}`);
  return data;
}

/** Product of dimensions. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
