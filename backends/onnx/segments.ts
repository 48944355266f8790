import { GraphBuilder, metaOf } from "../../src/ir/builder.js";
import type { AnyNode, Graph, TensorRef } from "../../src/ir/graph.js";
import { refKey } from "../../src/ir/graph.js";

/**
 * A graph cut into stages that run one after another: ONNX segments (sub-graphs, each one
 * ONNX model) and host nodes (run by a kernel outside onnxruntime). Values cross stages by
 * name; every stage reads only graph inputs, weights, constants and earlier stages' values.
 */
export interface OnnxStage {
  readonly kind: "onnx";
  readonly graph: Graph;
  /** Sub-graph input name → the tensor of the whole graph it receives. */
  readonly inputs: readonly { readonly name: string; readonly ref: TensorRef }[];
  /** Sub-graph output name → the tensor of the whole graph it produces. */
  readonly outputs: readonly { readonly name: string; readonly ref: TensorRef }[];
}

export interface HostStage {
  readonly kind: "host";
  readonly node: AnyNode;
}

export type Stage = OnnxStage | HostStage;

const isSource = (node: AnyNode): boolean =>
  node.op === "input" || node.op === "weight" || node.op === "constant";

/** The name a crossing tensor has in the sub-graphs. */
export function crossingName(ref: TensorRef): string {
  return `sprig.${refKey(ref).slice(1).replace(":", ".")}`;
}

/**
 * Cuts `graph` before and after every node for which `onHost` holds. The other
 * computing nodes form maximal runs in node order (a topological order), one ONNX
 * segment per run; sources are copied into each segment that reads them (graph inputs
 * keep their names, so a segment is fed like the whole graph). A segment's outputs are the
 * tensors later stages or the graph's outputs read.
 */
export function splitGraph(graph: Graph, onHost: (node: AnyNode) => boolean): Stage[] {
  const runs: AnyNode[][] = [];
  const hostAfterRun: (AnyNode | null)[] = [];
  let current: AnyNode[] = [];
  for (const node of graph.nodes) {
    if (isSource(node)) continue;
    if (onHost(node)) {
      runs.push(current);
      hostAfterRun.push(node);
      current = [];
    } else {
      current.push(node);
    }
  }
  runs.push(current);
  hostAfterRun.push(null);

  // The stage index of each computing node, to find which tensors cross stages.
  const stageOf = new Map<number, number>();
  let index = 0;
  runs.forEach((run, r) => {
    for (const node of run) stageOf.set(node.id, index);
    if (run.length > 0) index++;
    const host = hostAfterRun[r];
    if (host) stageOf.set(host.id, index++);
  });
  const readLater = new Set<string>();
  for (const node of graph.nodes) {
    for (const ref of node.inputs) {
      const from = stageOf.get(ref.node);
      if (from !== undefined && from !== stageOf.get(node.id)) readLater.add(refKey(ref));
    }
  }
  for (const { ref } of graph.outputs) readLater.add(refKey(ref));

  const stages: Stage[] = [];
  runs.forEach((run, r) => {
    if (run.length > 0) {
      const segment = segmentGraph(graph, run, readLater, stages.length);
      if (segment.outputs.length > 0) stages.push(segment);
    }
    const host = hostAfterRun[r];
    if (host) stages.push({ kind: "host", node: host });
  });
  return stages;
}

function segmentGraph(
  graph: Graph,
  run: readonly AnyNode[],
  readLater: ReadonlySet<string>,
  index: number,
): OnnxStage {
  const b = new GraphBuilder(`${graph.name}.${index}`);
  const inside = new Set(run.map((node) => node.id));
  const mapped = new Map<string, TensorRef>();
  const inputs: { name: string; ref: TensorRef }[] = [];
  const bring = (ref: TensorRef): TensorRef => {
    const key = refKey(ref);
    const known = mapped.get(key);
    if (known !== undefined) return known;
    const source = graph.nodes[ref.node]!;
    let local: TensorRef;
    if (isSource(source)) {
      local = b.add(source.op, [], source.attrs, metaOf(source))[ref.output]!;
      if (source.op === "input") inputs.push({ name: source.attrs.name, ref });
    } else {
      const name = crossingName(ref);
      local = b.input(name, source.outputs[ref.output]!);
      inputs.push({ name, ref });
    }
    mapped.set(key, local);
    return local;
  };
  const outputs: { name: string; ref: TensorRef }[] = [];
  for (const node of run) {
    const refs = b.add(
      node.op,
      node.inputs.map((ref) => (inside.has(ref.node) ? mapped.get(refKey(ref))! : bring(ref))),
      node.attrs,
      metaOf(node),
    );
    refs.forEach((local, output) => {
      const ref = { node: node.id, output };
      mapped.set(refKey(ref), local);
      if (readLater.has(refKey(ref))) {
        const name = crossingName(ref);
        b.output(name, local);
        outputs.push({ name, ref });
      }
    });
  }
  return { kind: "onnx", graph: b.build(), inputs, outputs };
}
