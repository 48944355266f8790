import type { TensorType } from "../tensor.js";
import type { OpAttrs, OpFamily, OpKind } from "./types.js";

/**
 * Token independence ("per-token"), the fact that lets a selection of entries move through
 * an op: along each axis the fact covers, output entry i reads only entry i of every
 * `carriers` input (inputs right-aligned with the output, as in broadcasting; a carrier of
 * size 1 there is broadcast) and the other inputs whole, so for a gather G along that axis
 *   G(f(a, b, ...)) = f(G(a), G(b), ...)   (G applied to the carriers that have the axis).
 * `axes`: "all" (elementwise ops) or "leading" (every axis but the last: ops that mix the
 * last axis, such as linear and layerNorm). Omitted: no axis (the op mixes entries, as
 * attention does, or depends on its input as a whole, as dynamic quantisation does).
 */
export interface PerTokenFact {
  readonly axes: "all" | "leading";
  /** The inputs that carry the output's axes; "all": every input. */
  readonly carriers: "all" | readonly number[];
}

/** What the IR knows about one op kind: its family, arity and shape rule. */
export interface OpDef<K extends OpKind> {
  readonly family: OpFamily;
  /** Allowed number of inputs, inclusive. */
  readonly arity: readonly [min: number, max: number];
  /** Output types from input types and attributes; throws ShapeError when they do not fit. */
  readonly infer: (inputs: readonly TensorType[], attrs: OpAttrs[K]) => TensorType[];
  /** Where the op works entry by entry (read by sink-token-selection); see PerTokenFact. */
  readonly perToken?: PerTokenFact;
}

export type OpTable = { readonly [K in OpKind]: OpDef<K> };
