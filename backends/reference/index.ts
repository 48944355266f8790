import { BackendError } from "../../src/ir/errors.js";
import { type AnyNode, type Graph, nodeLabel, refKey } from "../../src/ir/graph.js";
import { formatShape, type HostTensor, sameShape } from "../../src/ir/tensor.js";
import { checkInputs } from "../../src/runtime/inputs.js";
import { bindWeights, type WeightStore } from "../../src/runtime/weights.js";
import type { Backend, Executable } from "../backend.js";
import { runKernel } from "./kernels.js";

export { KERNELS, type Kernel } from "./kernels.js";

/**
 * The reference backend: a plain TypeScript interpreter that runs each node's kernel in
 * graph order, in float32 storage with float64 accumulation. It is the oracle every other
 * backend is checked against, so its kernels favour plain loops over cleverness.
 */

/** A graph with its weights bound and its memory plan made; runs synchronously. */
interface Program {
  readonly graph: Graph;
  readonly weights: ReadonlyMap<string, HostTensor>;
  /** For each step (node id), the node ids whose values can be dropped after it. */
  readonly freeAfter: readonly (readonly number[])[];
}

/**
 * The memory plan: for each step (node id), the ids of the nodes whose values are no longer
 * read after it, i.e. whose last consumer is that step (or the node itself when nothing
 * reads it). Nodes behind graph outputs are never freed.
 */
export function freeSchedule(graph: Graph): number[][] {
  const lastUse = graph.nodes.map((node) => node.id);
  for (const node of graph.nodes) {
    for (const ref of node.inputs) lastUse[ref.node] = Math.max(lastUse[ref.node]!, node.id);
  }
  const kept = new Set(graph.outputs.map((o) => o.ref.node));
  const freeAfter: number[][] = graph.nodes.map(() => []);
  lastUse.forEach((step, id) => {
    if (!kept.has(id)) freeAfter[step]!.push(id);
  });
  return freeAfter;
}

/** Binds the weights (WeightError when any is missing or mis-shaped) and plans memory. */
function prepare(graph: Graph, store: WeightStore): Program {
  return { graph, weights: bindWeights(graph, store), freeAfter: freeSchedule(graph) };
}

function sourceValue(
  program: Program,
  node: AnyNode,
  inputs: Readonly<Record<string, HostTensor>>,
): HostTensor | null {
  switch (node.op) {
    case "input": {
      const value = inputs[node.attrs.name];
      if (value === undefined)
        throw new BackendError(`reference: input "${node.attrs.name}" is not bound`);
      return value;
    }
    case "weight": {
      const value = program.weights.get(node.attrs.name);
      if (value === undefined)
        throw new BackendError(`reference: weight "${node.attrs.name}" is not bound`);
      return value;
    }
    default:
      return null;
  }
}

/** Interprets the program on checked inputs; returns every graph output by name. */
function execute(
  program: Program,
  inputs: Readonly<Record<string, HostTensor>>,
): Record<string, HostTensor> {
  const { graph, freeAfter } = program;
  const values: (HostTensor[] | undefined)[] = new Array(graph.nodes.length);
  for (const node of graph.nodes) {
    const source = sourceValue(program, node, inputs);
    let outputs: HostTensor[];
    if (source !== null) {
      outputs = [source];
    } else {
      const args = node.inputs.map((ref) => {
        const value = values[ref.node]?.[ref.output];
        if (value === undefined) {
          throw new BackendError(
            `reference: ${nodeLabel(node)} reads ${refKey(ref)}, which holds no value`,
          );
        }
        return value;
      });
      outputs = runKernel(node, args);
    }
    checkOutputs(node, outputs);
    values[node.id] = outputs;
    for (const id of freeAfter[node.id]!) values[id] = undefined;
  }
  const result: Record<string, HostTensor> = {};
  for (const { name, ref } of graph.outputs) {
    const value = values[ref.node]?.[ref.output];
    if (value === undefined)
      throw new BackendError(`reference: output "${name}" (${refKey(ref)}) holds no value`);
    result[name] = value;
  }
  return result;
}

/** A kernel must produce exactly the types the shape rule promised. */
function checkOutputs(node: AnyNode, outputs: readonly HostTensor[]): void {
  const ok =
    outputs.length === node.outputs.length &&
    outputs.every((t, i) => {
      const type = node.outputs[i]!;
      return (
        t.dtype === type.dtype &&
        sameShape(t.shape, type.shape) &&
        t.data.length === t.shape.reduce((a, b) => a * b, 1)
      );
    });
  if (!ok) {
    const got = outputs.map((t) => `${t.dtype}${formatShape(t.shape)}`).join(", ");
    const want = node.outputs.map((t) => `${t.dtype}${formatShape(t.shape)}`).join(", ");
    throw new BackendError(
      `reference: kernel of ${nodeLabel(node)} produced ${got}, expected ${want}`,
    );
  }
}

/**
 * Runs a graph on the reference kernels synchronously: binds the weights (WeightError),
 * checks the inputs (InputError), and returns every graph output by name.
 */
export function runReference(
  graph: Graph,
  weights: WeightStore,
  inputs: Readonly<Record<string, HostTensor>>,
): Record<string, HostTensor> {
  const program = prepare(graph, weights);
  checkInputs(graph, inputs);
  return execute(program, inputs);
}

export const referenceBackend: Backend = {
  name: "reference",
  cores: "one",
  description:
    "plain TypeScript kernels (float32 storage, float64 accumulation); the oracle for every other backend",
  availability: async () => ({ ok: true, detail: "always available (pure TypeScript)" }),
  compile: async (graph: Graph, weights: WeightStore): Promise<Executable> => {
    let program: Program | null = prepare(graph, weights);
    return {
      backend: "reference",
      graph,
      detail: "TypeScript interpreter, float64 accumulation",
      run: async (inputs) => {
        if (program === null)
          throw new BackendError(`reference: executable for graph ${graph.name} was disposed`);
        checkInputs(graph, inputs);
        return execute(program, inputs);
      },
      dispose: () => {
        program = null;
      },
    };
  },
};
