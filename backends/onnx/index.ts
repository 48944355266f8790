import { BackendError } from "../../src/ir/errors.js";
import { type Graph, graphInputs, type Node, refKey, type TensorRef } from "../../src/ir/graph.js";
import { type HostTensor, numElements } from "../../src/ir/tensor.js";
import { checkInputs } from "../../src/runtime/inputs.js";
import { bindWeights, type WeightStore } from "../../src/runtime/weights.js";
import { analyzeCost } from "../../src/cost.js";
import type { Availability, Backend, CompileOptions, Executable } from "../backend.js";
import { nativeBlockSparseAttention, nativeStatus } from "../native/index.js";
import { buildOnnxModel, type OnnxBuildOptions, usesMemoryArena } from "./model.js";
import { OnnxGraphWriter, OPSET } from "./proto.js";
import { recordStagedProfile, type StagedProfile } from "./profile.js";
import { splitGraph } from "./segments.js";
import {
  createSession,
  DEFAULT_THREADS,
  fromOrt,
  loadOrt,
  profilePrefix,
  toOrt,
} from "./session.js";

export { LOWERINGS, type Lowering, type LowerContext } from "./lower.js";
export {
  ARENA_TENSOR_LIMIT,
  buildOnnxModel,
  exportOnnx,
  largeTensorNodes,
  largestIntermediateBytes,
  type OnnxBuildOptions,
  usesMemoryArena,
} from "./model.js";
export { type StagedProfile, stagedProfile } from "./profile.js";
export { IR_VERSION, OPSET } from "./proto.js";

/**
 * The onnx backend: the sprig graph becomes ONNX (opset 17, weights as initializers with
 * raw_data), run by onnxruntime-node's CPU execution provider with every graph
 * optimization on, one intra-op pool of CompileOptions.threads threads (default 2).
 * Lowering (lower.ts, attention.ts, relpos.ts): linear layers are 2-D Gemms; block-sparse
 * attention gathers each layer's key and value blocks once and runs every (block, head)
 * product in one batched kernel; relative position biases of constant token indices are
 * computed while building.
 *
 * When sprig's native kernels are built (backends/native), block-sparse attention runs in
 * them instead: the graph is cut at each blockSparseAttention node (segments.ts) into
 * ONNX segments, one session each, and the attention between them runs on the same number
 * of threads. onnxruntime reaches only ~55% of its dense attention's FLOP rate on SViTT's
 * small block products; the native kernel keeps each block in cache (bench/, README).
 * `sprig export` always writes the single standard model.
 */

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

/** A graph compiled to one ONNX session; runs it on host tensors fed by name. */
interface ModelRun {
  readonly arena: boolean;
  run(feeds: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>>;
  release(): void;
}

async function openModel(
  graph: Graph,
  weights: WeightStore,
  build: OnnxBackendOptions,
  threads: number,
  spinning = true,
): Promise<ModelRun> {
  const model = buildOnnxModel(graph, weights, build);
  const ort = await loadOrt();
  const arena =
    build.memoryArena === undefined || build.memoryArena === "auto"
      ? usesMemoryArena(graph)
      : build.memoryArena === "on";
  const session = await createSession(model, threads, arena, spinning, profilePrefix(graph.name));
  const inputs = graphInputs(graph).map((node) => node.attrs.name);
  const outputs = graph.outputs.map(({ name, ref }) => ({
    name,
    type: graph.nodes[ref.node]!.outputs[ref.output]!,
  }));
  return {
    arena,
    run: async (values) => {
      const feeds: Record<string, import("onnxruntime-node").Tensor> = {};
      for (const name of inputs) feeds[name] = toOrt(ort, values.get(name)!);
      let results: Awaited<ReturnType<typeof session.run>>;
      try {
        results = await session.run(feeds);
      } catch (error) {
        throw new BackendError(
          `onnx: running graph ${graph.name} failed: ${(error as Error).message ?? String(error)}`,
        );
      }
      const out = new Map<string, HostTensor>();
      for (const { name, type } of outputs) {
        const value = results[name];
        if (value === undefined) throw new BackendError(`onnx: output "${name}" is missing`);
        out.set(name, fromOrt(name, value, type));
      }
      return out;
    },
    release: () => void session.release().catch(() => undefined),
  };
}

/**
 * Share of a graph's multiply-adds in block-sparse attention from which "auto" runs it in
 * the native kernel. Every cut costs: each segment is its own session (own thread pool, run
 * without spinning so that idle pools do not steal the cores from the next stage) and
 * every crossing tensor is copied out of onnxruntime. Measured on the project machine
 * (2026-12-02, `sprig run --json --kernels off|on`, one process each, 7 forwards, 3
 * alternations): the 8-frame SViTT encoder, 4.7% of its MACs in block-sparse attention, ran
 * in 1104-1215 ms as one model and 1371-1468 ms staged, while one 8-frame attention layer
 * alone ran in 16.1 ms staged (2026-12-02) against 23.3 ms in onnxruntime (2026-12-01; both
 * `npm run bench -- --suites attention`). So only attention-dominated graphs gain; the
 * threshold lies between those two measured cases (4.7% loses, 100% wins) and is not tuned
 * further.
 */
export const HOST_ATTENTION_SHARE = 0.25;

/** Whether the graph's block-sparse attention runs in sprig's native kernel (index.ts doc). */
function usesHostAttention(graph: Graph, build: OnnxBackendOptions): boolean {
  const choice = build.hostAttention ?? "auto";
  if (choice === false || build.portable === true) return false;
  if (!graph.nodes.some((node) => node.op === "blockSparseAttention") || !nativeStatus().ok) {
    return false;
  }
  if (choice === true) return true;
  const { totals } = analyzeCost(graph);
  return totals.macs > 0 && totals.attentionMacs / totals.macs >= HOST_ATTENTION_SHARE;
}

/** Runs the stages in order, keeping each crossing tensor until its last reader is done. */
async function openStages(
  graph: Graph,
  weights: WeightStore,
  build: OnnxBackendOptions,
  threads: number,
): Promise<ModelRun & { readonly models: number; readonly profile: () => StagedProfile }> {
  const stages = splitGraph(graph, (node) => node.op === "blockSparseAttention");
  const bound = bindWeights(graph, weights);
  const models: (ModelRun | null)[] = [];
  try {
    for (const stage of stages) {
      models.push(
        stage.kind === "onnx" ? await openModel(stage.graph, weights, build, threads, false) : null,
      );
    }
  } catch (error) {
    for (const model of models) model?.release();
    throw error;
  }
  // For each crossing tensor, the last stage that reads it (graph outputs: never freed).
  const lastRead = new Map<string, number>();
  stages.forEach((stage, i) => {
    const refs = stage.kind === "onnx" ? stage.inputs.map((x) => x.ref) : stage.node.inputs;
    for (const ref of refs) lastRead.set(refKey(ref), i);
  });
  for (const { ref } of graph.outputs) lastRead.set(refKey(ref), stages.length);
  // Per stage, time summed over runs (the profile; cheap enough to keep always).
  const stageMs = stages.map(() => 0);
  let runs = 0;
  const crossingBytes = stages.reduce(
    (sum, stage) =>
      stage.kind === "onnx"
        ? sum +
          stage.outputs.reduce((bytes, { ref }) => {
            const type = graph.nodes[ref.node]!.outputs[ref.output]!;
            return bytes + 4 * numElements(type.shape);
          }, 0)
        : sum,
    0,
  );
  const read = (values: Map<string, HostTensor>, ref: TensorRef): HostTensor => {
    const source = graph.nodes[ref.node]!;
    const value =
      source.op === "weight"
        ? bound.get(source.attrs.name)
        : source.op === "constant"
          ? source.attrs.value
          : values.get(refKey(ref));
    if (value === undefined) throw new BackendError(`onnx: ${refKey(ref)} has no value`);
    return value;
  };
  return {
    arena: models.every((model) => model === null || model.arena),
    models: models.filter((model) => model !== null).length,
    run: async (feeds) => {
      const values = new Map<string, HostTensor>();
      for (const node of graphInputs(graph)) {
        values.set(refKey({ node: node.id, output: 0 }), feeds.get(node.attrs.name)!);
      }
      for (const [i, stage] of stages.entries()) {
        const started = performance.now();
        if (stage.kind === "onnx") {
          const stageFeeds = new Map(
            stage.inputs.map(({ name, ref }) => [name, read(values, ref)]),
          );
          const results = await models[i]!.run(stageFeeds);
          for (const { name, ref } of stage.outputs) values.set(refKey(ref), results.get(name)!);
        } else {
          const node = stage.node as Node<"blockSparseAttention">;
          const outputs = nativeBlockSparseAttention(
            node,
            node.inputs.map((ref) => read(values, ref)),
            threads,
          );
          for (const [output, value] of outputs.entries()) {
            values.set(refKey({ node: node.id, output }), value);
          }
        }
        stageMs[i]! += performance.now() - started;
        for (const [key, last] of lastRead) if (last === i) values.delete(key);
      }
      runs++;
      return new Map(graph.outputs.map(({ name, ref }) => [name, read(values, ref)]));
    },
    release: () => {
      for (const model of models) model?.release();
    },
    profile: () => ({
      segments: models.filter((model) => model !== null).length,
      hostNodes: stages.filter((stage) => stage.kind === "host").length,
      runs,
      segmentMs: stageMs.filter((_, i) => stages[i]!.kind === "onnx"),
      hostMs: stageMs.filter((_, i) => stages[i]!.kind === "host"),
      crossingBytes,
    }),
  };
}

async function compile(
  graph: Graph,
  weights: WeightStore,
  options: CompileOptions | undefined,
  build: OnnxBackendOptions,
): Promise<Executable> {
  const threads = threadCount(options);
  const ort = await loadOrt();
  const staged = usesHostAttention(graph, build);
  const stagedRun = staged ? await openStages(graph, weights, build, threads) : null;
  let model: (ModelRun & { models?: number }) | null =
    stagedRun ?? (await openModel(graph, weights, build, threads));
  const version = ort.env.versions.node ?? ort.env.versions.common;
  const parts = [
    `onnxruntime-node ${version}, cpu, ${threads} intra-op thread${threads === 1 ? "" : "s"}`,
  ];
  if (staged) {
    const n = model.models ?? 0;
    parts.push(
      `block-sparse attention in sprig's native kernel (${n === 0 ? "no" : n} ONNX segment${n === 1 ? "" : "s"})`,
    );
  }
  if (!model.arena) parts.push("no memory arena (large tensors)");
  if (graph.nodes.some((n) => n.op === "quantizedLinear")) {
    parts.push(
      `int8 linears on onnxruntime's integer kernels (${build.portable ? "MatMulInteger" : "DynamicQuantizeMatMul"})`,
    );
  }
  const executable: Executable = {
    backend: "onnx",
    graph,
    detail: parts.join(", "),
    run: async (values: Readonly<Record<string, HostTensor>>) => {
      if (model === null) {
        throw new BackendError(`onnx: executable for graph ${graph.name} was disposed`);
      }
      checkInputs(graph, values);
      const out = await model.run(new Map(Object.entries(values)));
      return Object.fromEntries(out);
    },
    dispose: () => {
      const released = model;
      model = null;
      released?.release();
    },
  };
  if (stagedRun !== null) recordStagedProfile(executable, stagedRun.profile);
  return executable;
}

export interface OnnxBackendOptions extends OnnxBuildOptions {
  /**
   * Run block-sparse attention in sprig's native kernel (backends/native), between ONNX
   * segments, when the kernel is built (never with `portable`). "auto" (default): when
   * block-sparse attention holds at least HOST_ATTENTION_SHARE of the graph's
   * multiply-adds. false: one ONNX model, attention in onnxruntime, as `sprig export`
   * writes it.
   */
  readonly hostAttention?: boolean | "auto";
  /**
   * onnxruntime's CPU memory arena: "auto" (default) turns it off for models in which more
   * than one node holds a tensor over ARENA_TENSOR_LIMIT (usesMemoryArena, model.ts); "on"
   * and "off" force it.
   */
  readonly memoryArena?: "auto" | "on" | "off";
}

/** An onnx backend with non-default choices (e.g. `{ portable: true }`). */
export function createOnnxBackend(build: OnnxBackendOptions = {}): Backend {
  return {
    name: "onnx",
    cores: "all",
    description: `ONNX models (opset ${OPSET}${build.portable ? ", standard ops only" : ""}) run by onnxruntime-node on the CPU`,
    availability,
    compile: (graph, weights, options) => compile(graph, weights, options, build),
  };
}

export const onnxBackend: Backend = createOnnxBackend();
