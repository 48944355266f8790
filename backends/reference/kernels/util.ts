import { BackendError } from "../../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../../src/ir/graph.js";
import type { OpKind } from "../../../src/ir/ops/index.js";
import { formatShape, type HostTensor } from "../../../src/ir/tensor.js";

/**
 * A reference kernel: computes one node's outputs from its input values, in the order of
 * `node.outputs`. Kernels never modify their inputs, so outputs may share input buffers.
 */
export type Kernel<K extends OpKind> = (
  node: Node<K>,
  inputs: readonly HostTensor[],
) => HostTensor[];

export type F32Tensor = HostTensor & { readonly dtype: "f32" };
export type I32Tensor = HostTensor & { readonly dtype: "i32" };

function operand(node: Node, inputs: readonly HostTensor[], index: number): HostTensor {
  const tensor = inputs[index];
  if (tensor === undefined) {
    throw new BackendError(`reference: ${nodeLabel(node)} is missing input ${index}`);
  }
  return tensor;
}

/** Input `index` of `node`, which must be f32. */
export function f32In(node: Node, inputs: readonly HostTensor[], index: number): F32Tensor {
  const tensor = operand(node, inputs, index);
  if (tensor.dtype !== "f32") {
    throw new BackendError(
      `reference: ${nodeLabel(node)} input ${index} is ${tensor.dtype}${formatShape(tensor.shape)}, expected f32`,
    );
  }
  return tensor;
}

/** Input `index` of `node`, which must be i32. */
export function i32In(node: Node, inputs: readonly HostTensor[], index: number): I32Tensor {
  const tensor = operand(node, inputs, index);
  if (tensor.dtype !== "i32") {
    throw new BackendError(
      `reference: ${nodeLabel(node)} input ${index} is ${tensor.dtype}${formatShape(tensor.shape)}, expected i32`,
    );
  }
  return tensor;
}

/** Input `index` of `node`, any dtype. */
export function anyIn(node: Node, inputs: readonly HostTensor[], index: number): HostTensor {
  return operand(node, inputs, index);
}

/** The static shape of output `index` (from the shape rule). */
export function outShape(node: Node, index = 0): readonly number[] {
  const type = node.outputs[index];
  if (type === undefined) {
    throw new BackendError(`reference: ${nodeLabel(node)} has no output ${index}`);
  }
  return type.shape;
}

/** An f32 tensor over `data` without copying or re-checking the shape. */
export function f32Out(shape: readonly number[], data: Float32Array): F32Tensor {
  return { dtype: "f32", shape: [...shape], data };
}
