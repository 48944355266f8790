/**
 * Strict reader and writer for the safetensors format.
 *
 * Layout of a file:
 *
 *   bytes [0, 8)          header length N, unsigned 64-bit little-endian
 *   bytes [8, 8 + N)      header: UTF-8 JSON object, possibly padded with trailing spaces
 *   bytes [8 + N, end)    data section: raw little-endian tensor bytes
 *
 * The header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}`,
 * with offsets relative to the start of the data section, plus an optional reserved key
 * `"__metadata__"` holding a string-to-string map.
 *
 * sprig computes in float32 and indexes with int32 (see dtype.ts). The reader accepts F32,
 * I32, I64, F16, BF16 and U8 and, for HostTensor results, widens F16 and BF16 exactly to
 * f32 and U8 to i32, and narrows I64 to int32 with every value range-checked, because
 * PyTorch stores index tensors as int64 and a silent wrap-around would corrupt gathers.
 * `parseSafetensorsFile` instead keeps F16, BF16 and U8 as stored (FileTensor: bit
 * patterns / bytes), for callers that need the file's exact values.
 *
 * The reader trusts nothing in the file and is at least as strict as the format's
 * reference implementation (huggingface/safetensors, Rust: `SafeTensors::read_metadata`
 * and `Metadata::validate`). Before any tensor is decoded, and when reading from disk
 * before the data section is even read, it checks these rules (R1-R12; the tests in
 * test/io/safetensors.test.ts are named after them):
 *
 *   R1  the file is at least 8 bytes (reference: HeaderTooSmall);
 *   R2  the header length N is at most 100,000,000 bytes (HeaderTooLarge) and 8 + N is
 *       within the file (InvalidHeaderLength); N = 0 is refused too (an empty header is
 *       no JSON, InvalidHeaderDeserialization there);
 *   R3  the header is valid UTF-8 (InvalidHeader);
 *   R4  the header is one JSON object, nothing but JSON whitespace after it, nested at most
 *       64 levels (InvalidHeaderDeserialization);
 *   R5  no key appears twice in any object of the header. The reference's serde rejects a
 *       repeated field inside an entry ("duplicate field") and keeps the last of repeated
 *       tensor names, whose lost bytes then fail R11; sprig refuses both outright;
 *   R6  `__metadata__`, if present, is an object of string values (the reference also
 *       takes null there; sprig refuses it);
 *   R7  every other entry is an object with exactly the fields dtype, shape and
 *       data_offsets (the reference ignores unknown fields; sprig refuses them, since they
 *       are most likely typos such as "data_offset");
 *   R8  the dtype is one sprig reads (the reference knows more: F64, I8, BOOL, ...);
 *   R9  the shape is an array of non-negative integer literals and data_offsets exactly
 *       two: "2.0", "1e3", "-0" or a string are refused even where the value is whole (the
 *       reference deserializes them as usize, which takes integer literals only);
 *   R10 the element count times the element size is exact (no overflow, reference:
 *       ValidationOverflow) and equals end - begin (TensorInvalidInfo), with begin <= end;
 *   R11 sorted by offsets, the tensors tile the data section: the first begins at 0 and
 *       each begins where the previous one ended, so no two tensors share a byte and no
 *       byte lies between two tensors (InvalidOffset); a zero-size tensor sits at such a
 *       boundary too;
 *   R12 the last tensor ends exactly at the end of the file: no trailing bytes
 *       (MetadataIncompleteBuffer).
 *
 * Every failure is a SafetensorsError naming the file and, where one entry is at fault,
 * that tensor. From disk, only a regular file is opened (src/io/files.ts: a FIFO, device
 * or directory is refused before reading) and its size, taken from the open handle, is
 * what R2, R11 and R12 check against; the data section is read tensor by tensor into the
 * tensors' own buffers, so memory stays bounded by the file's declared (and checked)
 * contents.
 *
 * The writer emits F32 for f32 and I64 for i32 (so index tensors round-trip with PyTorch),
 * and F16, BF16 and U8 for FileTensors (raw bit patterns / bytes, e.g. weights converted
 * to float16). It lists header entries sorted by name, pads the header with spaces to a
 * multiple of 8 bytes and lays the data out contiguously by element size, largest first:
 * I64, F32, F16, BF16, U8, each group sorted by name. The data section starts 8-aligned
 * and each group's length is a multiple of its element size, hence of every smaller one,
 * so every tensor starts aligned to its element size without any gap (R11, R12).
 */

import type { FileHandle } from "node:fs/promises";
import { SafetensorsError } from "../ir/errors.js";
import { f32Tensor, formatShape, type HostTensor, i32Tensor, numElements } from "../ir/tensor.js";
import { writeFileAtomic } from "./atomic.js";
import { FileReadError, openRegularFile, readExactly } from "./files.js";
import { bfloat16BitsToFloat32, float16BitsToFloat32 } from "./half.js";
import { NonIntegerLiteral, parseStrictJson, StrictJsonError } from "./strict-json.js";

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

/**
 * A tensor kept in a file dtype sprig does not compute in: F16 / BF16 as 16-bit bit
 * patterns, U8 as bytes. Row-major like HostTensor.
 */
export type FileTensor =
  | {
      readonly dtype: "F16" | "BF16";
      readonly shape: readonly number[];
      readonly data: Uint16Array;
    }
  | { readonly dtype: "U8"; readonly shape: readonly number[]; readonly data: Uint8Array };

/** What the writer takes, and parseSafetensorsFile returns: either kind of tensor. */
export type StoredTensor = HostTensor | FileTensor;

/** Like SafetensorsFile, with F16 / BF16 / U8 tensors kept as stored. */
export interface SafetensorsFileExact {
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

type TensorInput = ReadonlyMap<string, StoredTensor> | Record<string, StoredTensor>;

/** The reserved header key for free-form string metadata. */
const METADATA_KEY = "__metadata__";

/** Size of the little-endian u64 header length prefix. */
const PREFIX_BYTES = 8;

/** Same cap as the reference implementation: a longer header means a corrupt prefix. */
const MAX_HEADER_BYTES = 100_000_000;

/** Label used in writer errors when there is no destination path. */
const IN_MEMORY_LABEL = "<serialized safetensors>";

/** The file dtypes the reader accepts, with their element size in bytes. */
const ELEMENT_BYTES = { F32: 4, I32: 4, I64: 8, F16: 2, BF16: 2, U8: 1 } as const;
type FileDType = keyof typeof ELEMENT_BYTES;
const SUPPORTED_DTYPES = Object.keys(ELEMENT_BYTES).join(", ");

const ENTRY_FIELDS = new Set(["dtype", "shape", "data_offsets"]);

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Throws a SafetensorsError for the file being read or written; never returns. */
type Fail = (tensor: string | undefined, detail: string) => never;

/** A header entry that has passed every structural check. */
interface TensorEntry {
  readonly name: string;
  readonly dtype: FileDType;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

/** A validated header: its entries (in data order) and metadata. */
interface Header {
  readonly entries: readonly TensorEntry[];
  readonly metadata: Record<string, string>;
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/** Reads and validates a safetensors file; tensors come back as sprig's f32 / i32. */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const { header, tensors } = await readFromDisk(path, (entry, raw, fail) =>
    decodeTensor(entry, raw, fail),
  );
  return { tensors, metadata: header.metadata };
}

/** Reads and validates a safetensors file, keeping F16 / BF16 / U8 tensors as stored. */
export async function readSafetensorsFile(path: string): Promise<SafetensorsFileExact> {
  const { header, tensors } = await readFromDisk<StoredTensor>(
    path,
    (entry, raw, fail) => decodeStored(entry, raw) ?? decodeTensor(entry, raw, fail),
  );
  return { tensors, metadata: header.metadata };
}

/**
 * Parses safetensors bytes. `fileLabel` names the source in error messages. The returned
 * tensors own fresh, aligned buffers and do not alias `bytes`.
 */
export function parseSafetensors(bytes: Uint8Array, fileLabel: string): SafetensorsFile {
  const fail = failFor(fileLabel);
  const { header, data } = layoutInMemory(bytes, fail);
  const tensors = new Map<string, HostTensor>();
  for (const entry of header.entries) {
    tensors.set(entry.name, decodeTensor(entry, data.subarray(entry.begin, entry.end), fail));
  }
  return { tensors, metadata: header.metadata };
}

/** Like parseSafetensors, but F16 / BF16 / U8 tensors stay as stored (FileTensor). */
export function parseSafetensorsFile(bytes: Uint8Array, fileLabel: string): SafetensorsFileExact {
  const fail = failFor(fileLabel);
  const { header, data } = layoutInMemory(bytes, fail);
  const tensors = new Map<string, StoredTensor>();
  for (const entry of header.entries) {
    const raw = data.subarray(entry.begin, entry.end);
    tensors.set(entry.name, decodeStored(entry, raw) ?? decodeTensor(entry, raw, fail));
  }
  return { tensors, metadata: header.metadata };
}

function failFor(fileLabel: string): Fail {
  return (tensor, detail) => {
    throw new SafetensorsError(fileLabel, tensor, detail);
  };
}

/** R1, R2: the header length the 8-byte prefix declares, checked against the file size. */
function headerLength(prefix: Uint8Array, fileBytes: number, fail: Fail): number {
  if (fileBytes < PREFIX_BYTES) {
    fail(undefined, `file is ${fileBytes} bytes, shorter than the 8-byte header length`);
  }
  // Compare as bigint: a corrupt prefix can exceed 2^53, where Number would round.
  const declared = new DataView(prefix.buffer, prefix.byteOffset, PREFIX_BYTES).getBigUint64(
    0,
    true,
  );
  if (declared === 0n) fail(undefined, "header length is 0");
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    fail(undefined, `header length ${declared} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const length = Number(declared);
  if (length > fileBytes - PREFIX_BYTES) {
    fail(
      undefined,
      `header length ${length} runs past the end of the file ` +
        `(${fileBytes - PREFIX_BYTES} bytes follow the length prefix)`,
    );
  }
  return length;
}

function layoutInMemory(bytes: Uint8Array, fail: Fail): { header: Header; data: Uint8Array } {
  const length = headerLength(bytes, bytes.byteLength, fail);
  const dataStart = PREFIX_BYTES + length;
  const data = bytes.subarray(dataStart);
  const header = parseHeader(bytes.subarray(PREFIX_BYTES, dataStart), data.byteLength, fail);
  return { header, data };
}

/**
 * Byte arrays read from disk for one tensor alone: they start at offset 0 of their own
 * ArrayBuffer, so decoding may reinterpret them instead of copying.
 */
const FRESH = new WeakSet<Uint8Array>();

type Decode<T> = (entry: TensorEntry, raw: Uint8Array, fail: Fail) => T;

/**
 * Opens a regular file, validates its prefix and header against its size (R1-R12), and
 * only then reads each tensor's bytes and decodes them.
 */
async function readFromDisk<T>(
  path: string,
  decode: Decode<T>,
): Promise<{ header: Header; tensors: Map<string, T> }> {
  const fail = failFor(path);
  let opened: { handle: FileHandle; size: number };
  try {
    opened = await openRegularFile(path, "safetensors file");
  } catch (error) {
    if (error instanceof FileReadError) fail(undefined, error.problem);
    throw error;
  }
  const { handle, size } = opened;
  const read = async (position: number, length: number): Promise<Uint8Array> => {
    const target = new Uint8Array(length);
    try {
      await readExactly(handle, target, position, path, "safetensors file");
    } catch (error) {
      if (error instanceof FileReadError) fail(undefined, error.problem);
      throw error;
    }
    FRESH.add(target);
    return target;
  };
  try {
    const prefix = await read(0, Math.min(size, PREFIX_BYTES));
    const length = headerLength(prefix, size, fail);
    const dataStart = PREFIX_BYTES + length;
    const header = parseHeader(await read(PREFIX_BYTES, length), size - dataStart, fail);
    const tensors = new Map<string, T>();
    for (const entry of header.entries) {
      const raw = await read(dataStart + entry.begin, entry.end - entry.begin);
      tensors.set(entry.name, decode(entry, raw, fail));
    }
    return { header, tensors };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** R3-R12 on the header bytes, for a data section of `dataBytes` bytes. */
function parseHeader(headerBytes: Uint8Array, dataBytes: number, fail: Fail): Header {
  const header = parseHeaderJson(headerBytes, fail);
  let metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      metadata = validateMetadata(value, fail);
    } else {
      entries.push(validateEntry(name, value, fail));
    }
  }
  return { entries: checkTiling(entries, dataBytes, fail), metadata };
}

function parseHeaderJson(headerBytes: Uint8Array, fail: Fail): Record<string, unknown> {
  let text: string;
  try {
    // fatal: reject malformed UTF-8 rather than silently substituting U+FFFD.
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    return fail(undefined, "header is not valid UTF-8");
  }
  let parsed: unknown;
  try {
    // Trailing-space padding is insignificant whitespace after the object.
    parsed = parseStrictJson(text);
  } catch (error) {
    if (!(error instanceof StrictJsonError)) throw error;
    return fail(undefined, `header is not valid JSON: ${error.message}`);
  }
  if (!isJsonObject(parsed)) {
    return fail(undefined, `header must be a JSON object, got ${describeJsonType(parsed)}`);
  }
  return parsed;
}

function validateMetadata(value: unknown, fail: Fail): Record<string, string> {
  if (!isJsonObject(value)) {
    return fail(undefined, `"${METADATA_KEY}" must be an object, got ${describeJsonType(value)}`);
  }
  const pairs: [string, string][] = [];
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") {
      fail(
        undefined,
        `"${METADATA_KEY}" value for key ${JSON.stringify(key)} must be a string, ` +
          `got ${describeJsonType(item)}`,
      );
    }
    pairs.push([key, item]);
  }
  // fromEntries defines own properties, so a key like "__proto__" stays plain data.
  return Object.fromEntries(pairs);
}

function validateEntry(name: string, value: unknown, fail: Fail): TensorEntry {
  if (!isJsonObject(value)) {
    return fail(name, `header entry must be an object, got ${describeJsonType(value)}`);
  }
  for (const field of Object.keys(value)) {
    // Unknown fields are most likely typos ("data_offset"); refuse rather than guess.
    if (!ENTRY_FIELDS.has(field)) fail(name, `unexpected field ${JSON.stringify(field)}`);
  }

  const { dtype, shape, data_offsets: offsets } = value;
  if (dtype === undefined) fail(name, `missing "dtype"`);
  if (typeof dtype !== "string") {
    return fail(name, `"dtype" must be a string, got ${describeJsonType(dtype)}`);
  }
  if (!Object.hasOwn(ELEMENT_BYTES, dtype)) {
    fail(name, `unsupported dtype ${JSON.stringify(dtype)}; supported dtypes: ${SUPPORTED_DTYPES}`);
  }
  const fileDType = dtype as FileDType;

  if (shape === undefined) fail(name, `missing "shape"`);
  if (!Array.isArray(shape)) {
    return fail(name, `"shape" must be an array, got ${describeJsonType(shape)}`);
  }
  const dims: number[] = [];
  for (const dim of shape as unknown[]) {
    if (!isNonNegativeSafeInteger(dim)) {
      return fail(
        name,
        `"shape" must hold non-negative integers (no fraction, exponent or sign), got ${literalText(shape)}`,
      );
    }
    dims.push(dim);
  }
  // A zero dimension makes the tensor empty whatever the others are; otherwise the
  // product must stay exact, or the byte length check below would be meaningless.
  const count = dims.includes(0) ? 0 : numElements(dims);
  if (!Number.isSafeInteger(count)) fail(name, `shape ${formatShape(dims)} has too many elements`);
  const expectedBytes = count * ELEMENT_BYTES[fileDType];
  if (!Number.isSafeInteger(expectedBytes)) {
    fail(name, `shape ${formatShape(dims)} has too many bytes`);
  }

  if (offsets === undefined) fail(name, `missing "data_offsets"`);
  const [begin, end, ...rest] = Array.isArray(offsets) ? (offsets as unknown[]) : [];
  if (
    !Array.isArray(offsets) ||
    rest.length > 0 ||
    !isNonNegativeSafeInteger(begin) ||
    !isNonNegativeSafeInteger(end)
  ) {
    return fail(
      name,
      `"data_offsets" must be two non-negative integers (no fraction, exponent or sign), got ${literalText(offsets)}`,
    );
  }
  if (begin > end) fail(name, `"data_offsets" [${begin},${end}] has begin > end`);
  if (end - begin !== expectedBytes) {
    fail(
      name,
      `${fileDType}${formatShape(dims)} needs ${expectedBytes} bytes but "data_offsets" ` +
        `[${begin},${end}] span ${end - begin}`,
    );
  }
  return { name, dtype: fileDType, shape: dims, begin, end };
}

/**
 * R11, R12: sorted by (begin, end), each tensor must begin where the previous one ended,
 * starting at 0, and the last must end at the end of the data section. Returns the
 * entries in that order.
 */
function checkTiling(
  entries: readonly TensorEntry[],
  dataBytes: number,
  fail: Fail,
): TensorEntry[] {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: TensorEntry | undefined;
  for (const entry of sorted) {
    if (entry.begin < cursor) {
      fail(
        entry.name,
        `bytes [${entry.begin},${entry.end}] overlap tensor "${previous!.name}" ` +
          `at [${previous!.begin},${previous!.end}]`,
      );
    }
    if (entry.begin > cursor) {
      fail(
        entry.name,
        `bytes [${cursor},${entry.begin}] of the data section before it belong to no tensor` +
          (previous === undefined
            ? ""
            : ` (the previous tensor, "${previous.name}", ends at ${cursor})`),
      );
    }
    if (entry.end > dataBytes) {
      fail(
        entry.name,
        `"data_offsets" [${entry.begin},${entry.end}] lie outside the ${dataBytes}-byte data section`,
      );
    }
    cursor = entry.end;
    previous = entry;
  }
  if (cursor !== dataBytes) {
    fail(
      undefined,
      `bytes [${cursor},${dataBytes}] at the end of the data section belong to no tensor ` +
        `(${dataBytes - cursor} trailing bytes)`,
    );
  }
  return sorted;
}

function decodeTensor(entry: TensorEntry, raw: Uint8Array, fail: Fail): HostTensor {
  switch (entry.dtype) {
    case "F32":
      // Same bits, reinterpreted: the words are already in host byte order.
      return f32Tensor(entry.shape, new Float32Array(readWordsLittleEndian(raw).buffer));
    case "I32":
      return i32Tensor(entry.shape, readWordsLittleEndian(raw));
    case "I64":
      return i32Tensor(entry.shape, narrowInt64(entry.name, raw, fail));
    case "F16":
      return f32Tensor(entry.shape, float16BitsToFloat32(readHalfWordsLittleEndian(raw)));
    case "BF16":
      return f32Tensor(entry.shape, bfloat16BitsToFloat32(readHalfWordsLittleEndian(raw)));
    case "U8":
      return i32Tensor(entry.shape, Int32Array.from(raw));
    default:
      return entry.dtype satisfies never;
  }
}

/** F16 / BF16 / U8 as stored; undefined for the dtypes HostTensor holds as they are. */
function decodeStored(entry: TensorEntry, raw: Uint8Array): FileTensor | undefined {
  switch (entry.dtype) {
    case "F16":
    case "BF16":
      return { dtype: entry.dtype, shape: entry.shape, data: readHalfWordsLittleEndian(raw) };
    case "U8":
      // A copy (not raw.slice(), a view when the bytes are a Buffer).
      return { dtype: "U8", shape: entry.shape, data: new Uint8Array(raw) };
    default:
      return undefined;
  }
}

/** Like readWordsLittleEndian, for 16-bit words. */
function readHalfWordsLittleEndian(raw: Uint8Array): Uint16Array {
  const words = new Uint16Array(raw.byteLength / 2);
  if (HOST_IS_LITTLE_ENDIAN) {
    new Uint8Array(words.buffer).set(raw);
  } else {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < words.length; i++) words[i] = view.getUint16(2 * i, true);
  }
  return words;
}

/**
 * Narrows little-endian int64 values to int32. A value fits exactly when its high word
 * is the sign extension of its low word, which avoids a BigInt per element.
 */
function narrowInt64(name: string, raw: Uint8Array, fail: Fail): Int32Array {
  const words = readWordsLittleEndian(raw);
  const values = new Int32Array(words.length / 2);
  for (let i = 0; i < values.length; i++) {
    const low = words[2 * i]!;
    const high = words[2 * i + 1]!;
    if (high !== low >> 31) {
      const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      fail(
        name,
        `I64 value ${view.getBigInt64(8 * i, true)} at flat index ${i} is outside the int32 ` +
          `range [-2147483648, 2147483647]`,
      );
    }
    values[i] = low;
  }
  return values;
}

/**
 * Little-endian 32-bit words in host byte order, in a 4-aligned buffer of their own. A
 * buffer read for this tensor alone (from disk) is reinterpreted in place on little-endian
 * hosts; anything else is copied, since offsets in a file image need not be aligned and
 * the caller's bytes must not be aliased.
 */
function readWordsLittleEndian(raw: Uint8Array): Int32Array {
  if (HOST_IS_LITTLE_ENDIAN && FRESH.has(raw)) return new Int32Array(raw.buffer);
  const words = new Int32Array(raw.byteLength / 4);
  if (HOST_IS_LITTLE_ENDIAN) {
    new Uint8Array(words.buffer).set(raw);
  } else {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < words.length; i++) words[i] = view.getInt32(4 * i, true);
  }
  return words;
}

// ---------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------

/** Encodes tensors (and optional metadata) as a safetensors file image. */
export function serializeSafetensors(
  tensors: TensorInput,
  metadata?: Record<string, string>,
): Uint8Array {
  return serialize(tensors, metadata, IN_MEMORY_LABEL);
}

/**
 * Writes a safetensors file atomically: the bytes go to a temporary file in the same
 * directory (so the rename cannot cross file systems), are flushed, and the temporary
 * file is renamed over `path`. Readers therefore see either the old file or the complete
 * new one. On any failure the temporary file is removed and `path` is left untouched
 * (see writeFileAtomic).
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorInput,
  metadata?: Record<string, string>,
): Promise<void> {
  // Serialize first so that invalid tensors fail before anything touches the disk.
  await writeFileAtomic(path, serialize(tensors, metadata, path));
}

interface PlannedTensor {
  readonly name: string;
  readonly tensor: StoredTensor;
  readonly fileDType: WrittenDType;
  readonly byteLength: number;
  begin: number;
}

/** Written dtypes in data-section order: largest element first, so nothing needs padding. */
const WRITE_ORDER = ["I64", "F32", "F16", "BF16", "U8"] as const;
type WrittenDType = (typeof WRITE_ORDER)[number];

function writtenDType(tensor: StoredTensor): WrittenDType {
  switch (tensor.dtype) {
    case "f32":
      return "F32";
    case "i32":
      return "I64";
    default:
      return tensor.dtype;
  }
}

function serialize(
  tensors: TensorInput,
  metadata: Record<string, string> | undefined,
  label: string,
): Uint8Array {
  const fail: Fail = (tensor, detail) => {
    throw new SafetensorsError(label, tensor, detail);
  };

  const input: [string, StoredTensor][] = isMap(tensors)
    ? [...tensors.entries()]
    : Object.entries(tensors);
  const byName = input.sort(([a], [b]) => compareStrings(a, b));

  const planned: PlannedTensor[] = byName.map(([name, tensor]) => {
    checkWritable(name, tensor, fail);
    const fileDType = writtenDType(tensor);
    const byteLength = tensor.data.length * ELEMENT_BYTES[fileDType];
    return { name, tensor, fileDType, byteLength, begin: 0 };
  });

  // Largest elements first: the data section starts 8-aligned and each group's length is
  // a multiple of its element size, so every tensor lands aligned with no gaps.
  let dataBytes = 0;
  for (const fileDType of WRITE_ORDER) {
    for (const entry of planned) {
      if (entry.fileDType !== fileDType) continue;
      entry.begin = dataBytes;
      dataBytes += entry.byteLength;
    }
  }

  const headerBytes = encodeHeader(planned, metadata, fail);
  const output = new Uint8Array(PREFIX_BYTES + headerBytes.byteLength + dataBytes);
  new DataView(output.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  output.set(headerBytes, PREFIX_BYTES);
  const data = output.subarray(PREFIX_BYTES + headerBytes.byteLength);
  for (const entry of planned) {
    writeTensorData(entry, data.subarray(entry.begin, entry.begin + entry.byteLength));
  }
  return output;
}

/** The typed array each writable dtype's data must be. */
const DATA_ARRAYS = {
  f32: Float32Array,
  i32: Int32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  U8: Uint8Array,
} as const;

function checkWritable(name: string, tensor: StoredTensor, fail: Fail): void {
  if (name === METADATA_KEY) fail(name, `"${METADATA_KEY}" is reserved for metadata`);
  // The types rule this out statically; check anyway for callers outside TypeScript.
  const dtype: unknown = tensor.dtype;
  if (typeof dtype !== "string" || !Object.hasOwn(DATA_ARRAYS, dtype)) {
    fail(
      name,
      `cannot write dtype ${JSON.stringify(dtype)}; expected f32 or i32 (HostTensor) ` +
        `or F16, BF16, U8 (FileTensor)`,
    );
  }
  const expectedArray = DATA_ARRAYS[tensor.dtype];
  if (!(tensor.data instanceof expectedArray)) {
    fail(name, `${tensor.dtype} tensor data must be a ${expectedArray.name}`);
  }
  if (!tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(name, `shape ${formatShape(tensor.shape)} must hold non-negative integers`);
  }
  const count = tensor.shape.includes(0) ? 0 : numElements(tensor.shape);
  if (tensor.data.length !== count) {
    fail(
      name,
      `shape ${formatShape(tensor.shape)} needs ${count} values, data has ${tensor.data.length}`,
    );
  }
}

/**
 * Builds the JSON header by hand rather than with JSON.stringify on one object: JS
 * objects enumerate integer-like keys first, which would break the sorted-by-name order.
 */
function encodeHeader(
  planned: readonly PlannedTensor[],
  metadata: Record<string, string> | undefined,
  fail: Fail,
): Uint8Array {
  const members: string[] = [];
  if (metadata !== undefined) {
    const pairs = Object.entries(metadata).sort(([a], [b]) => compareStrings(a, b));
    for (const [key, value] of pairs) {
      if (typeof value !== "string") {
        fail(undefined, `metadata value for key ${JSON.stringify(key)} must be a string`);
      }
    }
    const body = pairs.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`);
    members.push(`${JSON.stringify(METADATA_KEY)}:{${body.join(",")}}`);
  }
  for (const entry of planned) {
    const info =
      `{"dtype":"${entry.fileDType}","shape":[${entry.tensor.shape.join(",")}],` +
      `"data_offsets":[${entry.begin},${entry.begin + entry.byteLength}]}`;
    members.push(`${JSON.stringify(entry.name)}:${info}`);
  }
  const json = new TextEncoder().encode(`{${members.join(",")}}`);
  // Pad with spaces to a multiple of 8 so the data section starts 8-aligned in the file.
  const padded = new Uint8Array(Math.ceil(json.byteLength / 8) * 8).fill(0x20);
  padded.set(json);
  return padded;
}

function writeTensorData(entry: PlannedTensor, target: Uint8Array): void {
  const { tensor } = entry;
  if (tensor.dtype === "U8") {
    target.set(tensor.data);
    return;
  }
  if (tensor.dtype === "F16" || tensor.dtype === "BF16") {
    writeHalfWordsLittleEndian(tensor.data, target);
    return;
  }
  if (tensor.dtype === "f32") {
    // View the floats as 32-bit words so their bits are copied exactly (NaN payloads too).
    const words = new Int32Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.length);
    writeWordsLittleEndian(words, target);
    return;
  }
  // Widen to I64: low word is the value, high word its sign extension.
  const words = new Int32Array(tensor.data.length * 2);
  for (let i = 0; i < tensor.data.length; i++) {
    const value = tensor.data[i]!;
    words[2 * i] = value;
    words[2 * i + 1] = value >> 31;
  }
  writeWordsLittleEndian(words, target);
}

function writeHalfWordsLittleEndian(words: Uint16Array, target: Uint8Array): void {
  if (HOST_IS_LITTLE_ENDIAN) {
    target.set(new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
  } else {
    const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
    for (let i = 0; i < words.length; i++) view.setUint16(2 * i, words[i]!, true);
  }
}

function writeWordsLittleEndian(words: Int32Array, target: Uint8Array): void {
  if (HOST_IS_LITTLE_ENDIAN) {
    target.set(new Uint8Array(words.buffer, words.byteOffset, words.byteLength));
  } else {
    const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
    for (let i = 0; i < words.length; i++) view.setInt32(4 * i, words[i]!, true);
  }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

function isMap(tensors: TensorInput): tensors is ReadonlyMap<string, StoredTensor> {
  return tensors instanceof Map;
}

/** A JSON object of the header (not an array, null, or a non-integer number literal). */
function isJsonObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof NonIntegerLiteral)
  );
}

/** A value as it was written in the header: "2.0" stays 2.0, not 2 or "2.0". */
function literalText(value: unknown): string {
  if (value instanceof NonIntegerLiteral) return value.text;
  if (Array.isArray(value)) return `[${value.map(literalText).join(",")}]`;
  if (isJsonObject(value)) return "{...}";
  if (Object.is(value, -0)) return "-0";
  return JSON.stringify(value) ?? String(value);
}

/** A non-negative integer literal ("-0" is a sign, refused like any other: R9). */
function isNonNegativeSafeInteger(value: unknown): value is number {
  return (
    typeof value === "number" && Number.isSafeInteger(value) && value >= 0 && !Object.is(value, -0)
  );
}

/** Code-unit order, independent of locale, so output bytes are reproducible. */
function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function describeJsonType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value instanceof NonIntegerLiteral) return `the number ${value.text}`;
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}
