/**
 * A minimal reader for stored (uncompressed) zip archives, as torch.save writes them.
 *
 * Layout, read from the end:
 *
 *   [local header 30 B | name | extra | data] ...   one record per entry
 *   [central directory header 46 B | name | extra | comment] ...
 *   [zip64 end of central directory 56 B] [zip64 locator 20 B]   only when present
 *   [end of central directory 22 B | comment]
 *
 * torch writes the zip64 records whenever the file is large (and, in 1.13, always), and
 * pads each local header's extra field so that record data starts 64-byte aligned: the
 * data offset is therefore taken from the local header's own name and extra lengths,
 * never assumed from the central directory's.
 *
 * Nothing in the file is trusted. Every offset and size is checked against the file
 * before it is read; the central directory must lie inside the file and hold exactly
 * the entries it declares; every entry must be stored (a compressed one is an error that
 * names it), lie before the central directory, have matching local and central names and
 * not overlap another entry. So the bytes read for all entries together never exceed the
 * file's size. Entry data is checked against its CRC-32 when read.
 */
import type { ByteSource } from "./byte-source.js";
import { CheckpointError } from "./checkpoint-error.js";

/** One stored entry: where its data lies in the file and its checksum. */
export interface ZipEntry {
  readonly name: string;
  readonly dataOffset: number;
  readonly size: number;
  readonly crc32: number;
  /** Where the entry's local header starts. */
  readonly headerOffset: number;
}

export interface ZipArchive {
  /** Entries by name, in central directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  /** Reads an entry's bytes and checks their CRC-32. */
  read(entry: ZipEntry): Uint8Array;
}

const EOCD_SIGNATURE = 0x06054b50;
const EOCD_BYTES = 22;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const ZIP64_EOCD_BYTES = 56;
const CENTRAL_SIGNATURE = 0x02014b50;
const CENTRAL_BYTES = 46;
const LOCAL_SIGNATURE = 0x04034b50;
const LOCAL_BYTES = 30;
const ZIP64_EXTRA_ID = 0x0001;
const MAX_COMMENT_BYTES = 0xffff;
/** A 16- or 32-bit field holding this value defers to the zip64 record. */
const U16_ESCAPE = 0xffff;
const U32_ESCAPE = 0xffffffff;
const FLAG_ENCRYPTED = 0x1;
const METHOD_STORED = 0;

/** The fields the reader needs from the (zip64) end of central directory. */
interface DirectoryLocation {
  readonly entryCount: number;
  readonly offset: number;
  readonly size: number;
  /** Where the end records start: the central directory must end at or before it. */
  readonly end: number;
}

type Fail = (place: string | undefined, detail: string) => never;

/** True when the source starts with a local file header, as every torch.save zip does. */
export function looksLikeZip(source: ByteSource): boolean {
  if (source.byteLength < 4) return false;
  return view(source.read(0, 4)).getUint32(0, true) === LOCAL_SIGNATURE;
}

/** Reads the central directory and every local header; `file` names the source in errors. */
export function readZipArchive(source: ByteSource, file: string): ZipArchive {
  const fail: Fail = (place, detail) => {
    throw new CheckpointError(file, place, detail);
  };
  const location = locateDirectory(source, fail);
  const entries = readDirectory(source, location, fail);
  checkNoOverlap([...entries.values()], fail);
  return {
    entries,
    read(entry) {
      const bytes = source.read(entry.dataOffset, entry.size);
      const actual = crc32(bytes);
      if (actual !== entry.crc32) {
        fail(
          recordPlace(entry.name),
          `CRC-32 ${hex(actual)} of the data differs from ${hex(entry.crc32)} in the directory`,
        );
      }
      return bytes;
    },
  };
}

export function recordPlace(name: string): string {
  return `record ${JSON.stringify(name)}`;
}

// ---------------------------------------------------------------------------------------
// End of central directory
// ---------------------------------------------------------------------------------------

/**
 * The EOCD record is the last 22 bytes plus its comment, so it is searched backwards
 * over at most 22 + 65535 bytes; a candidate counts only if its comment ends the file.
 */
function locateDirectory(source: ByteSource, fail: Fail): DirectoryLocation {
  const size = source.byteLength;
  if (size < EOCD_BYTES) fail(undefined, `${size} bytes is too short for a zip archive`);
  const tailLength = Math.min(size, EOCD_BYTES + MAX_COMMENT_BYTES);
  const tailStart = size - tailLength;
  const tail = view(source.read(tailStart, tailLength));
  let eocd = -1;
  for (let at = tailLength - EOCD_BYTES; at >= 0; at--) {
    if (tail.getUint32(at, true) !== EOCD_SIGNATURE) continue;
    if (at + EOCD_BYTES + tail.getUint16(at + 20, true) === tailLength) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) fail(undefined, "no end-of-central-directory record (not a zip, or truncated)");
  const eocdOffset = tailStart + eocd;
  const disk = tail.getUint16(eocd + 4, true);
  const directoryDisk = tail.getUint16(eocd + 6, true);
  const entriesOnDisk = tail.getUint16(eocd + 8, true);
  const entryCount = tail.getUint16(eocd + 10, true);
  const directorySize = tail.getUint32(eocd + 12, true);
  const directoryOffset = tail.getUint32(eocd + 16, true);

  const locatorOffset = eocdOffset - ZIP64_LOCATOR_BYTES;
  const hasLocator =
    locatorOffset >= 0 &&
    view(source.read(locatorOffset, 4)).getUint32(0, true) === ZIP64_LOCATOR_SIGNATURE;
  if (hasLocator) return readZip64Directory(source, locatorOffset, fail);

  const escaped =
    entryCount === U16_ESCAPE ||
    directorySize === U32_ESCAPE ||
    directoryOffset === U32_ESCAPE ||
    disk === U16_ESCAPE;
  if (escaped) fail(undefined, "end-of-central-directory defers to zip64, but no zip64 locator");
  if (disk !== 0 || directoryDisk !== 0 || entriesOnDisk !== entryCount) {
    fail(undefined, "multi-disk archives are not supported");
  }
  return checkLocation(
    { entryCount, offset: directoryOffset, size: directorySize, end: eocdOffset },
    fail,
  );
}

function readZip64Directory(
  source: ByteSource,
  locatorOffset: number,
  fail: Fail,
): DirectoryLocation {
  const locator = view(source.read(locatorOffset, ZIP64_LOCATOR_BYTES));
  const recordOffset = safeU64(locator, 8, "zip64 locator: record offset", fail);
  if (locator.getUint32(4, true) !== 0 || locator.getUint32(16, true) > 1) {
    fail(undefined, "multi-disk archives are not supported");
  }
  if (recordOffset + ZIP64_EOCD_BYTES > locatorOffset) {
    fail(
      undefined,
      `zip64 end-of-central-directory offset ${recordOffset} does not leave its ` +
        `${ZIP64_EOCD_BYTES} bytes before the locator at ${locatorOffset}`,
    );
  }
  const record = view(source.read(recordOffset, ZIP64_EOCD_BYTES));
  if (record.getUint32(0, true) !== ZIP64_EOCD_SIGNATURE) {
    fail(undefined, `no zip64 end-of-central-directory signature at ${recordOffset}`);
  }
  const disk = record.getUint32(16, true);
  const directoryDisk = record.getUint32(20, true);
  const entriesOnDisk = safeU64(record, 24, "zip64 entries on disk", fail);
  const entryCount = safeU64(record, 32, "zip64 entry count", fail);
  if (disk !== 0 || directoryDisk !== 0 || entriesOnDisk !== entryCount) {
    fail(undefined, "multi-disk archives are not supported");
  }
  return checkLocation(
    {
      entryCount,
      size: safeU64(record, 40, "zip64 central directory size", fail),
      offset: safeU64(record, 48, "zip64 central directory offset", fail),
      end: recordOffset,
    },
    fail,
  );
}

function checkLocation(location: DirectoryLocation, fail: Fail): DirectoryLocation {
  const { offset, size, end, entryCount } = location;
  if (offset + size > end) {
    fail(
      undefined,
      `central directory [${offset}, ${offset + size}) runs past the end records at ${end}`,
    );
  }
  // Each header takes at least 46 bytes: a count the size cannot hold is a lie, and
  // checking it first bounds the loop below by the file size.
  if (entryCount * CENTRAL_BYTES > size) {
    fail(undefined, `central directory of ${size} bytes cannot hold ${entryCount} entries`);
  }
  return location;
}

// ---------------------------------------------------------------------------------------
// Central directory and local headers
// ---------------------------------------------------------------------------------------

function readDirectory(
  source: ByteSource,
  location: DirectoryLocation,
  fail: Fail,
): Map<string, ZipEntry> {
  const directory = source.read(location.offset, location.size);
  const fields = view(directory);
  const entries = new Map<string, ZipEntry>();
  let at = 0;
  for (let index = 0; index < location.entryCount; index++) {
    const where = `central directory entry ${index}`;
    if (at + CENTRAL_BYTES > directory.byteLength) fail(undefined, `${where} runs past its end`);
    if (fields.getUint32(at, true) !== CENTRAL_SIGNATURE) {
      fail(undefined, `${where} has no signature at ${location.offset + at}`);
    }
    const nameLength = fields.getUint16(at + 28, true);
    const extraLength = fields.getUint16(at + 30, true);
    const commentLength = fields.getUint16(at + 32, true);
    const next = at + CENTRAL_BYTES + nameLength + extraLength + commentLength;
    if (next > directory.byteLength) fail(undefined, `${where} runs past the central directory`);
    const name = decodeName(
      directory.subarray(at + CENTRAL_BYTES, at + CENTRAL_BYTES + nameLength),
      where,
      fail,
    );
    const place = recordPlace(name);
    if (entries.has(name)) fail(place, "appears twice in the central directory");
    const flags = fields.getUint16(at + 8, true);
    if ((flags & FLAG_ENCRYPTED) !== 0) fail(place, "is encrypted");
    const method = fields.getUint16(at + 10, true);
    if (method !== METHOD_STORED) {
      fail(place, `is compressed (method ${method}); only stored entries are supported`);
    }
    const extra = directory.subarray(
      at + CENTRAL_BYTES + nameLength,
      at + CENTRAL_BYTES + nameLength + extraLength,
    );
    const sizes = resolveZip64Fields(fields, at, extra, place, fail);
    if (sizes.compressedSize !== sizes.size) {
      fail(place, `is stored but its sizes differ (${sizes.compressedSize} vs ${sizes.size})`);
    }
    const dataOffset = readLocalHeader(source, sizes.headerOffset, name, location.offset, fail);
    if (dataOffset + sizes.size > location.offset) {
      fail(
        place,
        `data [${dataOffset}, ${dataOffset + sizes.size}) runs into the central directory ` +
          `at ${location.offset}`,
      );
    }
    entries.set(name, {
      name,
      dataOffset,
      size: sizes.size,
      crc32: fields.getUint32(at + 16, true),
      headerOffset: sizes.headerOffset,
    });
    at = next;
  }
  if (at !== directory.byteLength) {
    fail(
      undefined,
      `central directory has ${directory.byteLength - at} bytes after its last entry`,
    );
  }
  return entries;
}

interface EntrySizes {
  readonly size: number;
  readonly compressedSize: number;
  readonly headerOffset: number;
}

/**
 * Fields of 0xFFFFFFFF (and a disk number of 0xFFFF) are in the zip64 extra field
 * (id 0x0001), as 8-byte values in the order: size, compressed size, header offset,
 * then a 4-byte disk number; only the escaped ones are present.
 */
function resolveZip64Fields(
  fields: DataView,
  at: number,
  extra: Uint8Array,
  place: string,
  fail: Fail,
): EntrySizes {
  const raw = {
    size: fields.getUint32(at + 24, true),
    compressedSize: fields.getUint32(at + 20, true),
    headerOffset: fields.getUint32(at + 42, true),
  };
  const disk = fields.getUint16(at + 34, true);
  const escaped = (Object.keys(raw) as (keyof typeof raw)[]).filter((k) => raw[k] === U32_ESCAPE);
  if (escaped.length === 0 && disk !== U16_ESCAPE) {
    if (disk !== 0) fail(place, "multi-disk archives are not supported");
    return raw;
  }
  const block = findExtraBlock(extra, ZIP64_EXTRA_ID, place, fail);
  if (block === undefined) fail(place, "has zip64 sizes but no zip64 extra field");
  const blockView = view(block);
  const resolved = { ...raw };
  let cursor = 0;
  for (const key of escaped) {
    if (cursor + 8 > block.byteLength) fail(place, "zip64 extra field is too short");
    resolved[key] = safeU64(blockView, cursor, `zip64 ${key}`, fail, place);
    cursor += 8;
  }
  if (disk === U16_ESCAPE) {
    if (cursor + 4 > block.byteLength) fail(place, "zip64 extra field is too short");
    if (blockView.getUint32(cursor, true) !== 0) {
      fail(place, "multi-disk archives are not supported");
    }
  } else if (disk !== 0) {
    fail(place, "multi-disk archives are not supported");
  }
  return resolved;
}

/** Extra fields are (id u16, length u16, data) blocks back to back. */
function findExtraBlock(
  extra: Uint8Array,
  id: number,
  place: string,
  fail: Fail,
): Uint8Array | undefined {
  const fields = view(extra);
  let at = 0;
  while (at + 4 <= extra.byteLength) {
    const blockId = fields.getUint16(at, true);
    const length = fields.getUint16(at + 2, true);
    if (at + 4 + length > extra.byteLength) fail(place, "extra field block runs past its end");
    if (blockId === id) return extra.subarray(at + 4, at + 4 + length);
    at += 4 + length;
  }
  return undefined;
}

/** Checks the local header at `offset` and returns where the entry's data starts. */
function readLocalHeader(
  source: ByteSource,
  offset: number,
  name: string,
  directoryOffset: number,
  fail: Fail,
): number {
  const place = recordPlace(name);
  if (offset + LOCAL_BYTES > directoryOffset) {
    fail(place, `local header offset ${offset} is not before the central directory`);
  }
  const header = view(source.read(offset, LOCAL_BYTES));
  if (header.getUint32(0, true) !== LOCAL_SIGNATURE) {
    fail(place, `no local header signature at ${offset}`);
  }
  const method = header.getUint16(8, true);
  if (method !== METHOD_STORED) {
    fail(place, `is compressed (method ${method}); only stored entries are supported`);
  }
  const nameLength = header.getUint16(26, true);
  const extraLength = header.getUint16(28, true);
  const dataOffset = offset + LOCAL_BYTES + nameLength + extraLength;
  if (dataOffset > directoryOffset) fail(place, "local header runs into the central directory");
  const localName = source.read(offset + LOCAL_BYTES, nameLength);
  if (decodeName(localName, place, fail) !== name) {
    fail(place, "local header names a different entry than the central directory");
  }
  return dataOffset;
}

/** Entries (header through data) must be disjoint, so no file byte is read twice. */
function checkNoOverlap(entries: readonly ZipEntry[], fail: Fail): void {
  const byOffset = [...entries].sort((a, b) => a.headerOffset - b.headerOffset);
  let previous: ZipEntry | undefined;
  for (const entry of byOffset) {
    // No overlap so far means `previous` reaches furthest.
    if (previous !== undefined && entry.headerOffset < previous.dataOffset + previous.size) {
      fail(recordPlace(entry.name), `overlaps record ${JSON.stringify(previous.name)}`);
    }
    previous = entry;
  }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A u64 field as a Number, refusing values beyond 2^53 (no file is that large). */
function safeU64(fields: DataView, at: number, what: string, fail: Fail, place?: string): number {
  const value = fields.getBigUint64(at, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) fail(place, `${what} ${value} is out of range`);
  return Number(value);
}

function decodeName(bytes: Uint8Array, where: string, fail: Fail): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail(undefined, `${where}: entry name is not valid UTF-8`);
  }
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

/** CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table-driven. */
const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
