import * as tf from "@tensorflow/tfjs-core";
import { BackendError, SprigError } from "../../src/ir/errors.js";
import { type AnyNode, type Graph, nodeLabel, refKey, type TensorRef } from "../../src/ir/graph.js";
import { formatShape, type HostTensor, sameShape } from "../../src/ir/tensor.js";
import { lowerNode } from "./lowering.js";
import type { TfjsKind } from "./platform.js";
import type { LowerContext, Step, Strategy } from "./types.js";
import { Scratch, tfDtype, upload } from "./util.js";

/**
 * Compiled programs and their execution, with explicit memory management:
 * - compile time: lowerings run inside tf.tidy and keep (tf.keep) only what they register
 *   with ctx.keep (e.g. a transposed weight); then the weights and constants that some
 *   step still reads are uploaded once; all of it is "resident" and freed by
 *   `disposeProgram`;
 * - run time: each step runs inside tf.tidy (its temporaries die with it); a node's outputs
 *   are disposed after their last reader, counting references so that a tensor held by
 *   several nodes (a step may return an input) dies once; residents are never disposed by a
 *   run; the graph outputs are disposed after they are read back, and everything is
 *   released on error too. So tf.memory().numTensors is the same before and after a run.
 */
export interface Program {
  readonly graph: Graph;
  readonly steps: readonly Step[];
  /** Uploaded weight and constant tensors by node id. */
  readonly sources: ReadonlyMap<number, tf.Tensor>;
  /** Every tensor made at compile time (sources included). */
  readonly resident: ReadonlySet<tf.Tensor>;
  /** "node:input" keys of inputs claimed at compile time (the step gets `placeholder`). */
  readonly claimed: ReadonlySet<string>;
  readonly placeholder: tf.Tensor;
  /** For each step, the node ids whose values are dead after it. */
  readonly freeAfter: readonly (readonly number[])[];
}

/** For each step, the nodes whose last reader it is (nodes behind outputs: never). */
function freeSchedule(graph: Graph): number[][] {
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

/**
 * Lowers every node, then uploads the weights (already bound and checked) and constants
 * that some consumer reads at run time. On failure everything made so far is freed.
 */
export function compileProgram(
  graph: Graph,
  weights: ReadonlyMap<string, HostTensor>,
  kind: TfjsKind,
  strategy: Strategy,
  limits: Pick<LowerContext, "staticBiasLimit" | "denseLogitsLimit" | "sparseKernel">,
): Program {
  const sources = new Map<number, tf.Tensor>();
  const resident = new Set<tf.Tensor>();
  const claimed = new Set<string>();
  const sourceValue = (ref: TensorRef): HostTensor | null => {
    if (ref.output !== 0) return null;
    const node = graph.nodes[ref.node];
    if (node?.op === "weight") return weights.get(node.attrs.name) ?? null;
    if (node?.op === "constant") return node.attrs.value;
    return null;
  };
  try {
    const ctx: LowerContext = {
      kind,
      strategy,
      graph,
      ...limits,
      scratch: new Scratch(),
      known: sourceValue,
      claim: (node, index) => {
        const ref = node.inputs[index];
        const value = ref === undefined ? null : sourceValue(ref);
        if (value !== null) claimed.add(`${node.id}:${index}`);
        return value;
      },
      keep: <T extends tf.Tensor>(t: T): T => {
        resident.add(tf.keep(t));
        return t;
      },
    };
    const steps = graph.nodes.map((node) => {
      let step: Step | undefined;
      try {
        tf.tidy(() => {
          step = lowerNode(node, ctx);
        });
      } catch (error) {
        if (error instanceof SprigError || error instanceof RangeError) throw error;
        throw new BackendError(`tfjs: cannot lower ${nodeLabel(node)}: ${messageOf(error)}`);
      }
      return step!;
    });
    // A source is uploaded when an output or an unclaimed input reads it.
    const read = new Set(graph.outputs.map((o) => o.ref.node));
    for (const node of graph.nodes) {
      node.inputs.forEach((ref, index) => {
        if (!claimed.has(`${node.id}:${index}`)) read.add(ref.node);
      });
    }
    for (const node of graph.nodes) {
      if (!read.has(node.id)) continue;
      const value = sourceValue({ node: node.id, output: 0 });
      if (value === null) continue;
      const t = upload(value);
      sources.set(node.id, t);
      resident.add(t);
    }
    const placeholder = tf.scalar(0);
    resident.add(placeholder);
    return {
      graph,
      steps,
      sources,
      resident,
      claimed,
      placeholder,
      freeAfter: freeSchedule(graph),
    };
  } catch (error) {
    for (const t of resident) t.dispose();
    throw error;
  }
}

export function disposeProgram(program: Program): void {
  for (const t of program.resident) t.dispose();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A step's outputs must have exactly the types the shape rule promised. */
function checkOutputs(node: AnyNode, outputs: readonly tf.Tensor[]): void {
  const ok =
    outputs.length === node.outputs.length &&
    outputs.every((t, i) => {
      const type = node.outputs[i]!;
      return t.dtype === tfDtype(type.dtype) && sameShape(t.shape, type.shape);
    });
  if (!ok) {
    const got = outputs.map((t) => `${t.dtype}${formatShape(t.shape)}`).join(", ");
    const want = node.outputs.map((t) => `${tfDtype(t.dtype)}${formatShape(t.shape)}`).join(", ");
    throw new BackendError(
      `tfjs: lowering of ${nodeLabel(node)} produced ${got}, expected ${want}`,
    );
  }
}

/**
 * Runs the program on checked inputs (the active tfjs backend must be the program's);
 * returns every graph output read back to the host.
 */
export async function execute(
  program: Program,
  inputs: Readonly<Record<string, HostTensor>>,
): Promise<Record<string, HostTensor>> {
  const { graph, steps, sources, resident, claimed, placeholder, freeAfter } = program;
  const values: (tf.Tensor[] | undefined)[] = new Array(graph.nodes.length);
  // Live run-time tensors -> number of value slots holding them.
  const holders = new Map<tf.Tensor, number>();
  const hold = (t: tf.Tensor) => {
    if (!resident.has(t)) holders.set(t, (holders.get(t) ?? 0) + 1);
  };
  const release = (t: tf.Tensor) => {
    const count = holders.get(t);
    if (count === undefined) return;
    if (count > 1) holders.set(t, count - 1);
    else {
      holders.delete(t);
      t.dispose();
    }
  };
  try {
    for (const node of graph.nodes) {
      let outputs: tf.Tensor[];
      if (node.op === "input") {
        const value = inputs[node.attrs.name];
        if (value === undefined)
          throw new BackendError(`tfjs: input "${node.attrs.name}" is not bound`);
        outputs = [upload(value)];
      } else if (node.op === "weight" || node.op === "constant") {
        // Unread sources (claimed by every consumer) were never uploaded.
        const source = sources.get(node.id);
        outputs = source === undefined ? [] : [source];
      } else {
        const args = node.inputs.map((ref, index) => {
          if (claimed.has(`${node.id}:${index}`)) return placeholder;
          const value = values[ref.node]?.[ref.output];
          if (value === undefined) {
            throw new BackendError(
              `tfjs: ${nodeLabel(node)} reads ${refKey(ref)}, which holds no value`,
            );
          }
          return value;
        });
        const step = steps[node.id]!;
        try {
          outputs = tf.tidy(() => step(args));
        } catch (error) {
          if (error instanceof SprigError || error instanceof RangeError) throw error;
          throw new BackendError(`tfjs: ${nodeLabel(node)} failed: ${messageOf(error)}`);
        }
      }
      outputs.forEach(hold);
      values[node.id] = outputs;
      if (outputs.length > 0 || !(node.op === "weight" || node.op === "constant")) {
        checkOutputs(node, outputs);
      }
      for (const id of freeAfter[node.id]!) {
        values[id]?.forEach(release);
        values[id] = undefined;
      }
    }
    const result: Record<string, HostTensor> = {};
    for (const { name, ref } of graph.outputs) {
      const t = values[ref.node]?.[ref.output];
      if (t === undefined)
        throw new BackendError(`tfjs: output "${name}" (${refKey(ref)}) holds no value`);
      result[name] = await toHost(t);
    }
    return result;
  } finally {
    for (const t of holders.keys()) t.dispose();
  }
}

/** Reads a tensor back as a host tensor that owns its data. */
async function toHost(t: tf.Tensor): Promise<HostTensor> {
  const data = await t.data();
  const shape = [...t.shape];
  // Copies: a cpu-backend read returns the tensor's own storage, which may be shared.
  if (data instanceof Float32Array) return { dtype: "f32", shape, data: data.slice() };
  if (data instanceof Int32Array) return { dtype: "i32", shape, data: data.slice() };
  throw new BackendError(`tfjs: cannot read back a ${t.dtype} tensor`);
}
