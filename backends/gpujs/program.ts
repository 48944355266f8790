import type { DType } from "../../src/ir/dtype.js";
import { BackendError } from "../../src/ir/errors.js";
import {
  type AnyNode,
  type Graph,
  type Node,
  nodeLabel,
  refKey,
  tensorType,
} from "../../src/ir/graph.js";
import type { OpKind } from "../../src/ir/ops/index.js";
import { formatType, type HostTensor, type TensorType } from "../../src/ir/tensor.js";
import { uploadSpec } from "./codegen/dense.js";
import { type GeneratedKernel, type KernelSpec, renderKernels } from "./codegen/kernel.js";
import type { Lowering, NodePlan, Operand, SourcePlan } from "./codegen/plan.js";
import { type View, viewOf } from "./codegen/views.js";
import { LOWERINGS } from "./lowering.js";

/**
 * A compiled gpujs program: the generated kernels and the straight-line schedule that runs
 * them. Both the backend (which interprets it with gpu.js) and the module emitter (which
 * prints it as TypeScript) consume this one structure, so the two cannot drift apart.
 *
 * Values are device tensors (textures in gpu mode, nested arrays in cpu mode), numbered in
 * creation order. Weights and constants are uploaded once (the prologue); inputs at the start
 * of every run; every other value is produced by one kernel launch and freed after its last
 * reader. The only host round trips are those uploads and the final read of the outputs.
 */

/** i32 values travel as float32 on the device: exact up to 2^24. */
export const MAX_EXACT_INTEGER = 1 << 24;

export interface ValueInfo {
  readonly id: number;
  readonly view: View;
  readonly dtype: DType;
  /** e.g. "%12", "%19:1", "%19.localLogits", or "weight encoder.layer.0...". */
  readonly label: string;
  /** The node it belongs to (a source, or the node whose lowering launches its kernel). */
  readonly node: number;
}

export type Source =
  | { readonly kind: "weight"; readonly name: string; readonly type: TensorType }
  | { readonly kind: "input"; readonly name: string; readonly type: TensorType }
  | { readonly kind: "constant"; readonly name: string; readonly tensor: HostTensor };

export interface UploadStep {
  readonly kind: "upload";
  readonly kernel: string;
  readonly value: number;
  readonly source: Source;
}

export interface LaunchStep {
  readonly kind: "launch";
  readonly kernel: string;
  readonly args: readonly number[];
  readonly result: number;
  /** The node this launch belongs to, for comments and error messages. */
  readonly node: number;
}

export type Step = UploadStep | LaunchStep;

/** A host-side check of an i32 input before upload (device kernels cannot raise errors). */
export interface IndexCheck {
  readonly input: string;
  /** Values must lie in [min, limit). */
  readonly range: { readonly min: number; readonly limit: number; readonly why: string };
}

export interface ProgramOutput {
  readonly name: string;
  readonly value: number;
  readonly type: TensorType;
}

export interface Program {
  readonly graph: Graph;
  readonly kernels: readonly GeneratedKernel[];
  readonly values: readonly ValueInfo[];
  /** Weight and constant uploads, run once when the program is loaded. */
  readonly prologue: readonly UploadStep[];
  /** Input uploads, then kernel launches in graph order. */
  readonly steps: readonly Step[];
  /** For each step, the values no step or output reads afterwards. */
  readonly freeAfter: readonly (readonly number[])[];
  readonly outputs: readonly ProgramOutput[];
  readonly inputChecks: readonly IndexCheck[];
}

function lowerNode<K extends OpKind>(
  node: Node<K>,
  inputs: readonly TensorType[],
): NodePlan | SourcePlan {
  const lowering: Lowering<K> = LOWERINGS[node.op];
  return lowering(node, inputs);
}

function isSourcePlan(plan: NodePlan | SourcePlan): plan is SourcePlan {
  return "source" in plan;
}

/** Upper bounds (exclusive) that i32 values reaching index-consuming ops must respect. */
function indexLimits(graph: Graph): Map<number, { limit: number; why: string }> {
  const limits = new Map<number, { limit: number; why: string }>();
  const tighten = (nodeId: number, limit: number, why: string) => {
    const known = limits.get(nodeId);
    if (known === undefined || limit < known.limit) limits.set(nodeId, { limit, why });
  };
  for (const node of graph.nodes) {
    if (node.op === "gather") {
      const size = tensorType(graph, node.inputs[0]!).shape[node.attrs.axis]!;
      tighten(
        node.inputs[1]!.node,
        size - node.attrs.keepPrefix,
        `gather indices of ${nodeLabel(node)}`,
      );
    } else if (node.op === "embedding" || node.op === "selectBatch") {
      // ids index the table's rows; batch indices the batch items
      const rows = tensorType(graph, node.inputs[0]!).shape[0]!;
      tighten(node.inputs[1]!.node, rows, `${node.op} indices of ${nodeLabel(node)}`);
    } else if (
      (node.op === "attention" || node.op === "blockSparseAttention") &&
      node.attrs.relPosBias !== null
    ) {
      const [t, h, w] = node.attrs.relPosBias.window;
      tighten(node.inputs.at(-1)!.node, t * h * w, `token index of ${nodeLabel(node)}`);
    }
  }
  return limits;
}

/**
 * Why an i32 tensor cannot go to the device as is, or null: values must lie in [min, limit)
 * (indices) and be exact in float32.
 */
export function checkIntValues(
  what: string,
  data: Int32Array,
  min: number,
  limit: number,
  why: string,
): string | null {
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!(v >= min && v < limit))
      return `${what}: value ${v} at ${i} outside [${min}, ${limit}) (${why})`;
  }
  return null;
}

/** The range check for an i32 source, given what reads it. */
function intRange(limit: { limit: number; why: string } | undefined): IndexCheck["range"] {
  return limit === undefined
    ? { min: 1 - MAX_EXACT_INTEGER, limit: MAX_EXACT_INTEGER, why: "i32 values travel as float32" }
    : { min: 0, limit: Math.min(limit.limit, MAX_EXACT_INTEGER), why: limit.why };
}

/**
 * Lowers a verified graph: runs every node's lowering, renders and deduplicates the
 * kernels, and plans memory. Throws a BackendError naming the node for anything the gpujs
 * backend cannot run.
 */
export function buildProgram(graph: Graph): Program {
  const values: ValueInfo[] = [];
  const specs: KernelSpec[] = [];
  const newValue = (node: AnyNode, view: View, dtype: DType, label: string): number => {
    if (!(view.x > 0 && view.y > 0 && view.z > 0))
      throw new BackendError(
        `gpujs: ${nodeLabel(node)}: ${label} has no elements; gpu.js kernels need a non-empty output`,
      );
    values.push({ id: values.length, view, dtype, label, node: node.id });
    return values.length - 1;
  };
  // Steps are recorded with a spec index; kernel names are known after rendering.
  type Pending =
    | { kind: "upload"; spec: number; value: number; source: Source; prologue: boolean }
    | { kind: "launch"; spec: number; args: number[]; result: number; node: number };
  const pending: Pending[] = [];
  /** Per launch spec: the views of its arguments (see renderKernels). */
  const argumentKeys: string[] = [];
  const uploadSpecs = new Map<string, number>();
  const uploadKernel = (shape: readonly number[]): number => {
    const view = viewOf(shape);
    const key = `${view.z}x${view.y}x${view.x}`;
    let index = uploadSpecs.get(key);
    if (index === undefined) {
      index = specs.push(uploadSpec(shape)) - 1;
      uploadSpecs.set(key, index);
    }
    return index;
  };
  const nodeValues: number[][] = [];
  const limits = indexLimits(graph);
  const inputChecks: IndexCheck[] = [];

  for (const node of graph.nodes) {
    const types = node.inputs.map((ref) => tensorType(graph, ref));
    const plan = lowerNode(node, types);
    if (isSourcePlan(plan)) {
      const type = node.outputs[0]!;
      const source = sourceOf(node, limits.get(node.id));
      const value = newValue(node, viewOf(type.shape), type.dtype, sourceLabel(source));
      pending.push({
        kind: "upload",
        spec: uploadKernel(type.shape),
        value,
        source,
        prologue: source.kind !== "input",
      });
      if (source.kind === "input" && type.dtype === "i32") {
        inputChecks.push({ input: source.name, range: intRange(limits.get(node.id)) });
      }
      nodeValues.push([value]);
      continue;
    }
    const argValue = (operand: Operand, temps: readonly number[]): number => {
      if (operand.kind === "temp") return temps[operand.index]!;
      const ref = node.inputs[operand.index]!;
      const value = nodeValues[ref.node]?.[ref.output];
      if (value === undefined)
        throw new BackendError(
          `gpujs: ${nodeLabel(node)} reads ${refKey(ref)}, which has no value`,
        );
      return value;
    };
    const outputTemp = new Map<number, number>();
    plan.outputs.forEach((operand, i) => {
      if (operand.kind === "temp") outputTemp.set(operand.index, i);
    });
    const temps: number[] = [];
    plan.launches.forEach((launch, k) => {
      const out = outputTemp.get(k);
      const dtype = out === undefined ? "f32" : node.outputs[out]!.dtype;
      const label =
        out === undefined ? `%${node.id}.${launch.label}` : refKey({ node: node.id, output: out });
      const result = newValue(node, launch.spec.output, dtype, label);
      const spec = specs.push(launch.spec) - 1;
      const args = launch.args.map((operand) => argValue(operand, temps));
      argumentKeys[spec] = JSON.stringify(args.map((value) => values[value]!.view));
      pending.push({ kind: "launch", spec, args, result, node: node.id });
      temps.push(result);
    });
    nodeValues.push(plan.outputs.map((operand) => argValue(operand, temps)));
  }

  const { kernels, nameOf } = renderKernels(specs, argumentKeys);
  const prologue: UploadStep[] = [];
  const steps: Step[] = [];
  for (const step of pending) {
    const kernel = nameOf[step.spec]!;
    if (step.kind === "upload") {
      const upload: UploadStep = { kind: "upload", kernel, value: step.value, source: step.source };
      (step.prologue ? prologue : steps).push(upload);
    } else {
      steps.push({ kind: "launch", kernel, args: step.args, result: step.result, node: step.node });
    }
  }
  // Input uploads first, then launches (pending order interleaves them by node).
  steps.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "upload" ? -1 : 1));
  const outputs: ProgramOutput[] = graph.outputs.map(({ name, ref }) => ({
    name,
    value: nodeValues[ref.node]![ref.output]!,
    type: tensorType(graph, ref),
  }));
  const resident = new Set(prologue.map((step) => step.value));
  return {
    graph,
    kernels,
    values,
    prologue,
    steps,
    freeAfter: planFrees(steps, outputs, resident, values.length),
    outputs,
    inputChecks,
  };
}

/** For each step, the values whose last reader it is (or that it produces unread). */
function planFrees(
  steps: readonly Step[],
  outputs: readonly ProgramOutput[],
  resident: ReadonlySet<number>,
  count: number,
): number[][] {
  const lastUse = new Array<number>(count).fill(-1);
  steps.forEach((step, i) => {
    if (step.kind === "launch") for (const arg of step.args) lastUse[arg] = i;
    const produced = step.kind === "launch" ? step.result : step.value;
    lastUse[produced] = Math.max(lastUse[produced]!, i);
  });
  const kept = new Set([...resident, ...outputs.map((o) => o.value)]);
  const freeAfter: number[][] = steps.map(() => []);
  lastUse.forEach((step, value) => {
    if (step >= 0 && !kept.has(value)) freeAfter[step]!.push(value);
  });
  return freeAfter;
}

function sourceOf(node: AnyNode, limit: { limit: number; why: string } | undefined): Source {
  switch (node.op) {
    case "input":
      return { kind: "input", name: node.attrs.name, type: node.attrs.type };
    case "weight":
      return { kind: "weight", name: node.attrs.name, type: node.attrs.type };
    case "constant": {
      const tensor = node.attrs.value;
      if (tensor.dtype === "i32") {
        const range = intRange(limit);
        const problem = checkIntValues(
          `constant "${node.attrs.name}"`,
          tensor.data,
          range.min,
          range.limit,
          range.why,
        );
        if (problem !== null) throw new BackendError(`gpujs: ${nodeLabel(node)}: ${problem}`);
      }
      return { kind: "constant", name: node.attrs.name, tensor };
    }
    default:
      throw new BackendError(`gpujs: ${nodeLabel(node)} is not a source`);
  }
}

function sourceLabel(source: Source): string {
  const type = source.kind === "constant" ? source.tensor : source.type;
  return `${source.kind} "${source.name}" ${formatType(type)}`;
}
