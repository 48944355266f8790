/**
 * Fuzzing the checkpoint reader with mutations of the real conformance checkpoints:
 * truncation, byte flips, and lies in the fields that size things (zip header sizes and
 * offsets, pickle length prefixes and memo indices, legacy element counts). Whatever the
 * bytes, the reader must either parse them or throw one of sprig's own errors: never
 * another exception (a RangeError from a bad typed array, a stack overflow), never take
 * long, and never hold much more memory than the file's size.
 *
 * Mutations inside a zip's data.pkl recompute its CRC-32 (with zlib, independently of
 * sprig) in both headers, so that they reach the pickle machine instead of stopping at
 * the checksum.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadPickle } from "../../src/io/pickle.js";
import { parseTorchCheckpoint, parseTorchStateDict } from "../../src/io/torch-checkpoint.js";
import { SprigError } from "../../src/ir/errors.js";

const inputPath = (name: string) =>
  fileURLToPath(new URL(`../../../shared/conformance/inputs/${name}`, import.meta.url));
const load = (name: string) => new Uint8Array(readFileSync(inputPath(name)));

const ZIP_F32 = load("k1_checkpoint.pth");
const ZIP_F16 = load("k1_checkpoint_fp16.pth");
const LEGACY = load("k1_checkpoint_legacy.pth");

/** Most time one parse may take; a real one takes tens of milliseconds. */
const MAX_CASE_MS = 3000;

// ---------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------

/** Distinct buffers behind the tensors of a parse result (walked without recursion). */
function tensorBytes(root: unknown): number {
  const buffers = new Set<ArrayBufferLike>();
  const seen = new Set<unknown>();
  const work: unknown[] = [root];
  while (work.length > 0) {
    const value = work.pop();
    if (typeof value !== "object" || value === null || seen.has(value)) continue;
    seen.add(value);
    if (ArrayBuffer.isView(value)) {
      buffers.add(value.buffer);
      continue;
    }
    if (value instanceof Map) for (const item of value.values()) work.push(item);
    else for (const item of Object.values(value)) work.push(item);
  }
  return [...buffers].reduce((sum, buffer) => sum + buffer.byteLength, 0);
}

/**
 * Parses `bytes` with the full or the state_dict-only reader and checks the outcome:
 * success with tensors in at most twice the file's bytes (storages plus view copies,
 * each bounded by the file), or a SprigError; within MAX_CASE_MS.
 */
function checkOutcome(bytes: Uint8Array, stateDictOnly: boolean): void {
  const start = performance.now();
  const buffersBefore = process.memoryUsage().arrayBuffers;
  try {
    const result = stateDictOnly
      ? parseTorchStateDict(bytes, "fuzz.pth").tensors
      : parseTorchCheckpoint(bytes, "fuzz.pth").root;
    expect(tensorBytes(result)).toBeLessThanOrEqual(2 * bytes.length);
  } catch (error) {
    if (!(error instanceof SprigError)) throw error;
    expect(error.message.startsWith("fuzz.pth: ")).toBe(true);
  }
  expect(performance.now() - start).toBeLessThan(MAX_CASE_MS);
  // Garbage from this case may still be uncollected; a runaway allocation would be far
  // beyond this bound (or fail with a RangeError, which is not a SprigError).
  expect(process.memoryUsage().arrayBuffers - buffersBefore).toBeLessThan(8 * bytes.length + 64e6);
}

function runProperty<T>(
  mutation: fc.Arbitrary<T>,
  apply: (value: T) => Uint8Array,
  numRuns: number,
): void {
  fc.assert(
    fc.property(mutation, fc.boolean(), (value, stateDictOnly) => {
      checkOutcome(apply(value), stateDictOnly);
    }),
    { numRuns },
  );
}

// ---------------------------------------------------------------------------------------
// Where the sizes are
// ---------------------------------------------------------------------------------------

interface Field {
  readonly at: number;
  readonly width: 1 | 2 | 4 | 8;
}

/** Offsets of a 4-byte little-endian signature (the "PK.." record markers). */
function signatures(bytes: Uint8Array, signature: number): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found: number[] = [];
  for (let at = 0; at + 4 <= bytes.length; at++) {
    if (view.getUint32(at, true) === signature) found.push(at);
  }
  return found;
}

const fieldsAt = (starts: number[], layout: readonly [number, Field["width"]][]): Field[] =>
  starts.flatMap((start) => layout.map(([offset, width]) => ({ at: start + offset, width })));

/** Size, offset, length and method fields of every zip record (APPNOTE 4.3). */
function zipFields(bytes: Uint8Array): Field[] {
  return [
    ...fieldsAt(signatures(bytes, 0x04034b50), [
      [8, 2],
      [18, 4],
      [22, 4],
      [26, 2],
      [28, 2],
    ]),
    ...fieldsAt(signatures(bytes, 0x02014b50), [
      [10, 2],
      [20, 4],
      [24, 4],
      [28, 2],
      [30, 2],
      [32, 2],
      [34, 2],
      [42, 4],
    ]),
    ...fieldsAt(signatures(bytes, 0x06064b50), [
      [24, 8],
      [32, 8],
      [40, 8],
      [48, 8],
    ]),
    ...fieldsAt(signatures(bytes, 0x07064b50), [[8, 8]]),
    ...fieldsAt(signatures(bytes, 0x06054b50), [
      [8, 2],
      [10, 2],
      [12, 4],
      [16, 4],
      [20, 2],
    ]),
  ];
}

/** Operands that size or index something, from a trace of the unmutated pickle. */
const OPERAND_WIDTHS: Readonly<Record<string, Field["width"]>> = {
  BINUNICODE: 4,
  SHORT_BINUNICODE: 1,
  LONG_BINPUT: 4,
  LONG_BINGET: 4,
  BINPUT: 1,
  BINGET: 1,
  BININT1: 1,
  BININT2: 2,
  LONG1: 1,
};

function pickleOperands(data: Uint8Array, start: number, end: number): Field[] {
  const fields: Field[] = [];
  let offset = start;
  while (offset < end) {
    const pickleStart = offset;
    offset = loadPickle(data.subarray(0, end), {
      file: "fixture",
      start: pickleStart,
      trace: (opcode, at) => {
        const width = OPERAND_WIDTHS[opcode];
        if (width !== undefined) fields.push({ at: pickleStart + at + 1, width });
      },
    }).end;
  }
  return fields;
}

interface ZipPickle {
  readonly dataOffset: number;
  readonly size: number;
  readonly crcFields: readonly number[];
}

/** The data.pkl record of a zip fixture: its data range and both headers' CRC fields. */
function zipPickle(bytes: Uint8Array): ZipPickle {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // torch writes data.pkl first: the local header at 0.
  const nameLength = view.getUint16(26, true);
  const name = new TextDecoder().decode(bytes.subarray(30, 30 + nameLength));
  expect(name.endsWith("/data.pkl")).toBe(true);
  const dataOffset = 30 + nameLength + view.getUint16(28, true);
  const central = signatures(bytes, 0x02014b50).find((at) => view.getUint32(at + 42, true) === 0)!;
  // Sizes from the central directory: torch's local headers defer them to a data descriptor.
  return { dataOffset, size: view.getUint32(central + 24, true), crcFields: [14, central + 16] };
}

/** After editing data.pkl, its CRC in both headers is made to match again. */
function fixPickleCrc(bytes: Uint8Array, pickle: ZipPickle): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const crc = crc32(bytes.subarray(pickle.dataOffset, pickle.dataOffset + pickle.size));
  for (const at of pickle.crcFields) view.setUint32(at, crc, true);
  return bytes;
}

/**
 * The 8-byte element counts of the legacy file's storages, from `start` on: each count c
 * is followed by c elements of 2 (float16) or 8 (int64) bytes, and then by the next
 * count or the end of the file. The element sizes are found by searching for the one
 * chain of counts that ends exactly at the end of the file (depth-first, backtracking).
 */
function legacyCounts(bytes: Uint8Array, start: number): Field[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const deadEnds = new Set<number>();
  const chainFrom = (at: number): number[] | undefined => {
    if (at === bytes.length) return [];
    if (at + 8 > bytes.length || deadEnds.has(at)) return undefined;
    const count = Number(view.getBigUint64(at, true));
    for (const size of [2, 8]) {
      const rest = chainFrom(at + 8 + count * size);
      if (rest !== undefined) return [at, ...rest];
    }
    deadEnds.add(at);
    return undefined;
  };
  const chain = chainFrom(start);
  expect(chain).toBeDefined();
  return chain!.map((at) => ({ at, width: 8 }));
}

// ---------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------

/** A lie for a field: 0, all ones, a random value, or the true value nudged a little. */
function lie(field: Field): fc.Arbitrary<bigint> {
  const bits = BigInt(field.width * 8);
  const max = (1n << bits) - 1n;
  return fc.oneof(
    fc.constant(0n),
    fc.constant(max),
    fc.bigInt({ min: 0n, max }),
    fc.integer({ min: -3, max: 3 }).map((delta) => BigInt(delta)),
  );
}

function writeField(bytes: Uint8Array, field: Field, value: bigint, relative: boolean): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bits = BigInt(field.width * 8);
  const mask = (1n << bits) - 1n;
  const read = (): bigint => {
    if (field.width === 1) return BigInt(view.getUint8(field.at));
    if (field.width === 2) return BigInt(view.getUint16(field.at, true));
    if (field.width === 4) return BigInt(view.getUint32(field.at, true));
    return view.getBigUint64(field.at, true);
  };
  const next = (relative ? read() + value : value) & mask;
  if (field.width === 1) view.setUint8(field.at, Number(next));
  else if (field.width === 2) view.setUint16(field.at, Number(next), true);
  else if (field.width === 4) view.setUint32(field.at, Number(next), true);
  else view.setBigUint64(field.at, next, true);
}

/** A field to lie in and the lie: small values nudge the true value, others replace it. */
function fieldLie(
  fields: readonly Field[],
): fc.Arbitrary<{ field: Field; value: bigint; relative: boolean }> {
  expect(fields.length).toBeGreaterThan(0);
  return fc
    .constantFrom(...fields)
    .chain((field) =>
      fc
        .tuple(fc.constant(field), lie(field), fc.boolean())
        .map(([f, value, relative]) => ({ field: f, value, relative })),
    );
}

const withLie = (
  base: Uint8Array,
  { field, value, relative }: { field: Field; value: bigint; relative: boolean },
) => {
  const bytes = base.slice();
  writeField(bytes, field, value, relative);
  return bytes;
};

const flips = (begin: number, end: number) =>
  fc.array(
    fc.record({
      at: fc.integer({ min: begin, max: end - 1 }),
      xor: fc.integer({ min: 1, max: 255 }),
    }),
    {
      minLength: 1,
      maxLength: 8,
    },
  );

function withFlips(base: Uint8Array, edits: readonly { at: number; xor: number }[]): Uint8Array {
  const bytes = base.slice();
  for (const { at, xor } of edits) bytes[at]! ^= xor;
  return bytes;
}

// ---------------------------------------------------------------------------------------
// The runs (a few hundred in all)
// ---------------------------------------------------------------------------------------

describe("fuzzing the checkpoint reader", () => {
  it("parses the unmutated fixtures", () => {
    for (const bytes of [ZIP_F32, ZIP_F16, LEGACY]) {
      expect(parseTorchStateDict(bytes, "fixture").tensors.size).toBe(161);
    }
  });

  describe.each([
    ["k1_checkpoint.pth", ZIP_F32],
    ["k1_checkpoint_fp16.pth", ZIP_F16],
  ])("%s", (_name, base) => {
    const pickle = zipPickle(base);

    it("survives truncation at any point", () => {
      runProperty(
        fc.integer({ min: 0, max: base.length - 1 }),
        (length) => base.slice(0, length),
        30,
      );
    });

    it("survives byte flips anywhere (mostly caught by the CRC-32)", () => {
      runProperty(flips(0, base.length), (edits) => withFlips(base, edits), 30);
    });

    it("survives lying zip sizes, offsets and counts", () => {
      runProperty(fieldLie(zipFields(base)), (value) => withLie(base, value), 50);
    });

    it("survives lying pickle length prefixes and memo indices", () => {
      const operands = pickleOperands(
        base.subarray(0, pickle.dataOffset + pickle.size),
        pickle.dataOffset,
        pickle.dataOffset + pickle.size,
      );
      runProperty(fieldLie(operands), (value) => fixPickleCrc(withLie(base, value), pickle), 40);
    });

    it("survives byte flips inside the pickle", () => {
      runProperty(
        flips(pickle.dataOffset, pickle.dataOffset + pickle.size),
        (edits) => fixPickleCrc(withFlips(base, edits), pickle),
        30,
      );
    });
  });

  describe("k1_checkpoint_legacy.pth", () => {
    const spec = JSON.parse(readFileSync(inputPath("checkpoints.json"), "utf8")) as {
      files: Record<string, { storage_data_offset: number }>;
    };
    const storageStart = spec.files["k1_checkpoint_legacy.pth"]!.storage_data_offset;

    it("survives truncation at any point", () => {
      runProperty(
        fc.integer({ min: 0, max: LEGACY.length - 1 }),
        (length) => LEGACY.slice(0, length),
        30,
      );
    });

    it("survives lying element counts", () => {
      const counts = legacyCounts(LEGACY, storageStart);
      expect(counts.length).toBe(158);
      runProperty(fieldLie(counts), (value) => withLie(LEGACY, value), 30);
    });

    it("survives lying pickle length prefixes and memo indices", () => {
      runProperty(
        fieldLie(pickleOperands(LEGACY, 0, storageStart)),
        (value) => withLie(LEGACY, value),
        30,
      );
    });

    it("survives byte flips in the pickles", () => {
      runProperty(flips(0, storageStart), (edits) => withFlips(LEGACY, edits), 30);
    });
  });
});
