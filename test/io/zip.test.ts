/**
 * The zip reader on torch's real archives and on archives built here: other root
 * folders, no zip64 records, no alignment padding, and the ways an archive can be wrong.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { crc32 as zlibCrc32 } from "node:zlib";
import { describe, expect, it } from "vitest";
import { bytesSource } from "../../src/io/byte-source.js";
import { CheckpointError } from "../../src/io/checkpoint-error.js";
import {
  findStateDict,
  parseTorchCheckpoint,
  type TorchTensor,
} from "../../src/io/torch-checkpoint.js";
import { crc32, readZipArchive, type ZipArchive } from "../../src/io/zip.js";
import { buildZip, type ZipRecord } from "./checkpoint-builder.js";

const FP16_PATH = fileURLToPath(
  new URL("../../../shared/conformance/inputs/k1_checkpoint_fp16.pth", import.meta.url),
);
const FP16 = readFileSync(FP16_PATH);
const archiveOf = (bytes: Uint8Array, label = "test.pth"): ZipArchive =>
  readZipArchive(bytesSource(bytes), label);

/** The fp16 checkpoint's records, renamed under `root` (e.g. newer torch's "archive/"). */
function repackFp16(
  root: string,
  edit: (entries: ZipRecord[]) => ZipRecord[] = (e) => e,
): Uint8Array {
  const archive = archiveOf(FP16);
  const entries = [...archive.entries.values()].map((entry) => ({
    name: root + entry.name.slice("k1_checkpoint_fp16/".length),
    data: archive.read(entry),
  }));
  return buildZip(edit(entries));
}

function expectCheckpointError(run: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(CheckpointError);
  for (const fragment of fragments) expect((caught as Error).message).toContain(fragment);
}

const bitsOf = (tensor: TorchTensor) =>
  new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);

describe("torch's archives", () => {
  it("reads the zip64 end records and the 64-byte aligned records of k1_checkpoint_fp16.pth", () => {
    const archive = archiveOf(FP16);
    // 158 storages, data.pkl, version.
    expect(archive.entries.size).toBe(160);
    for (const entry of archive.entries.values()) {
      expect(entry.dataOffset % 64, entry.name).toBe(0);
      expect(entry.dataOffset + entry.size).toBeLessThanOrEqual(FP16.length);
    }
    const version = archive.entries.get("k1_checkpoint_fp16/version")!;
    expect(new TextDecoder().decode(archive.read(version))).toBe("3\n");
    // The zip64 locator really is there (so that path ran).
    expect(FP16.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x07]))).toBeGreaterThan(0);
  });

  it("computes CRC-32 as zlib does", () => {
    const sample = FP16.subarray(0, 100_000);
    expect(crc32(sample)).toBe(zlibCrc32(sample));
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

describe("archives built here", () => {
  it("reads a checkpoint under another root folder, without zip64 or padding", () => {
    const original = findStateDict(parseTorchCheckpoint(FP16, "fp16.pth"));
    const repacked = findStateDict(parseTorchCheckpoint(repackFp16("archive/"), "archive.pth"));
    expect([...repacked.tensors.keys()]).toEqual([...original.tensors.keys()]);
    for (const [name, tensor] of original.tensors) {
      expect(bitsOf(repacked.tensors.get(name)!), name).toEqual(bitsOf(tensor));
    }
    expect(repacked.metadata).toEqual(original.metadata);
  });

  it("refuses a compressed entry, naming it", () => {
    const bytes = repackFp16("archive/", (entries) =>
      entries.map((entry) => (entry.name === "archive/data/7" ? { ...entry, method: 8 } : entry)),
    );
    expectCheckpointError(
      () => archiveOf(bytes),
      'record "archive/data/7"',
      "compressed (method 8)",
    );
  });

  it("needs exactly one data.pkl", () => {
    const twice = repackFp16("a/", (entries) => [
      ...entries,
      { name: "b/data.pkl", data: entries[0]!.data },
    ]);
    expectCheckpointError(
      () => parseTorchCheckpoint(twice, "t.pth"),
      'one record named ".../data.pkl"',
      "found 2",
    );
    const none = repackFp16("a/", (entries) =>
      entries.filter((entry) => !entry.name.endsWith("data.pkl")),
    );
    expectCheckpointError(() => parseTorchCheckpoint(none, "t.pth"), "found 0");
  });

  it("names a missing or mis-sized storage record", () => {
    const missing = repackFp16("a/", (entries) =>
      entries.filter((entry) => entry.name !== "a/data/153"),
    );
    expectCheckpointError(
      () => parseTorchCheckpoint(missing, "t.pth"),
      't.pth: record "a/data/153"',
      'storage "153" has no record',
    );
    const short = repackFp16("a/", (entries) =>
      entries.map((entry) =>
        entry.name === "a/data/153" ? { ...entry, data: entry.data.subarray(2) } : entry,
      ),
    );
    expectCheckpointError(
      () => parseTorchCheckpoint(short, "t.pth"),
      'record "a/data/153"',
      "holds 132 bytes",
      "f16[67] (134 bytes)",
    );
  });

  it("checks each record's CRC-32", () => {
    const bytes = repackFp16("a/");
    const archive = archiveOf(bytes);
    const entry = archive.entries.get("a/data/0")!;
    bytes[entry.dataOffset]! ^= 0x01;
    expectCheckpointError(() => archive.read(entry), 'record "a/data/0"', "CRC-32");
  });

  it("refuses lying offsets and sizes", () => {
    // x: local header at 0, y at 41; central directory at 82 (x at 82, y at 129); end at 176.
    const base = buildZip([
      { name: "x", data: new Uint8Array(10) },
      { name: "y", data: new Uint8Array(10) },
    ]);
    expect(base.length).toBe(198);
    const edit = (...fields: [at: number, value: number, width: 2 | 4][]) => {
      const copy = base.slice();
      const view = new DataView(copy.buffer);
      for (const [at, value, width] of fields) {
        if (width === 2) view.setUint16(at, value, true);
        else view.setUint32(at, value, true);
      }
      return copy;
    };
    const [X_CENTRAL, Y_CENTRAL, END] = [82, 129, 176];
    const cases: [Uint8Array, ...string[]][] = [
      [edit([Y_CENTRAL + 42, 0, 4]), 'record "y"', "names a different entry"],
      [edit([X_CENTRAL + 20, 1000, 4]), 'record "x"', "sizes differ"],
      [
        edit([X_CENTRAL + 20, 1000, 4], [X_CENTRAL + 24, 1000, 4]),
        'record "x"',
        "runs into the central directory",
      ],
      [edit([X_CENTRAL + 42, 0xffffffff, 4]), 'record "x"', "no zip64 extra field"],
      [edit([28, 60000, 2]), 'record "x"', "local header runs into the central directory"],
      [edit([END + 8, 5, 2], [END + 10, 5, 2]), "cannot hold 5 entries"],
      [edit([END + 10, 5, 2]), "multi-disk"],
      [edit([END + 16, 1 << 30, 4]), "runs past the end records"],
      [edit([END + 12, 93, 4]), "central directory entry 1 runs past"],
      [base.subarray(0, base.length - 1), "no end-of-central-directory record"],
    ];
    for (const [bytes, ...fragments] of cases) {
      expectCheckpointError(() => archiveOf(bytes), ...fragments);
    }
    expect(archiveOf(base).entries.size).toBe(2);
  });
});
