import { writeFileAtomic } from "../../src/io/atomic.js";
import { BackendError } from "../../src/ir/errors.js";
import { type Graph, graphInputs } from "../../src/ir/graph.js";
import { type HostTensor, numElements } from "../../src/ir/tensor.js";
import { checkInputs } from "../../src/runtime/inputs.js";
import { bindWeights, type WeightStore } from "../../src/runtime/weights.js";
import type { Availability, Backend, CompileOptions, Executable } from "../backend.js";
import { lowerGraph } from "./lower.js";
import { FOLD_TENSOR_BYTES } from "./relpos.js";
import { OnnxGraphWriter, OPSET } from "./proto.js";
import { createSession, DEFAULT_THREADS, fromOrt, loadOrt, toOrt } from "./session.js";

export { LOWERINGS, type Lowering, type LowerContext } from "./lower.js";
export { IR_VERSION, OPSET } from "./proto.js";

/**
 * The onnx backend: the whole sprig graph becomes one ONNX model (opset 17, weights as
 * initializers with raw_data), run by onnxruntime-node's CPU execution provider with every
 * graph optimization on, one intra-op pool of CompileOptions.threads threads (default 2).
 * Lowering (lower.ts, attention.ts, relpos.ts): linear layers are 2-D Gemms; block-sparse
 * attention gathers each layer's key and value blocks once and runs every (block, head)
 * product in one batched kernel; relative position biases of constant token indices are
 * computed while building.
 */

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

function threadCount(options: CompileOptions | undefined): number {
  const threads = options?.threads ?? DEFAULT_THREADS;
  if (!(Number.isInteger(threads) && threads >= 1)) {
    throw new BackendError(`onnx: threads must be an integer >= 1, got ${threads}`);
  }
  return threads;
}

async function availability(): Promise<Availability> {
  try {
    const ort = await loadOrt();
    // A one-node model proves the native library loads and runs, not just the JS wrapper.
    const w = new OnnxGraphWriter("probe");
    w.reserve("x");
    w.reserve("y");
    w.addInput("x", "float", [1]);
    w.node("Identity", ["x"], { outputs: ["y"] });
    w.addOutput("y", "float", [1]);
    const session = await createSession(w.encode("availability probe"), 1);
    await session.release();
    const version = ort.env.versions.node ?? ort.env.versions.common;
    return { ok: true, detail: `onnxruntime-node ${version}, cpu` };
  } catch (error) {
    return { ok: false, reason: (error as Error).message ?? String(error) };
  }
}

/**
 * Largest intermediate below which ORT's CPU memory arena is used: 128 MiB. The arena
 * keeps freed blocks for reuse, which is fastest while tensors are small, but with tensors
 * beyond this its growth costs gigabytes: measured on the project machine on 2026-12-01
 * with a temporary switch forcing the arena on or off (sprig run --json, 1 warm-up and 2
 * timed forwards; bench/scale.bench.ts reruns the "off" side), SViTT at 64 frames peaks at 4.7 GiB with it and 3.3 GiB
 * without (12% slower), the dense encoder at 16 frames at 13.9 GiB and 8.0 GiB (4% slower);
 * at 8 frames turning it off costs SViTT 13% for no memory gain.
 */
export const ARENA_TENSOR_LIMIT = 128 * 2 ** 20;

/**
 * The largest tensor (bytes) the lowered model holds at once, as far as sprig knows it:
 * every node output, and each attention node's logits (dense [B, H, Nq, Nk]; block-sparse
 * [B, H, M, bs, K]), which the ONNX lowering materialises with the bias but the sprig
 * graph does not show.
 */
export function largestIntermediateBytes(graph: Graph): number {
  let largest = 0;
  for (const node of graph.nodes) {
    if (node.op === "weight" || node.op === "constant" || node.op === "input") continue;
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
  }
  return largest;
}

async function compile(
  graph: Graph,
  weights: WeightStore,
  options: CompileOptions | undefined,
  build: OnnxBuildOptions,
): Promise<Executable> {
  const threads = threadCount(options);
  const model = buildOnnxModel(graph, weights, build);
  const ort = await loadOrt();
  const arena = largestIntermediateBytes(graph) <= ARENA_TENSOR_LIMIT;
  let session: Awaited<ReturnType<typeof createSession>> | null = await createSession(
    model,
    threads,
    arena,
  );
  const inputs = graphInputs(graph).map((node) => node.attrs.name);
  const outputs = graph.outputs.map(({ name, ref }) => ({
    name,
    type: graph.nodes[ref.node]!.outputs[ref.output]!,
  }));
  return {
    backend: "onnx",
    graph,
    detail: `onnxruntime-node ${ort.env.versions.node ?? ort.env.versions.common}, cpu, ${threads} intra-op thread${threads === 1 ? "" : "s"}${arena ? "" : ", no memory arena (large tensors)"}`,
    run: async (values: Readonly<Record<string, HostTensor>>) => {
      if (session === null) {
        throw new BackendError(`onnx: executable for graph ${graph.name} was disposed`);
      }
      checkInputs(graph, values);
      const feeds: Record<string, import("onnxruntime-node").Tensor> = {};
      for (const name of inputs) feeds[name] = toOrt(ort, values[name]!);
      let results: Awaited<ReturnType<typeof session.run>>;
      try {
        results = await session.run(feeds);
      } catch (error) {
        throw new BackendError(
          `onnx: running graph ${graph.name} failed: ${(error as Error).message ?? String(error)}`,
        );
      }
      const out: Record<string, HostTensor> = {};
      for (const { name, type } of outputs) {
        const value = results[name];
        if (value === undefined) throw new BackendError(`onnx: output "${name}" is missing`);
        out[name] = fromOrt(name, value, type);
      }
      return out;
    },
    dispose: () => {
      const released = session;
      session = null;
      void released?.release().catch(() => undefined);
    },
  };
}

/** An onnx backend with non-default lowering choices (e.g. `{ portable: true }`). */
export function createOnnxBackend(build: OnnxBuildOptions = {}): Backend {
  return {
    name: "onnx",
    description: `one ONNX model per graph (opset ${OPSET}${build.portable ? ", standard ops only" : ""}), run by onnxruntime-node on the CPU`,
    availability,
    compile: (graph, weights, options) => compile(graph, weights, options, build),
  };
}

export const onnxBackend: Backend = createOnnxBackend();
