import { bytesPerElement } from "./ir/dtype.js";
import { SprigError } from "./ir/errors.js";
import { type AnyNode, type Graph, nodeLabel } from "./ir/graph.js";
import type { OpKind } from "./ir/ops/index.js";
import { formatShape, numElements, type TensorType } from "./ir/tensor.js";

/**
 * What a compiled graph needs in memory, known before anything is allocated, and the
 * rules that refuse what cannot run.
 *
 * Estimate. Sources stay in memory for the whole run: weights (held by the backend),
 * constants and inputs (held by the caller). Every other value is live from the step that
 * computes it to the last step that reads it, in the graph's node order (the order every
 * backend runs; the same liveness as the reference backend's freeSchedule); graph outputs
 * live to the end. A reshape's output is a view of its input, so it adds no bytes and
 * extends its input's life instead. While a node runs it also needs its workspace: the
 * values a backend materialises that the graph does not show, which for attention is the
 * score matrix (dense: B · H · Nq · Nk; block-sparse: B · H · (G · N + M · b · K) for G
 * global rows, M query blocks of b rows each reading K = G + blocksPerRow · b keys) and, with
 * a relative position bias, the bias over the same pairs. The peak is
 *
 *   weights + constants + inputs + max over steps s of (live values at s + workspace of s).
 *
 * It is an estimate of the graph's own data: a backend adds its runtime and may keep copies
 * (the onnx backend holds its weights in the model it builds and in its session), so real
 * peaks are higher, never lower, than the weights-and-activations part. A refusal on the
 * estimate is therefore always right; passing it is necessary, not sufficient.
 *
 * Size rules (machine independent). sprig indexes elements with int32 (src/ir/dtype.ts),
 * and typed arrays, ONNX Runtime's and tfjs's index arithmetic follow: no tensor of the
 * graph, and no attention score matrix, may hold more than MAX_TENSOR_ELEMENTS elements.
 * checkGraphSizes applies them; the dense graph a model builds can be checked before the
 * sparsity passes run (token drops never enlarge a tensor), which refuses absurd sizes
 * (thousands of frames, huge images with tiny patches, huge layers) in milliseconds.
 */

/** The most elements one tensor may hold: int32 indexing. */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

/** A model needs more than a limit allows (elements of one tensor, or memory). */
export class ResourceError extends SprigError {
  override readonly name = "ResourceError";
}

export interface MemoryEstimate {
  /** Parameters (weight nodes), held by the backend for the whole run. */
  readonly weightBytes: number;
  /** Graph constants (token indices, position ids). */
  readonly constantBytes: number;
  /** Graph inputs, held by the caller for the whole run. */
  readonly inputBytes: number;
  /** The largest live set of intermediate values, the running node's workspace included. */
  readonly peakActivationBytes: number;
  /** The node running at that peak, e.g. `%84 attention "attn"`. */
  readonly peakAt: string;
  /** weights + constants + inputs + peak activations. */
  readonly totalBytes: number;
}

type WorkspaceRule<K extends OpKind> = (
  node: Extract<AnyNode, { op: K }>,
  inputs: readonly (readonly number[])[],
) => number;

const noWorkspace = (): number => 0;

/** Score (and bias) elements of dense attention: q [B, Nq, C], k [B, Nk, C]. */
const denseScores: WorkspaceRule<"attention"> = (node, [q, k]) => {
  const pairs = q![1]! * k![1]!;
  const bias = node.attrs.relPosBias === null ? 0 : node.attrs.heads * pairs;
  return q![0]! * node.attrs.heads * pairs + bias;
};

/** Score (and bias) elements of block-sparse attention: q [B, N, C]. */
const blockScores: WorkspaceRule<"blockSparseAttention"> = (node, [q]) => {
  const { globalTokens: g, blockSize, layout } = node.attrs.pattern;
  const keys = g + layout.blocksPerRow * blockSize;
  const pairs = g * q![1]! + layout.queryBlocks * blockSize * keys;
  const bias = node.attrs.relPosBias === null ? 0 : node.attrs.heads * pairs;
  return q![0]! * node.attrs.heads * pairs + bias;
};

/**
 * Elements of each op's workspace (a mapped type: a new op fails tsc until it says). Ops
 * that compute their outputs in place or row by row need none.
 */
const WORKSPACE_ELEMENTS: { readonly [K in OpKind]: WorkspaceRule<K> } = {
  input: noWorkspace,
  weight: noWorkspace,
  constant: noWorkspace,
  linear: noWorkspace,
  add: noWorkspace,
  mul: noWorkspace,
  gelu: noWorkspace,
  layerNorm: noWorkspace,
  reshape: noWorkspace,
  patchEmbed: noWorkspace,
  prependTokens: noWorkspace,
  meanTokens: noWorkspace,
  attention: denseScores,
  blockSparseAttention: blockScores,
  embedding: noWorkspace,
  additiveMask: noWorkspace,
  l2Normalize: noWorkspace,
  similarity: noWorkspace,
  selectBatch: noWorkspace,
  slice: noWorkspace,
  weightScales: noWorkspace,
  // the uint8 codes of x (one byte per element), in float32 elements
  quantizedLinear: (_node, [x]) => Math.ceil(numElements(x!) / 4),
  tokenScores: noWorkspace,
  topK: noWorkspace,
  gather: noWorkspace,
};

function workspaceElements(graph: Graph, node: AnyNode): number {
  const shapes = node.inputs.map((ref) => graph.nodes[ref.node]!.outputs[ref.output]!.shape);
  const rule = WORKSPACE_ELEMENTS[node.op] as WorkspaceRule<OpKind>;
  return rule(node as never, shapes);
}

function tensorBytes(type: TensorType): number {
  return numElements(type.shape) * bytesPerElement(type.dtype);
}

const isSource = (node: AnyNode) =>
  node.op === "input" || node.op === "weight" || node.op === "constant";

/** Where a node label is shown in messages: with its layer, when it has one. */
function placeOf(node: AnyNode): string {
  const layer =
    node.layer === null
      ? ""
      : ` (${node.stack === null ? "" : `${node.stack} `}layer ${node.layer})`;
  return `${nodeLabel(node)}${layer}`;
}

function elements(count: number): string {
  return count >= 1e6 ? `${count.toExponential(2)} (${count})` : String(count);
}

/**
 * The size rules (see the module comment): every tensor, and with `workspace` every
 * attention score matrix, at most MAX_TENSOR_ELEMENTS elements. `what` names the model in
 * the message ("dense BEiT-base vision encoder, 4000 frames").
 */
export function checkGraphSizes(
  graph: Graph,
  what: string,
  options: { readonly workspace: boolean },
): void {
  const limit = `the ${MAX_TENSOR_ELEMENTS} (2^31 - 1) sprig can index with int32`;
  for (const node of graph.nodes) {
    for (const type of node.outputs) {
      const count = numElements(type.shape);
      if (count > MAX_TENSOR_ELEMENTS) {
        throw new ResourceError(
          `${what} is too large: ${placeOf(node)} makes a ${type.dtype}${formatShape(type.shape)} tensor of ${elements(count)} elements, more than ${limit}`,
        );
      }
    }
    if (!options.workspace) continue;
    const scores = workspaceElements(graph, node);
    if (scores > MAX_TENSOR_ELEMENTS) {
      throw new ResourceError(
        `${what} is too large: ${placeOf(node)} needs an attention score matrix of ${elements(scores)} elements, more than ${limit}`,
      );
    }
  }
}

/** The memory estimate of a graph (see the module comment). */
export function estimateMemory(graph: Graph): MemoryEstimate {
  let weightBytes = 0;
  let constantBytes = 0;
  let inputBytes = 0;
  // Storage of each node's outputs: its own, or (reshape) its input's.
  const storage = graph.nodes.map((node) => node.id);
  const lastUse = graph.nodes.map((node) => node.id);
  for (const node of graph.nodes) {
    if (node.op === "reshape") storage[node.id] = storage[node.inputs[0]!.node]!;
    for (const ref of node.inputs) {
      const owner = storage[ref.node]!;
      lastUse[owner] = Math.max(lastUse[owner]!, node.id);
    }
  }
  for (const output of graph.outputs) lastUse[storage[output.ref.node]!] = Number.POSITIVE_INFINITY;
  const freedAt = new Map<number, number[]>();
  for (const node of graph.nodes) {
    if (storage[node.id] !== node.id || isSource(node)) continue;
    const step = lastUse[node.id]!;
    if (Number.isFinite(step)) freedAt.set(step, [...(freedAt.get(step) ?? []), node.id]);
  }
  const ownBytes = (node: AnyNode) => node.outputs.reduce((sum, t) => sum + tensorBytes(t), 0);
  let live = 0;
  let peak = 0;
  let peakAt = "(no computation)";
  for (const node of graph.nodes) {
    if (node.op === "weight") weightBytes += ownBytes(node);
    else if (node.op === "constant") constantBytes += ownBytes(node);
    else if (node.op === "input") inputBytes += ownBytes(node);
    else {
      if (storage[node.id] === node.id) live += ownBytes(node);
      const here = live + 4 * workspaceElements(graph, node);
      if (here > peak) {
        peak = here;
        peakAt = placeOf(node);
      }
    }
    for (const id of freedAt.get(node.id) ?? []) live -= ownBytes(graph.nodes[id]!);
  }
  return {
    weightBytes,
    constantBytes,
    inputBytes,
    peakActivationBytes: peak,
    peakAt,
    totalBytes: weightBytes + constantBytes + inputBytes + peak,
  };
}

/**
 * What a graph holds without running: its weights and constants (what `export` keeps
 * while it builds a model file).
 */
export function storedOnly(estimate: MemoryEstimate): MemoryEstimate {
  return {
    ...estimate,
    inputBytes: 0,
    peakActivationBytes: 0,
    peakAt: "(not run)",
    totalBytes: estimate.weightBytes + estimate.constantBytes,
  };
}

/**
 * Several graphs held at once and run one after another (the retrieval model's parts):
 * every part's weights and constants stay, inputs and activations of one part at a time.
 */
export function combineEstimates(parts: readonly MemoryEstimate[]): MemoryEstimate {
  const sum = (pick: (e: MemoryEstimate) => number) => parts.reduce((s, e) => s + pick(e), 0);
  const busiest = parts.reduce<MemoryEstimate | undefined>(
    (best, e) =>
      best === undefined ||
      e.inputBytes + e.peakActivationBytes > best.inputBytes + best.peakActivationBytes
        ? e
        : best,
    undefined,
  );
  const weightBytes = sum((e) => e.weightBytes);
  const constantBytes = sum((e) => e.constantBytes);
  const inputBytes = busiest?.inputBytes ?? 0;
  const peakActivationBytes = busiest?.peakActivationBytes ?? 0;
  return {
    weightBytes,
    constantBytes,
    inputBytes,
    peakActivationBytes,
    peakAt: busiest?.peakAt ?? "(no computation)",
    totalBytes: weightBytes + constantBytes + inputBytes + peakActivationBytes,
  };
}

/** Bytes for people: "1.50 GiB", "12.3 MiB", "512 B". */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} B`;
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${units[unit]}`;
}

/** "3.52 GiB (weights 330 MiB, inputs 4.59 MiB, activations 3.19 GiB at %84 ...)". */
export function formatMemoryEstimate(estimate: MemoryEstimate): string {
  const parts = [
    `weights ${formatBytes(estimate.weightBytes)}`,
    ...(estimate.constantBytes > 0 ? [`constants ${formatBytes(estimate.constantBytes)}`] : []),
    ...(estimate.inputBytes > 0 ? [`inputs ${formatBytes(estimate.inputBytes)}`] : []),
    ...(estimate.peakActivationBytes > 0
      ? [`activations ${formatBytes(estimate.peakActivationBytes)} at ${estimate.peakAt}`]
      : []),
  ];
  return `${formatBytes(estimate.totalBytes)} (${parts.join(", ")})`;
}

/** A memory limit and where it came from, for messages. */
export interface MemoryBudget {
  readonly limitBytes: number;
  /** e.g. "--max-memory 8GiB" or "this machine's memory (os.totalmem)". */
  readonly source: string;
}

/** Something held in memory besides the graph's data (a weights file as read, the synthetic clips). */
export interface ExtraMemory {
  readonly what: string;
  readonly bytes: number;
}

/**
 * Refuses, before anything is allocated, a model whose estimate (plus `extra`) exceeds the
 * budget: the message gives the estimate, its parts and the limit.
 */
export function checkMemoryBudget(
  estimate: MemoryEstimate,
  budget: MemoryBudget,
  what: string,
  extra: readonly ExtraMemory[] = [],
): void {
  const total = estimate.totalBytes + extra.reduce((sum, e) => sum + e.bytes, 0);
  if (total <= budget.limitBytes) return;
  const extras = extra.filter((e) => e.bytes > 0).map((e) => `${e.what} ${formatBytes(e.bytes)}`);
  const breakdown =
    extras.length === 0
      ? formatMemoryEstimate(estimate).replace(/^\S+ \S+ /, "")
      : `: the model ${formatMemoryEstimate(estimate)} + ${extras.join(" + ")}`;
  throw new ResourceError(
    `${what} needs an estimated ${formatBytes(total)}${extras.length === 0 ? " " : ""}${breakdown}, more than the ${formatBytes(budget.limitBytes)} of ${budget.source} (lower frames, batch or sizes, or raise --max-memory)`,
  );
}
