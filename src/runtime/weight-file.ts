import { openRegularFile } from "../io/files.js";
import { readSafetensors } from "../io/safetensors.js";
import { readTorchStateDict, stateDictHostTensors } from "../io/torch-checkpoint.js";
import { WeightError } from "../ir/errors.js";
import { type Graph, isOp, nodesOf } from "../ir/graph.js";
import { formatShape, type HostTensor, sameShape } from "../ir/tensor.js";
import { adaptRelPosTables, type RelPosAdaptEntry } from "../models/vision/relpos-interpolate.js";

/**
 * Users' weights: a safetensors file (sprig's own `convert` output, or any with the
 * retrieval model's keys) or a PyTorch checkpoint as the authors release them. Both are
 * untrusted and parsed, never executed (src/io/torch-checkpoint.ts refuses every pickle
 * global outside a short allow-list).
 *
 * Binding them to a compiled graph is by name: a graph weight K is looked up as K, then
 * as the model's checkpoint prefix + K ("vision_encoder." for the vision encoder), so a
 * whole retrieval checkpoint loads into any of its parts. Relative-position bias tables of
 * another clip length (or of an image BEiT) are interpolated to the graph's window as the
 * authors do. Every weight the graph reads must be there with its shape; keys nobody
 * reads are reported, not errors (derived buffers such as relative_position_index and
 * position_ids are expected to go unused).
 */
export interface WeightFile {
  readonly path: string;
  readonly format: "safetensors" | "pytorch";
  readonly tensors: ReadonlyMap<string, HostTensor>;
  /** Non-tensor data: safetensors __metadata__ strings, or a checkpoint's plain entries. */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Frames the weights were trained at (config.video_input.num_frames), when recorded. */
  readonly sourceFrames: number | null;
}

const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];
/** Pickle PROTO opcode: a legacy (non-zip) torch.save file starts with a pickle. */
const PICKLE_PROTO = 0x80;

async function sniff(path: string): Promise<"safetensors" | "pytorch"> {
  const { handle } = await openRegularFile(path, "weights file");
  try {
    const head = Buffer.alloc(9);
    const { bytesRead } = await handle.read(head, 0, 9, 0);
    if (bytesRead >= 4 && ZIP_MAGIC.every((b, i) => head[i] === b)) return "pytorch";
    if (bytesRead >= 1 && head[0] === PICKLE_PROTO) return "pytorch";
    return "safetensors";
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function framesOf(config: unknown): number | null {
  if (typeof config !== "object" || config === null) return null;
  const input = (config as Record<string, unknown>).video_input;
  if (typeof input !== "object" || input === null) return null;
  const frames = (input as Record<string, unknown>).num_frames;
  return typeof frames === "number" && Number.isInteger(frames) && frames >= 1 ? frames : null;
}

/** Reads a weights file of either format (told apart by its first bytes, not its name). */
export async function readWeightFile(path: string): Promise<WeightFile> {
  if ((await sniff(path)) === "pytorch") {
    const stateDict = await readTorchStateDict(path);
    return {
      path,
      format: "pytorch",
      tensors: stateDictHostTensors(stateDict),
      metadata: stateDict.metadata,
      sourceFrames: framesOf(stateDict.metadata.config),
    };
  }
  const file = await readSafetensors(path);
  let config: unknown = null;
  const text = file.metadata.config;
  if (text !== undefined) {
    try {
      config = JSON.parse(text);
    } catch {
      config = null;
    }
  }
  return {
    path,
    format: "safetensors",
    tensors: file.tensors,
    metadata: file.metadata,
    sourceFrames: framesOf(config),
  };
}

/**
 * Keys expected to go unused: buffers derived from the config (sprig builds them itself)
 * and the training-only contrastive temperature (evaluation() computes ITC with t = 1).
 */
const EXPECTED_UNUSED = [/\.relative_position_index$/, /(^|\.)position_ids$/, /^temp$/];

export function isDerivedBuffer(key: string): boolean {
  return EXPECTED_UNUSED.some((pattern) => pattern.test(key));
}

export interface WeightLoadReport {
  readonly source: string;
  readonly format: WeightFile["format"];
  /** Graph weights bound from the file. */
  readonly loaded: number;
  /** The file keys they were bound from. */
  readonly used: readonly string[];
  /** The prefix under which the graph's keys were found ("" when none was needed). */
  readonly prefixes: readonly string[];
  /** File keys the graph does not read (derived buffers not included). */
  readonly unused: readonly string[];
  /** Derived buffers and the training-only temp in the file, ignored by design. */
  readonly ignoredBuffers: readonly string[];
  /** Relative-position bias tables mapped to the graph's window. */
  readonly adapted: readonly RelPosAdaptEntry[];
}

/** The target of relative-position bias tables: the graph's own window and head count. */
function relPosTarget(graph: Graph): { window: [number, number, number]; heads: number } | null {
  for (const node of graph.nodes) {
    if ((isOp(node, "attention") || isOp(node, "blockSparseAttention")) && node.attrs.relPosBias) {
      const [t, h, w] = node.attrs.relPosBias.window;
      return { window: [t, h, w], heads: node.attrs.heads };
    }
  }
  return null;
}

function describeList(items: readonly string[], limit = 6): string {
  const shown = items.slice(0, limit).join("; ");
  return items.length > limit ? `${shown}; and ${items.length - limit} more` : shown;
}

/**
 * Binds `file` to the weights `graph` reads (see the module comment); throws one
 * WeightError naming every missing and mis-shaped key.
 */
export function bindWeightFile(
  graph: Graph,
  file: WeightFile,
  checkpointPrefix: string,
): { weights: Map<string, HostTensor>; report: WeightLoadReport } {
  const target = relPosTarget(graph);
  let tensors = file.tensors;
  let adapted: RelPosAdaptEntry[] = [];
  if (target !== null) {
    const result = adaptRelPosTables(
      tensors,
      target,
      file.sourceFrames === null ? {} : { sourceFrames: file.sourceFrames },
    );
    tensors = result.weights;
    adapted = result.report;
  }
  const weights = new Map<string, HostTensor>();
  const used = new Set<string>();
  const prefixes = new Set<string>();
  const missing: string[] = [];
  const misShaped: string[] = [];
  for (const node of nodesOf(graph, "weight")) {
    const { name, type } = node.attrs;
    const key = tensors.has(name)
      ? name
      : tensors.has(checkpointPrefix + name)
        ? checkpointPrefix + name
        : null;
    if (key === null) {
      missing.push(`"${name}" ${formatShape(type.shape)}`);
      continue;
    }
    const tensor = tensors.get(key)!;
    if (tensor.dtype !== type.dtype || !sameShape(tensor.shape, type.shape)) {
      misShaped.push(
        `"${key}" is ${tensor.dtype}${formatShape(tensor.shape)}, the model needs ${type.dtype}${formatShape(type.shape)}`,
      );
      continue;
    }
    used.add(key);
    prefixes.add(key === name ? "" : checkpointPrefix);
    weights.set(name, tensor);
  }
  if (missing.length > 0 || misShaped.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) {
      parts.push(
        `${missing.length} weight${missing.length === 1 ? "" : "s"} of ${graph.name} missing${checkpointPrefix ? ` (looked up as K and ${checkpointPrefix}K)` : ""}: ${describeList(missing)}`,
      );
    }
    if (misShaped.length > 0) parts.push(`mis-shaped: ${describeList(misShaped)}`);
    throw new WeightError(`${file.path}: ${parts.join("; ")}`);
  }
  const unused: string[] = [];
  const ignoredBuffers: string[] = [];
  for (const key of file.tensors.keys()) {
    if (used.has(key)) continue;
    if (isDerivedBuffer(key)) ignoredBuffers.push(key);
    else unused.push(key);
  }
  return {
    weights,
    report: {
      source: file.path,
      format: file.format,
      loaded: weights.size,
      used: [...used],
      prefixes: [...prefixes],
      unused,
      ignoredBuffers,
      adapted,
    },
  };
}

/** One report for several graphs bound from one file (a model compiled as parts). */
export function combineWeightReports(
  file: WeightFile,
  reports: readonly WeightLoadReport[],
): WeightLoadReport {
  const used = new Set(reports.flatMap((r) => r.used));
  const adapted = new Map(reports.flatMap((r) => r.adapted.map((a) => [a.key, a] as const)));
  const keys = [...file.tensors.keys()].filter((k) => !used.has(k));
  return {
    source: file.path,
    format: file.format,
    loaded: used.size,
    used: [...used],
    prefixes: [...new Set(reports.flatMap((r) => r.prefixes))],
    unused: keys.filter((k) => !isDerivedBuffer(k)),
    ignoredBuffers: keys.filter(isDerivedBuffer),
    adapted: [...adapted.values()],
  };
}

/** One line for humans: what was loaded, interpolated and left unused. */
export function summarizeWeightLoad(report: WeightLoadReport): string {
  const parts = [`weights: ${report.loaded} tensors from ${report.source} (${report.format})`];
  const interpolated = report.adapted.filter((a) => a.how !== "dropped-index");
  if (interpolated.length > 0) {
    parts.push(
      `${interpolated.length} relative-position tables interpolated (${interpolated[0]!.detail})`,
    );
  }
  if (report.unused.length > 0) {
    parts.push(`${report.unused.length} unused keys (${describeList(report.unused, 3)})`);
  }
  if (report.ignoredBuffers.length > 0) {
    parts.push(`${report.ignoredBuffers.length} derived buffers / training-only keys ignored`);
  }
  return parts.join("; ");
}
