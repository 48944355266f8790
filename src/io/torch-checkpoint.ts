/**
 * A safe reader for PyTorch checkpoints (`torch.save` files, .pth / .pt / .bin).
 *
 * A checkpoint is untrusted: it is parsed, never executed. The pickle inside runs on
 * sprig's own machine (pickle.ts), which builds only allow-listed things and refuses
 * every other global before it is bound; storages are read with bounds-checked
 * positional reads (zip.ts, byte-source.ts); views are checked against their storages
 * (torch-tensor.ts). Every failure is a CheckpointError naming the file and the part.
 *
 * Two container formats:
 *
 *   zip (torch >= 1.6):  <root>/data.pkl      the pickled object
 *                        <root>/data/<key>    raw little-endian bytes of storage <key>
 *                        <root>/version, <root>/byteorder (newer torch), ...
 *     The root folder's name varies (the file's base name in torch 1.13, `archive/` in
 *     newer versions), so the pickle is found as the one record named `.../data.pkl`.
 *
 *   legacy (before 1.6, or _use_new_zipfile_serialization=False): five pickles back to
 *     back, then the storages:
 *       magic number 0x1950a86a20f9469cfc6c (LONG1) | protocol version 1001 |
 *       sys_info {little_endian, type_sizes} | the object | the list of storage keys |
 *       for each key in that list: numel as 8-byte little-endian, then numel elements.
 *     The pickles' total length is unknown until parsed, so a prefix of the file is read
 *     and doubled while a pickle runs past it.
 */
import type { HostTensor } from "../ir/tensor.js";
import { type ByteSource, bytesSource, openFileSource } from "./byte-source.js";
import { CheckpointError, PickleTruncatedError } from "./checkpoint-error.js";
import { type JsonValue, omegaconfToJson, toPlainJson } from "./pickle-json.js";
import { forEachLeaf, mapTensors } from "./pickle-tree.js";
import {
  loadPickle,
  PickleDict,
  PickleObject,
  type PickleValue,
  STORAGE_ELEMENT_BYTES,
  StorageRef,
  TensorRecipe,
} from "./pickle.js";
import {
  isTorchTensor,
  type StorageSource,
  stateDictToHost,
  TensorMaterialiser,
  type TorchTensor,
} from "./torch-tensor.js";
import { looksLikeZip, readZipArchive, recordPlace, type ZipArchive } from "./zip.js";

export type { JsonValue } from "./pickle-json.js";
export { omegaconfToJson, toPlainJson } from "./pickle-json.js";
export type { TorchDType, TorchTensor } from "./torch-tensor.js";
export { stateDictToHost, torchTensorToHost } from "./torch-tensor.js";

/** The unpickled object with its tensors materialised. */
export type CheckpointValue = PickleValue<TorchTensor>;

export interface TorchCheckpoint {
  readonly file: string;
  readonly format: "zip" | "legacy";
  readonly root: CheckpointValue;
}

/** Where the state_dict was found in the checkpoint's object. */
export type StateDictLocation = "top level" | "model" | "state_dict";

export interface TorchStateDict {
  readonly file: string;
  readonly location: StateDictLocation;
  /** The state_dict's tensors, in the file's order. */
  readonly tensors: ReadonlyMap<string, TorchTensor>;
  /**
   * The other top-level entries that are plain data (epoch, global_step, optimizer and
   * scheduler settings, the config), as JSON; omegaconf configs become their values.
   */
  readonly metadata: Readonly<Record<string, JsonValue>>;
  /** Top-level entries left out of `metadata` because they are not plain data. */
  readonly skipped: readonly string[];
}

// ---------------------------------------------------------------------------------------
// Public entry points
// ---------------------------------------------------------------------------------------

/** Reads a checkpoint and materialises every tensor in it. */
export async function readTorchCheckpoint(path: string): Promise<TorchCheckpoint> {
  return withFile(path, (source) => loadCheckpoint(source, path));
}

/** Parses a checkpoint already in memory; `file` names it in errors. */
export function parseTorchCheckpoint(bytes: Uint8Array, file: string): TorchCheckpoint {
  return loadCheckpoint(bytesSource(bytes), file);
}

/**
 * Reads only the state_dict's tensors (and the metadata), leaving optimizer state and
 * any other tensors unread: what converting weights needs, at a fraction of the memory.
 */
export async function readTorchStateDict(path: string): Promise<TorchStateDict> {
  return withFile(path, (source) => loadStateDict(source, path));
}

/** Like readTorchStateDict, from bytes in memory. */
export function parseTorchStateDict(bytes: Uint8Array, file: string): TorchStateDict {
  return loadStateDict(bytesSource(bytes), file);
}

/**
 * Finds the state_dict in a checkpoint read with readTorchCheckpoint: the top-level
 * object itself when it is a dict of tensors, else its "model" or "state_dict" entry.
 */
export function findStateDict(checkpoint: TorchCheckpoint): TorchStateDict {
  const found = locateStateDict(checkpoint.root, isTorchTensor, checkpoint.file);
  return { ...found, file: checkpoint.file };
}

/** The state_dict as sprig HostTensors (f32 / i32; see torchTensorToHost). */
export function stateDictHostTensors(stateDict: TorchStateDict): Map<string, HostTensor> {
  return stateDictToHost(stateDict.tensors, stateDict.file);
}

async function withFile<R>(path: string, read: (source: ByteSource) => R): Promise<R> {
  const source = openFileSource(path);
  try {
    return read(source);
  } finally {
    source.close();
  }
}

// ---------------------------------------------------------------------------------------
// Opening: the pickled object and a way to read its storages
// ---------------------------------------------------------------------------------------

interface OpenedCheckpoint {
  readonly format: "zip" | "legacy";
  readonly root: PickleValue;
  readonly storages: StorageSource;
}

function loadCheckpoint(source: ByteSource, file: string): TorchCheckpoint {
  const opened = openCheckpoint(source, file);
  const materialiser = new TensorMaterialiser(file, opened.storages, source.byteLength);
  // State_dict entries first, so that their errors name the tensor; mapTensors then
  // finds them among the materialiser's views.
  const stateDict = findTensorDict(opened.root, isRecipe);
  for (const [name, recipe] of stateDict?.tensors ?? []) materialiser.materialise(recipe, name);
  const root = mapTensors(opened.root, (recipe) => materialiser.materialise(recipe));
  return { file, format: opened.format, root };
}

const isRecipe = (value: unknown): value is TensorRecipe => value instanceof TensorRecipe;

function loadStateDict(source: ByteSource, file: string): TorchStateDict {
  const opened = openCheckpoint(source, file);
  const found = locateStateDict(opened.root, isRecipe, file);
  const materialiser = new TensorMaterialiser(file, opened.storages, source.byteLength);
  const tensors = new Map<string, TorchTensor>();
  for (const [name, recipe] of found.tensors) {
    tensors.set(name, materialiser.materialise(recipe, name));
  }
  return { ...found, file, tensors };
}

/** Pickle's PROTO opcode: a legacy checkpoint starts with its first pickle. */
const PICKLE_PROTO = 0x80;

function openCheckpoint(source: ByteSource, file: string): OpenedCheckpoint {
  if (looksLikeZip(source)) return openZipCheckpoint(source, file);
  if (source.byteLength > 0 && source.read(0, 1)[0] === PICKLE_PROTO) {
    return openLegacyCheckpoint(source, file);
  }
  throw new CheckpointError(
    file,
    undefined,
    "not a PyTorch checkpoint: neither a zip archive nor a pickle (legacy format)",
  );
}

const PICKLE_SUFFIX = "data.pkl";

function openZipCheckpoint(source: ByteSource, file: string): OpenedCheckpoint {
  const archive = readZipArchive(source, file);
  const pickles = [...archive.entries.keys()].filter(
    (name) => name === PICKLE_SUFFIX || name.endsWith(`/${PICKLE_SUFFIX}`),
  );
  if (pickles.length !== 1) {
    throw new CheckpointError(
      file,
      undefined,
      `expected one record named ".../${PICKLE_SUFFIX}" in the zip archive, found ${pickles.length}`,
    );
  }
  const pickleName = pickles[0]!;
  const root = pickleName.slice(0, pickleName.length - PICKLE_SUFFIX.length);
  checkByteOrder(archive, root, file);
  const pickle = archive.read(archive.entries.get(pickleName)!);
  const { value } = loadPickle(pickle, { file, place: recordPlace(pickleName) });
  return { format: "zip", root: value, storages: zipStorages(archive, root, file) };
}

/** Newer torch records the byte order; storages are little-endian unless it says "big". */
function checkByteOrder(archive: ZipArchive, root: string, file: string): void {
  const entry = archive.entries.get(`${root}byteorder`);
  if (entry === undefined) return;
  const order = new TextDecoder().decode(archive.read(entry)).trim();
  if (order !== "little") {
    throw new CheckpointError(
      file,
      recordPlace(entry.name),
      `byte order "${order}" is not supported`,
    );
  }
}

function zipStorages(archive: ZipArchive, root: string, file: string): StorageSource {
  return {
    read(ref) {
      const name = `${root}data/${ref.key}`;
      const entry = archive.entries.get(name);
      const place = recordPlace(name);
      if (entry === undefined) {
        throw new CheckpointError(file, place, `storage ${JSON.stringify(ref.key)} has no record`);
      }
      const expected = ref.numel * STORAGE_ELEMENT_BYTES[ref.dtype];
      if (entry.size !== expected) {
        throw new CheckpointError(
          file,
          place,
          `holds ${entry.size} bytes but the pickle declares ${ref.dtype}[${ref.numel}] ` +
            `(${expected} bytes)`,
        );
      }
      return archive.read(entry);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Legacy format
// ---------------------------------------------------------------------------------------

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
const LEGACY_PICKLES = 5;
const FIRST_PREFIX_BYTES = 1 << 20;

function openLegacyCheckpoint(source: ByteSource, file: string): OpenedCheckpoint {
  let prefixLength = Math.min(source.byteLength, FIRST_PREFIX_BYTES);
  for (;;) {
    try {
      return parseLegacy(source, source.read(0, prefixLength), file);
    } catch (error) {
      const grow = error instanceof PickleTruncatedError && prefixLength < source.byteLength;
      if (!grow) throw error;
      prefixLength = Math.min(source.byteLength, prefixLength * 2);
    }
  }
}

function parseLegacy(source: ByteSource, prefix: Uint8Array, file: string): OpenedCheckpoint {
  const values: PickleValue[] = [];
  let offset = 0;
  for (let index = 1; index <= LEGACY_PICKLES; index++) {
    const place = `pickle ${index} of ${LEGACY_PICKLES} (at byte ${offset})`;
    const result = loadPickle(prefix, { file, place, start: offset });
    values.push(result.value);
    offset = result.end;
  }
  const [magic, protocol, sysInfo, root, keys] = values;
  const fail = (detail: string): never => {
    throw new CheckpointError(file, undefined, `legacy checkpoint: ${detail}`);
  };
  if (magic !== LEGACY_MAGIC) {
    fail("not a PyTorch checkpoint (no zip header, no legacy magic number)");
  }
  if (protocol !== LEGACY_PROTOCOL) {
    fail(`protocol version ${String(protocol)}, expected ${LEGACY_PROTOCOL}`);
  }
  const littleEndian =
    sysInfo instanceof PickleDict ? sysInfo.items.get("little_endian") : undefined;
  if (littleEndian !== true) {
    fail("only little-endian files are supported (sys_info.little_endian)");
  }
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === "string")) {
    fail("the storage key list must be a list of strings");
  }
  const storages = legacyStorages(
    source,
    offset,
    keys as string[],
    storageRefsOf(root!, file),
    file,
  );
  return { format: "legacy", root: root!, storages };
}

/** Every storage reference in the object, one per key (they must agree). */
function storageRefsOf(root: PickleValue, file: string): Map<string, StorageRef> {
  const refs = new Map<string, StorageRef>();
  const visit = (value: PickleValue) => {
    const ref = value instanceof TensorRecipe ? value.storage : value;
    if (!(ref instanceof StorageRef)) return;
    const known = refs.get(ref.key);
    if (known !== undefined && (known.dtype !== ref.dtype || known.numel !== ref.numel)) {
      throw new CheckpointError(
        file,
        `storage ${JSON.stringify(ref.key)}`,
        `referenced as ${ref.dtype}[${ref.numel}] and as ${known.dtype}[${known.numel}]`,
      );
    }
    refs.set(ref.key, ref);
  };
  forEachLeaf(root, visit);
  return refs;
}

/**
 * Locates each storage: from `offset`, for each key in list order, an 8-byte element
 * count (which must equal the pickle's numel) and then the data. All of it must lie in
 * the file and end exactly at its end.
 */
function legacyStorages(
  source: ByteSource,
  start: number,
  keys: readonly string[],
  refs: ReadonlyMap<string, StorageRef>,
  file: string,
): StorageSource {
  const offsets = new Map<string, number>();
  let offset = start;
  for (const key of keys) {
    const place = `storage ${JSON.stringify(key)}`;
    const fail = (detail: string): never => {
      throw new CheckpointError(file, place, detail);
    };
    const ref = refs.get(key) ?? fail("is listed but no tensor refers to it");
    if (offsets.has(key)) fail("is listed twice");
    if (offset + 8 > source.byteLength) {
      fail(`element count at byte ${offset} is past the end of the file`);
    }
    const count = new DataView(source.read(offset, 8).buffer).getBigUint64(0, true);
    if (count !== BigInt(ref.numel)) {
      fail(`file holds ${count} elements but the pickle declares ${ref.numel}`);
    }
    const bytes = ref.numel * STORAGE_ELEMENT_BYTES[ref.dtype];
    if (offset + 8 + bytes > source.byteLength) {
      fail(
        `data [${offset + 8}, ${offset + 8 + bytes}) runs past the end of the file (${source.byteLength})`,
      );
    }
    offsets.set(key, offset + 8);
    offset += 8 + bytes;
  }
  if (offset !== source.byteLength) {
    throw new CheckpointError(
      file,
      undefined,
      `${source.byteLength - offset} bytes follow the last storage`,
    );
  }
  for (const key of refs.keys()) {
    if (!offsets.has(key)) {
      throw new CheckpointError(
        file,
        `storage ${JSON.stringify(key)}`,
        "is used but not in the storage list",
      );
    }
  }
  return {
    read(ref) {
      return source.read(offsets.get(ref.key)!, ref.numel * STORAGE_ELEMENT_BYTES[ref.dtype]);
    },
  };
}

// ---------------------------------------------------------------------------------------
// Finding the state_dict
// ---------------------------------------------------------------------------------------

const STATE_DICT_KEYS = ["model", "state_dict"] as const;

interface LocatedStateDict<T> {
  readonly location: StateDictLocation;
  readonly tensors: Map<string, T>;
  readonly metadata: Record<string, JsonValue>;
  readonly skipped: string[];
}

/** The tensors of `value` if it is a non-empty dict from string keys to tensors. */
function asTensorDict<T>(
  value: PickleValue<T> | undefined,
  isTensor: (v: unknown) => v is T,
): Map<string, T> | undefined {
  if (!(value instanceof PickleDict) || value.items.size === 0) return undefined;
  const tensors = new Map<string, T>();
  for (const [key, item] of value.items) {
    if (typeof key !== "string" || !isTensor(item)) return undefined;
    tensors.set(key, item);
  }
  return tensors;
}

/** The state_dict and the metadata beside it, or undefined when there is none. */
function findTensorDict<T>(
  root: PickleValue<T>,
  isTensor: (value: unknown) => value is T,
): LocatedStateDict<T> | undefined {
  const topLevel = asTensorDict(root, isTensor);
  if (topLevel !== undefined) {
    return { location: "top level", tensors: topLevel, metadata: {}, skipped: [] };
  }
  if (!(root instanceof PickleDict)) return undefined;
  for (const key of STATE_DICT_KEYS) {
    const tensors = asTensorDict(root.items.get(key), isTensor);
    if (tensors === undefined) continue;
    const entries: [string, JsonValue][] = [];
    const skipped: string[] = [];
    for (const [name, value] of root.items) {
      if (name === key) continue;
      const json = value instanceof PickleObject ? omegaconfToJson(value) : toPlainJson(value);
      if (json === undefined) skipped.push(String(name));
      else entries.push([String(name), json]);
    }
    // fromEntries defines own properties, so a key like "__proto__" stays a plain entry.
    return { location: key, tensors, metadata: Object.fromEntries(entries), skipped };
  }
  return undefined;
}

function locateStateDict<T>(
  root: PickleValue<T>,
  isTensor: (value: unknown) => value is T,
  file: string,
): LocatedStateDict<T> {
  const found = findTensorDict(root, isTensor);
  if (found !== undefined) return found;
  const keys =
    root instanceof PickleDict
      ? `top-level keys: ${[...root.items.keys()].map((key) => JSON.stringify(key)).join(", ")}`
      : "the object is not a dict";
  throw new CheckpointError(
    file,
    undefined,
    `no state_dict: neither the object nor its "model" / "state_dict" entry is a dict of ` +
      `tensors (${keys})`,
  );
}
