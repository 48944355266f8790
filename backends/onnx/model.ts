import { writeFileAtomic } from "../../src/io/atomic.js";
import { BackendError } from "../../src/ir/errors.js";
import type { Graph } from "../../src/ir/graph.js";
import { numElements } from "../../src/ir/tensor.js";
import { bindWeights, type WeightStore } from "../../src/runtime/weights.js";
import { lowerGraph } from "./lower.js";
import type { OnnxGraphWriter } from "./proto.js";
import { FOLD_TENSOR_BYTES } from "./relpos.js";

export interface OnnxBuildOptions {
  /** Text stored in the model's doc_string. */
  readonly docString?: string;
  /**
   * Standard ONNX ops only, so any ONNX runtime can run the model. By default attention
   * uses onnxruntime's com.microsoft MultiHeadAttention kernel, which is faster.
   */
  readonly portable?: boolean;
  /**
   * Largest relative-position bias (bytes) computed while building and stored in the
   * model when its token index is a graph constant (default 64 MiB; 512 MiB per model).
   * Larger biases, and every bias of a run-time token index, are looked up per run.
   */
  readonly foldBytes?: number;
}

/**
 * The serialized ONNX model of `graph` with `weights` as initializers. Graph inputs and
 * outputs keep their sprig names and types (f32 → float, i32 → int32). Throws WeightError
 * when a weight is missing or mis-shaped, BackendError when a node cannot be lowered.
 */
export function buildOnnxModel(
  graph: Graph,
  weights: WeightStore,
  options: OnnxBuildOptions = {},
): Uint8Array {
  const bound = bindWeights(graph, weights);
  const writer: OnnxGraphWriter = lowerGraph(graph, bound, {
    contribOps: options.portable !== true,
    foldTensorBytes: options.foldBytes ?? FOLD_TENSOR_BYTES,
  });
  try {
    return writer.encode(options.docString ?? `sprig graph ${graph.name}`);
  } catch (error) {
    if (error instanceof RangeError)
      throw new BackendError(`onnx: graph ${graph.name}: ${error.message}`);
    throw error;
  }
}

/**
 * Writes the ONNX model of `graph` to `path` atomically (a failed write leaves no file and
 * raises FileWriteError). Returns the model's size in bytes.
 */
export async function exportOnnx(
  graph: Graph,
  weights: WeightStore,
  path: string,
  options: OnnxBuildOptions = {},
): Promise<number> {
  const bytes = buildOnnxModel(graph, weights, options);
  await writeFileAtomic(path, bytes);
  return bytes.byteLength;
}

/**
 * Size from which a tensor counts as large for ORT's CPU memory arena: 128 MiB. The arena
 * keeps freed blocks for reuse, which is fastest while tensors are small, but a model that
 * allocates several large tensors grows it by gigabytes: measured on the project machine on
 * 2026-12-01 with a temporary switch forcing the arena on or off (sprig run --json, 1
 * warm-up and 2 timed forwards; bench/scale.bench.ts reruns the "off" side), SViTT at 64
 * frames peaks at 4.7 GiB with it and 3.3 GiB without (12% slower), the dense encoder at 16
 * frames at 13.9 GiB and 8.0 GiB (4% slower); at 8 frames turning it off costs SViTT 13% for
 * no memory gain. One large tensor is reused run after run instead: one dense attention
 * layer at 16 frames (472 MB of logits) ran in 412-458 ms with the arena and 1008-1129 ms
 * without (2026-12-02, `createOnnxBackend({ memoryArena })`, 4 forwards each, alternating).
 */
export const ARENA_TENSOR_LIMIT = 128 * 2 ** 20;

/**
 * The largest tensor (bytes) `node` holds, as far as sprig knows it: its outputs and, for
 * attention, its logits (dense [B, H, Nq, Nk]; block-sparse [B, H, M, bs, K]), which the
 * ONNX lowering materialises with the bias but the sprig graph does not show.
 */
function nodeLargestBytes(graph: Graph, node: Graph["nodes"][number]): number {
  if (node.op === "weight" || node.op === "constant" || node.op === "input") return 0;
  let largest = 0;
  for (const type of node.outputs) largest = Math.max(largest, 4 * numElements(type.shape));
  const [b, n] = node.outputs[0]!.shape as [number, number];
  if (node.op === "attention") {
    const nk = graph.nodes[node.inputs[1]!.node]!.outputs[node.inputs[1]!.output]!.shape[1]!;
    largest = Math.max(largest, 4 * b * node.attrs.heads * n * nk);
  } else if (node.op === "blockSparseAttention") {
    const { pattern } = node.attrs;
    const keys = pattern.globalTokens + pattern.layout.blocksPerRow * pattern.blockSize;
    const rows = pattern.layout.queryBlocks * pattern.blockSize;
    largest = Math.max(largest, 4 * b * node.attrs.heads * rows * keys);
  }
  return largest;
}

/** The largest tensor (bytes) the lowered model holds at once (see nodeLargestBytes). */
export function largestIntermediateBytes(graph: Graph): number {
  return Math.max(0, ...graph.nodes.map((node) => nodeLargestBytes(graph, node)));
}

/** Nodes holding a tensor over ARENA_TENSOR_LIMIT. */
export function largeTensorNodes(graph: Graph): number {
  return graph.nodes.filter((node) => nodeLargestBytes(graph, node) > ARENA_TENSOR_LIMIT).length;
}

/** Whether the "auto" policy keeps ORT's memory arena: at most one node with a large tensor. */
export function usesMemoryArena(graph: Graph): boolean {
  return largeTensorNodes(graph) <= 1;
}
