import type * as tf from "@tensorflow/tfjs-core";
import type { Graph, Node, TensorRef } from "../../src/ir/graph.js";
import type { OpKind } from "../../src/ir/ops/index.js";
import type { HostTensor } from "../../src/ir/tensor.js";
import type { WasmBlockSparseAttention } from "../native/wasm.js";
import type { TfjsKind } from "./platform.js";
import type { Scratch } from "./util.js";

/**
 * One lowered node: computes the node's outputs (in `node.outputs` order) from its input
 * tensors. The executor runs every step inside tf.tidy, so a step may create temporaries
 * freely; it must not dispose its inputs.
 */
export type Step = (inputs: readonly tf.Tensor[]) => tf.Tensor[];

/**
 * How attention and token selection are lowered.
 * - "device": tfjs ops only (batched matMul over heads and blocks, tf.gather, integer ops
 *   for bias indices). Never reads a tensor back, so it suits every tfjs backend, webgpu
 *   included; the default for cpu, webgl and webgpu.
 * - "host": per-(batch, head, block) 2-D matMuls with operands assembled in JS from
 *   read-back tensors, and bias, gathers and top-k computed in JS. Made for tfjs-wasm, where
 *   only 2-D matMul reaches XNNPACK's fast GEMM while batched matMul, gather and slice are
 *   slow (see attention-host.ts); needs synchronous reads (cpu, wasm).
 */
export type Strategy = "device" | "host";

/** What a lowering may ask for at compile time. */
export interface LowerContext {
  readonly kind: TfjsKind;
  readonly strategy: Strategy;
  readonly graph: Graph;
  /**
   * Largest precomputed relative-position bias, in floats, per attention node (larger ones
   * are rebuilt per run; see attention-common.ts).
   */
  readonly staticBiasLimit: number;
  /**
   * Most logits, in floats, a dense attention step holds at once; heads are grouped to stay
   * within it (see attention-device.ts, headGroups).
   */
  readonly denseLogitsLimit: number;
  /**
   * sprig's own block-sparse attention kernel (WebAssembly SIMD, backends/native), which
   * blockSparseAttention uses instead of tfjs ops when set (tfjs-wasm; see attention.ts).
   */
  readonly sparseKernel: WasmBlockSparseAttention | null;
  /** The value behind `ref` when a weight or constant node produces it, else null. */
  known(ref: TensorRef): HostTensor | null;
  /**
   * Consumes input `index` of `node` at compile time: returns its value when a weight or
   * constant produces it (else null, and nothing is claimed). The step then receives a
   * placeholder in that position and must not read it; a weight or constant that every
   * consumer claims is never uploaded (e.g. a linear weight kept only as its transpose).
   */
  claim(node: Node, index: number): HostTensor | null;
  /** Host arrays reused across steps and runs (see Scratch). */
  readonly scratch: Scratch;
  /** Keeps a tensor made at compile time alive until the executable is disposed. */
  keep<T extends tf.Tensor>(tensor: T): T;
}

/**
 * Lowers one node at compile time: precomputes what it can (transposed weights, bias
 * tables, index tensors) and returns the step that runs it.
 */
export type Lowering<K extends OpKind> = (node: Node<K>, ctx: LowerContext) => Step;
