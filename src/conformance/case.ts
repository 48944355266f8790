import { readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { SprigError } from "../ir/errors.js";
import type { HostTensor } from "../ir/tensor.js";
import { FileReadError, readTextFile } from "../io/files.js";
import { readSafetensors } from "../io/safetensors.js";

/**
 * A conformance case: NAME.json (sidecar) + NAME.safetensors, in the format of
 * ../shared/conformance (see its README). The sidecar says which reference module was
 * run with which config; tensors hold weights (state_dict keys), inputs ("input.*"),
 * explicit random patterns ("pattern.*") and expected outputs ("expected.*").
 */
export class CaseError extends SprigError {
  override readonly name = "CaseError";
}

export interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

export interface TensorSpec {
  readonly role: string;
  readonly tolerance?: Tolerance | { readonly exact: true };
}

export interface ModuleSpec {
  readonly kind: string;
  /** module_spec.config (the BeitConfig / BertConfig dict), or {} for kinds without one. */
  readonly config: Readonly<Record<string, unknown>>;
  /** The whole module_spec object, for kinds with other fields (vision_config, embed_dim, ...). */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly windowSize: readonly [number, number, number] | null;
  readonly tokenKeepRate: number | null;
  readonly layerNum: number | null;
}

export interface ConformanceCase {
  readonly name: string;
  readonly file: string;
  /** null for cases that check a function rather than a module (token order). */
  readonly module: ModuleSpec | null;
  readonly function: string | null;
  readonly tensors: ReadonlyMap<string, HostTensor>;
  readonly specs: ReadonlyMap<string, TensorSpec>;
  /** The whole sidecar, for fields outside module_spec (a tokenizer case's vocab and texts). */
  readonly sidecar: Readonly<Record<string, unknown>>;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseWindow(file: string, value: unknown): [number, number, number] | null {
  if (value === null || value === undefined) return null;
  if (
    Array.isArray(value) &&
    value.length === 3 &&
    value.every((d) => Number.isInteger(d) && d >= 1)
  ) {
    return [value[0], value[1], value[2]];
  }
  throw new CaseError(`${file}: module_spec.window_size must be null or three positive integers`);
}

function parseTolerance(file: string, name: string, value: unknown): TensorSpec["tolerance"] {
  if (value === undefined) return undefined;
  if (isRecord(value) && value.exact === true) return { exact: true };
  if (
    isRecord(value) &&
    typeof value.atol === "number" &&
    typeof value.rtol === "number" &&
    value.atol >= 0 &&
    value.rtol >= 0
  ) {
    return { atol: value.atol, rtol: value.rtol };
  }
  throw new CaseError(
    `${file}: tensors["${name}"].tolerance must be {atol, rtol} or {exact: true}`,
  );
}

/** Parses a sidecar's JSON text (exported for tests). */
export function parseSidecar(
  file: string,
  text: string,
): Omit<ConformanceCase, "tensors" | "name" | "file"> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CaseError(`${file}: not valid JSON (${(error as Error).message})`);
  }
  if (!isRecord(json)) throw new CaseError(`${file}: the sidecar must be a JSON object`);
  const specs = new Map<string, TensorSpec>();
  if (!isRecord(json.tensors)) throw new CaseError(`${file}: missing "tensors" object`);
  for (const [name, value] of Object.entries(json.tensors)) {
    if (!isRecord(value) || typeof value.role !== "string") {
      throw new CaseError(`${file}: tensors["${name}"] must be an object with a string "role"`);
    }
    const tolerance = parseTolerance(file, name, value.tolerance);
    specs.set(
      name,
      tolerance === undefined ? { role: value.role } : { role: value.role, tolerance },
    );
  }
  let module: ModuleSpec | null = null;
  if (json.module_spec !== null && json.module_spec !== undefined) {
    const spec = json.module_spec;
    if (!isRecord(spec) || typeof spec.kind !== "string") {
      throw new CaseError(`${file}: module_spec must be an object with a string "kind"`);
    }
    if (spec.config !== undefined && !isRecord(spec.config)) {
      throw new CaseError(`${file}: module_spec.config must be an object`);
    }
    const keep = spec.token_keep_rate;
    const layerNum = spec.layer_num;
    module = {
      kind: spec.kind,
      config: isRecord(spec.config) ? spec.config : {},
      fields: spec,
      windowSize: parseWindow(file, spec.window_size),
      tokenKeepRate: typeof keep === "number" ? keep : null,
      layerNum: typeof layerNum === "number" ? layerNum : null,
    };
  }
  const reference = isRecord(json.reference) ? json.reference : {};
  const fn = typeof reference.function === "string" ? reference.function : null;
  if (module === null && fn === null) {
    throw new CaseError(`${file}: neither module_spec nor reference.function says what was run`);
  }
  return { module, function: fn, specs, sidecar: json };
}

export async function loadCase(sidecarPath: string): Promise<ConformanceCase> {
  const name = basename(sidecarPath).replace(/\.json$/, "");
  let text: string;
  try {
    // A regular file of UTF-8 only: a FIFO or device named NAME.json is refused unread.
    text = await readTextFile(sidecarPath, "sidecar");
  } catch (error) {
    if (error instanceof FileReadError) throw new CaseError(`${sidecarPath}: ${error.problem}`);
    throw error;
  }
  const sidecar = parseSidecar(sidecarPath, text);
  const tensorPath = sidecarPath.replace(/\.json$/, ".safetensors");
  const file = await readSafetensors(tensorPath);
  for (const tensorName of sidecar.specs.keys()) {
    if (!file.tensors.has(tensorName)) {
      throw new CaseError(`${tensorPath}: tensor "${tensorName}" listed in the sidecar is missing`);
    }
  }
  return { name, file: tensorPath, tensors: file.tensors, ...sidecar };
}

/** Sidecar paths of every case in `dir` (each NAME.json next to a NAME.safetensors or not). */
export async function listCases(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    throw new CaseError(
      `${dir}: cannot list cases (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  return entries
    .filter((e) => e.endsWith(".json"))
    .sort()
    .map((e) => join(dir, e));
}
