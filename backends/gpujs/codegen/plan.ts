import type { Node } from "../../../src/ir/graph.js";
import type { OpKind } from "../../../src/ir/ops/index.js";
import type { TensorType } from "../../../src/ir/tensor.js";
import type { KernelSpec } from "./kernel.js";

/**
 * What a lowering returns for one node: the kernels to launch, in order, and where each of
 * the node's outputs ends up. Launch k produces temporary k; its arguments name the node's
 * inputs or earlier temporaries. Lowerings are pure functions of the node and its input
 * types, so they can be tested and snapshotted without gpu.js.
 */
export type Operand =
  | { readonly kind: "input"; readonly index: number }
  | { readonly kind: "temp"; readonly index: number };

export interface Launch {
  readonly spec: KernelSpec;
  readonly args: readonly Operand[];
  /** Short name of the intermediate (e.g. "localLogits"), for labels and debug output. */
  readonly label: string;
}

export interface NodePlan {
  readonly launches: readonly Launch[];
  /** For each node output, the operand holding it (a reshape may alias its input). */
  readonly outputs: readonly Operand[];
}

/**
 * A source node (input, weight, constant) is bound to host data: the program builder
 * uploads it instead of launching kernels.
 */
export interface SourcePlan {
  readonly source: true;
}

export type Lowering<K extends OpKind> = (
  node: Node<K>,
  inputs: readonly TensorType[],
) => NodePlan | SourcePlan;

export const input = (index: number): Operand => ({ kind: "input", index });
export const temp = (index: number): Operand => ({ kind: "temp", index });

/** A plan of launches whose last temporary is the node's single output. */
export function single(launches: readonly Launch[]): NodePlan {
  return { launches, outputs: [temp(launches.length - 1)] };
}

/** `name` of node, used in kernel names: op kind and node id, e.g. "linear12". */
export function kernelName(node: Pick<Node, "op" | "id">, suffix = ""): string {
  return `${node.op}${node.id}${suffix}`;
}
