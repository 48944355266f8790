import type { TensorType } from "../tensor.js";
import type { OpAttrs, OpFamily, OpKind } from "./types.js";

/** What the IR knows about one op kind: its family, arity and shape rule. */
export interface OpDef<K extends OpKind> {
  readonly family: OpFamily;
  /** Allowed number of inputs, inclusive. */
  readonly arity: readonly [min: number, max: number];
  /** Output types from input types and attributes; throws ShapeError when they do not fit. */
  readonly infer: (inputs: readonly TensorType[], attrs: OpAttrs[K]) => TensorType[];
}

export type OpTable = { readonly [K in OpKind]: OpDef<K> };
