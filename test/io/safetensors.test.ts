import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SafetensorsError } from "../../src/ir/errors.js";
import { f32Tensor, type HostTensor, i32Tensor } from "../../src/ir/tensor.js";
import {
  type FileTensor,
  parseSafetensors,
  parseSafetensorsFile,
  readSafetensors,
  readSafetensorsFile,
  serializeSafetensors,
  writeSafetensors,
} from "../../src/io/safetensors.js";

const LABEL = "fixtures/bad.safetensors";

const CONFORMANCE_A1 = fileURLToPath(
  new URL("../../../shared/conformance/a1_selfattn_dense_rpb.safetensors", import.meta.url),
);
const CONFORMANCE_F1 = fileURLToPath(
  new URL("../../../shared/conformance/f1_layer_full_768.safetensors", import.meta.url),
);
const CONFORMANCE_V1 = fileURLToPath(
  new URL("../../../shared/conformance/inputs/v1_video_preprocess.safetensors", import.meta.url),
);

/** Assembles a file from a header (JSON value or raw text/bytes) and a data section. */
function buildFile(header: unknown, data: Uint8Array | number = 0): Uint8Array {
  const headerBytes =
    header instanceof Uint8Array
      ? header
      : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const dataBytes = typeof data === "number" ? new Uint8Array(data) : data;
  const file = new Uint8Array(8 + headerBytes.byteLength + dataBytes.byteLength);
  new DataView(file.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  file.set(headerBytes, 8);
  file.set(dataBytes, 8 + headerBytes.byteLength);
  return file;
}

/** A file whose only length prefix is `length`, followed by `rest` bytes. */
function withPrefix(length: bigint, rest: Uint8Array | string): Uint8Array {
  const restBytes = typeof rest === "string" ? new TextEncoder().encode(rest) : rest;
  const file = new Uint8Array(8 + restBytes.byteLength);
  new DataView(file.buffer).setBigUint64(0, length, true);
  file.set(restBytes, 8);
  return file;
}

/** Header with one tensor "w" whose entry fields are overridden by `entry`. */
function singleTensor(entry: Record<string, unknown>, dataBytes = 16): Uint8Array {
  return buildFile(
    { w: { dtype: "F32", shape: [2, 2], data_offsets: [0, 16], ...entry } },
    dataBytes,
  );
}

/**
 * Runs `parse` and checks it throws a SafetensorsError that names the file label, the
 * tensor (or none), and every fragment.
 */
function expectParseError(
  bytes: Uint8Array,
  tensor: string | undefined,
  ...fragments: string[]
): SafetensorsError {
  let caught: unknown;
  try {
    parseSafetensors(bytes, LABEL);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(SafetensorsError);
  const error = caught as SafetensorsError;
  expect(error.file).toBe(LABEL);
  expect(error.message.startsWith(`${LABEL}: `)).toBe(true);
  expect(error.tensor).toBe(tensor);
  if (tensor !== undefined) expect(error.message).toContain(`tensor "${tensor}"`);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
  return error;
}

function headerText(file: Uint8Array): string {
  const length = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return new TextDecoder().decode(file.subarray(8, 8 + length));
}

function sampleTensors(): Map<string, HostTensor> {
  return new Map<string, HostTensor>([
    ["weight", f32Tensor([2, 3], Float32Array.of(1, -2.5, 3e-38, 1e30, -0, 0.1))],
    ["index", i32Tensor([4], Int32Array.of(0, -1, 2147483647, -2147483648))],
    ["scalar.f", f32Tensor([], Float32Array.of(42.5))],
    ["scalar.i", i32Tensor([], Int32Array.of(-7))],
    ["empty.f", f32Tensor([0, 5], new Float32Array(0))],
    ["empty.i", i32Tensor([3, 0], new Int32Array(0))],
    ["odd", f32Tensor([3], Float32Array.of(1, 2, 3))],
  ]);
}

function expectSameTensors(
  actual: ReadonlyMap<string, HostTensor>,
  expected: ReadonlyMap<string, HostTensor>,
): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [name, tensor] of expected) {
    const got = actual.get(name);
    expect(got?.dtype, name).toBe(tensor.dtype);
    expect(got?.shape, name).toEqual(tensor.shape);
    expect(got?.data, name).toEqual(tensor.data);
  }
}

describe("round trip", () => {
  it("preserves f32 and i32 tensors, scalars, zero-size tensors and metadata", () => {
    const tensors = sampleTensors();
    const metadata = { format: "pt", note: "ünïcode ✓", "": "empty key" };
    const parsed = parseSafetensors(serializeSafetensors(tensors, metadata), LABEL);
    expectSameTensors(parsed.tensors, tensors);
    expect(parsed.metadata).toEqual(metadata);
    expect(parsed.tensors.get("scalar.f")?.shape).toEqual([]);
    expect(Object.is(parsed.tensors.get("weight")?.data[4], -0)).toBe(true);
  });

  it("preserves f32 bit patterns exactly, NaN and infinities included", () => {
    const bits = Uint32Array.of(0x7fc00001, 0xff800000, 0x7f800000, 0x00000001, 0x80000000);
    const tensor = f32Tensor([5], new Float32Array(bits.buffer));
    const parsed = parseSafetensors(serializeSafetensors({ t: tensor }), LABEL);
    const data = parsed.tensors.get("t")?.data;
    expect(data).toBeInstanceOf(Float32Array);
    expect([...new Uint32Array((data as Float32Array).buffer)]).toEqual([...bits]);
  });

  it("accepts a plain record as well as a Map, with identical output", () => {
    const tensors = sampleTensors();
    const fromMap = serializeSafetensors(tensors, { a: "b" });
    const fromRecord = serializeSafetensors(Object.fromEntries(tensors), { a: "b" });
    expect(fromRecord).toEqual(fromMap);
  });

  it("returns empty metadata when the file has none", () => {
    const parsed = parseSafetensors(serializeSafetensors(sampleTensors()), LABEL);
    expect(parsed.metadata).toEqual({});
  });

  it("round-trips an empty tensor set", () => {
    const parsed = parseSafetensors(serializeSafetensors(new Map()), LABEL);
    expect(parsed.tensors.size).toBe(0);
  });

  it("keeps a metadata key named __proto__ as plain data", () => {
    const metadata = JSON.parse('{"__proto__": "x", "k": "v"}') as Record<string, string>;
    const parsed = parseSafetensors(serializeSafetensors({}, metadata), LABEL);
    expect(Object.entries(parsed.metadata)).toEqual([
      ["__proto__", "x"],
      ["k", "v"],
    ]);
  });
});

describe("writer layout", () => {
  const file = serializeSafetensors(sampleTensors(), { format: "pt" });
  const text = headerText(file);
  const header = JSON.parse(text) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const headerLength = text.length;
  const dataLength = file.byteLength - 8 - headerLength;

  it("pads the header with spaces to a multiple of 8 bytes", () => {
    expect(headerLength % 8).toBe(0);
    expect(text.trimEnd().endsWith("}")).toBe(true);
    expect(text.slice(text.trimEnd().length)).toMatch(/^ *$/);
  });

  it("writes f32 as F32 and i32 as I64, entries sorted by name, metadata first", () => {
    expect(header.weight?.dtype).toBe("F32");
    expect(header.index?.dtype).toBe("I64");
    expect(header["scalar.i"]?.dtype).toBe("I64");
    const names = Object.keys(header);
    expect(names[0]).toBe("__metadata__");
    const tensorNames = names.slice(1);
    expect(tensorNames).toEqual([...tensorNames].sort());
  });

  it("lays data out contiguously and aligned to each element size", () => {
    const ranges = Object.entries(header)
      .filter(([name]) => name !== "__metadata__")
      .map(([, entry]) => ({ ...entry }))
      .sort(
        (a, b) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1],
      );
    let cursor = 0;
    for (const entry of ranges) {
      const [begin, end] = entry.data_offsets;
      expect(begin).toBe(cursor);
      expect(begin % (entry.dtype === "I64" ? 8 : 4)).toBe(0);
      cursor = end;
    }
    expect(cursor).toBe(dataLength);
    // The data section itself starts 8-aligned in the file.
    expect((8 + headerLength) % 8).toBe(0);
  });

  it("writes I64 values as sign-extended little-endian 64-bit integers", () => {
    const [begin] = header.index?.data_offsets ?? [0];
    const view = new DataView(file.buffer, file.byteOffset + 8 + headerLength + begin);
    expect([0, 1, 2, 3].map((i) => view.getBigInt64(8 * i, true))).toEqual([
      0n,
      -1n,
      2147483647n,
      -2147483648n,
    ]);
  });

  it("omits __metadata__ when none is given", () => {
    expect(headerText(serializeSafetensors(sampleTensors()))).not.toContain("__metadata__");
  });

  it("keeps integer-like tensor names in sorted order", () => {
    // JSON.parse would list integer keys first, so check positions in the raw text.
    const text = headerText(
      serializeSafetensors({ b: f32Tensor([1]), "10": f32Tensor([1]), "2": f32Tensor([1]) }),
    );
    expect(text.indexOf('"10"')).toBeLessThan(text.indexOf('"2"'));
    expect(text.indexOf('"2"')).toBeLessThan(text.indexOf('"b"'));
  });
});

describe("writer validation", () => {
  function expectWriteError(run: () => unknown, tensor: string | undefined, fragment: string) {
    expect(run).toThrow(SafetensorsError);
    try {
      run();
    } catch (error) {
      expect((error as SafetensorsError).tensor).toBe(tensor);
      expect((error as SafetensorsError).message).toContain(fragment);
    }
  }

  it("rejects a tensor named __metadata__", () => {
    expectWriteError(
      () => serializeSafetensors({ __metadata__: f32Tensor([1]) }),
      "__metadata__",
      "reserved",
    );
  });

  it("rejects data whose length does not match the shape", () => {
    const bad = { dtype: "f32", shape: [2, 2], data: new Float32Array(3) } as HostTensor;
    expectWriteError(() => serializeSafetensors({ bad }), "bad", "needs 4 values");
  });

  it("rejects data of the wrong array type", () => {
    const bad = { dtype: "i32", shape: [2], data: new Float32Array(2) } as unknown as HostTensor;
    expectWriteError(() => serializeSafetensors({ bad }), "bad", "Int32Array");
  });

  it("rejects non-string metadata values", () => {
    const metadata = { n: 3 } as unknown as Record<string, string>;
    expectWriteError(() => serializeSafetensors({}, metadata), undefined, '"n"');
  });
});

describe("reader", () => {
  it("reads the a1 conformance file", async () => {
    const file = await readSafetensors(CONFORMANCE_A1);
    const query = file.tensors.get("query.weight");
    expect(query?.dtype).toBe("f32");
    expect(query?.shape).toEqual([64, 64]);
    expect(query?.data).toBeInstanceOf(Float32Array);
    expect(query?.data.length).toBe(64 * 64);
    expect(query?.data.every(Number.isFinite)).toBe(true);

    const index = file.tensors.get("relative_position_bias.relative_position_index");
    expect(index?.dtype).toBe("i32");
    expect(index?.shape).toEqual([33, 33]);
    expect(index?.data).toBeInstanceOf(Int32Array);
    // Indices address rows of the 150-row bias table.
    expect(index?.data.every((value) => value >= 0 && value < 150)).toBe(true);
    expect(file.metadata.case).toBe("a1_selfattn_dense_rpb");
  });

  it("round-trips the a1 conformance file through the writer", async () => {
    const original = await readSafetensors(CONFORMANCE_A1);
    const again = parseSafetensors(
      serializeSafetensors(original.tensors, original.metadata),
      LABEL,
    );
    expectSameTensors(again.tensors, original.tensors);
    expect(again.metadata).toEqual(original.metadata);
  });

  it("parses the 37 MB f1 conformance file in well under a second", async () => {
    const bytes = await readFile(CONFORMANCE_F1);
    const start = performance.now();
    const file = parseSafetensors(bytes, CONFORMANCE_F1);
    const elapsed = performance.now() - start;
    expect(file.tensors.get("attention.attention.query.weight")?.shape).toEqual([768, 768]);
    // Generous bound for a loaded 2-core machine; typical is ~150 ms.
    expect(elapsed).toBeLessThan(2000);
  });

  it("accepts I32 tensors", () => {
    const data = new Uint8Array(Int32Array.of(5, -6).buffer);
    const file = buildFile({ t: { dtype: "I32", shape: [2], data_offsets: [0, 8] } }, data);
    const tensor = parseSafetensors(file, LABEL).tensors.get("t");
    expect(tensor?.dtype).toBe("i32");
    expect(tensor?.data).toEqual(Int32Array.of(5, -6));
  });

  it("accepts I64 values at the int32 limits", () => {
    const data = new Uint8Array(BigInt64Array.of(-2147483648n, 2147483647n, 0n, -1n).buffer);
    const file = buildFile({ t: { dtype: "I64", shape: [4], data_offsets: [0, 32] } }, data);
    const tensor = parseSafetensors(file, LABEL).tensors.get("t");
    expect(tensor?.data).toEqual(Int32Array.of(-2147483648, 2147483647, 0, -1));
  });

  it("reads tensors at unaligned offsets from an unaligned input view", () => {
    const bytes = Uint8Array.of(7);
    const values = Float32Array.of(1.5, -2.25);
    const longs = BigInt64Array.of(-3n, 9n);
    const data = new Uint8Array(1 + 8 + 16);
    data.set(bytes, 0);
    data.set(new Uint8Array(values.buffer), 1);
    data.set(new Uint8Array(longs.buffer), 9);
    const file = buildFile(
      {
        u: { dtype: "U8", shape: [1], data_offsets: [0, 1] },
        f: { dtype: "F32", shape: [2], data_offsets: [1, 9] },
        i: { dtype: "I64", shape: [2], data_offsets: [9, 25] },
      },
      data,
    );
    // Shift the whole file by 3 bytes inside a larger buffer.
    const host = new Uint8Array(file.byteLength + 3);
    host.set(file, 3);
    const parsed = parseSafetensors(host.subarray(3), LABEL);
    expect(parsed.tensors.get("u")?.data).toEqual(Int32Array.of(7));
    expect(parsed.tensors.get("f")?.data).toEqual(values);
    expect(parsed.tensors.get("i")?.data).toEqual(Int32Array.of(-3, 9));
  });

  it("returns tensors that do not alias the input bytes", () => {
    const bytes = serializeSafetensors({ t: f32Tensor([2], Float32Array.of(1, 2)) });
    const tensor = parseSafetensors(bytes, LABEL).tensors.get("t");
    bytes.fill(0);
    expect(tensor?.data).toEqual(Float32Array.of(1, 2));
  });

  it("accepts a header padded with trailing spaces", () => {
    const file = buildFile(
      `${JSON.stringify({ t: { dtype: "F32", shape: [], data_offsets: [0, 4] } })}      `,
      4,
    );
    expect(parseSafetensors(file, LABEL).tensors.get("t")?.shape).toEqual([]);
  });

  it("allows zero-size tensors at tensor boundaries and at the end", () => {
    const file = buildFile(
      {
        a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        z0: { dtype: "F32", shape: [0], data_offsets: [0, 0] },
        z8: { dtype: "I64", shape: [0, 3], data_offsets: [8, 8] },
        b: { dtype: "F32", shape: [2], data_offsets: [8, 16] },
        z16: { dtype: "U8", shape: [0], data_offsets: [16, 16] },
      },
      16,
    );
    const tensors = parseSafetensors(file, LABEL).tensors;
    expect([...tensors.keys()].sort()).toEqual(["a", "b", "z0", "z16", "z8"]);
    expect(tensors.get("z8")?.shape).toEqual([0, 3]);
  });

  it("rejects a missing file with a SafetensorsError naming it and the fs reason", async () => {
    const path = join(tmpdir(), "sprig-no-such-file.safetensors");
    const failure = readSafetensors(path);
    await expect(failure).rejects.toBeInstanceOf(SafetensorsError);
    await expect(failure).rejects.toThrow(/sprig-no-such-file\.safetensors.*ENOENT/);
  });
});

describe("malformed input", () => {
  describe("length prefix", () => {
    it("rejects a file shorter than 8 bytes", () => {
      expectParseError(new Uint8Array(0), undefined, "shorter than the 8-byte");
      expectParseError(new Uint8Array(7), undefined, "7 bytes");
    });

    it("rejects a header length of 0", () => {
      expectParseError(withPrefix(0n, "{}"), undefined, "header length is 0");
    });

    it("rejects a header length beyond the end of the file", () => {
      expectParseError(withPrefix(3n, "{}"), undefined, "past the end of the file");
    });

    it("rejects implausibly large header lengths without allocating", () => {
      expectParseError(withPrefix(100_000_001n, "{}"), undefined, "limit");
      expectParseError(withPrefix(2n ** 64n - 1n, "{}"), undefined, "limit");
      expectParseError(withPrefix(2n ** 53n + 1n, "{}"), undefined, "limit");
    });
  });

  describe("header", () => {
    it("rejects invalid UTF-8", () => {
      expectParseError(buildFile(Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d)), undefined, "UTF-8");
    });

    it("rejects invalid JSON", () => {
      expectParseError(buildFile('{"w": {'), undefined, "not valid JSON");
      expectParseError(buildFile("{}\0\0"), undefined, "not valid JSON");
    });

    it("rejects a header that is not a JSON object", () => {
      expectParseError(buildFile("[]"), undefined, "must be a JSON object", "an array");
      expectParseError(buildFile("null"), undefined, "must be a JSON object", "null");
      expectParseError(buildFile("42"), undefined, "must be a JSON object", "a number");
      expectParseError(buildFile('"x"'), undefined, "must be a JSON object", "a string");
    });
  });

  describe("__metadata__", () => {
    it("rejects __metadata__ that is not an object", () => {
      expectParseError(buildFile({ __metadata__: ["a"] }), undefined, "__metadata__", "an array");
      expectParseError(buildFile({ __metadata__: "a" }), undefined, "__metadata__", "a string");
      expectParseError(buildFile({ __metadata__: null }), undefined, "__metadata__", "null");
    });

    it("rejects non-string metadata values", () => {
      expectParseError(
        buildFile({ __metadata__: { a: "ok", b: 1 } }),
        undefined,
        '"b"',
        "a number",
      );
      expectParseError(buildFile({ __metadata__: { c: { d: "e" } } }), undefined, '"c"', "object");
    });
  });

  describe("entries", () => {
    it("rejects an entry that is not an object", () => {
      expectParseError(buildFile({ w: [1, 2] }), "w", "must be an object", "an array");
      expectParseError(buildFile({ w: "F32" }), "w", "must be an object", "a string");
      expectParseError(buildFile({ w: null }), "w", "must be an object", "null");
    });

    it("rejects unexpected fields", () => {
      expectParseError(singleTensor({ data_offset: [0, 16] }), "w", '"data_offset"');
    });

    it("rejects a missing or non-string dtype", () => {
      expectParseError(singleTensor({ dtype: undefined }), "w", 'missing "dtype"');
      expectParseError(singleTensor({ dtype: 4 }), "w", '"dtype" must be a string');
    });

    it.each(["F64", "I8", "I16", "U16", "BOOL", "f32", "f16", "F8_E4M3"])(
      "rejects unsupported dtype %s and lists the supported ones",
      (dtype) => {
        expectParseError(singleTensor({ dtype }), "w", `"${dtype}"`, "F32, I32, I64");
      },
    );

    it("rejects a missing or non-array shape", () => {
      expectParseError(singleTensor({ shape: undefined }), "w", 'missing "shape"');
      expectParseError(singleTensor({ shape: 4 }), "w", '"shape" must be an array');
      expectParseError(singleTensor({ shape: { 0: 2 } }), "w", '"shape" must be an array');
    });

    it.each([[[-1, 4]], [[2.5]], [["2", "2"]], [[null]], [[2 ** 53]]])(
      "rejects invalid shape %j",
      (shape) => {
        expectParseError(singleTensor({ shape }), "w", "non-negative integers");
      },
    );

    it("rejects a shape whose element count is not exactly representable", () => {
      const shape = [2 ** 20, 2 ** 20, 2 ** 20];
      expectParseError(singleTensor({ shape }), "w", "too many elements");
    });

    it("rejects missing or malformed data_offsets", () => {
      expectParseError(singleTensor({ data_offsets: undefined }), "w", 'missing "data_offsets"');
      for (const offsets of [16, [16], [0, 8, 16], [-4, 12], [0, 15.5], ["0", "16"], [0, null]]) {
        expectParseError(singleTensor({ data_offsets: offsets }), "w", "two non-negative integers");
      }
    });

    it("rejects begin > end", () => {
      expectParseError(singleTensor({ data_offsets: [16, 0] }), "w", "begin > end");
    });

    it("rejects offsets outside the data section", () => {
      expectParseError(singleTensor({}, 12), "w", "outside the 12-byte data section");
      expectParseError(
        singleTensor({ data_offsets: [2 ** 40, 2 ** 40 + 16] }),
        "w",
        "[0,1099511627776]",
        "belong to no tensor",
      );
    });

    it("rejects a byte length that does not match dtype and shape", () => {
      expectParseError(singleTensor({ data_offsets: [0, 12] }), "w", "needs 16 bytes", "span 12");
      expectParseError(singleTensor({ dtype: "I64" }), "w", "I64[2,2] needs 32 bytes");
      expectParseError(singleTensor({ shape: [] }), "w", "needs 4 bytes");
    });

    it("rejects overlapping tensors, naming both", () => {
      const file = buildFile(
        {
          a: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
          b: { dtype: "F32", shape: [2], data_offsets: [12, 20] },
        },
        20,
      );
      expectParseError(file, "b", "overlap", 'tensor "a"');
    });

    it("rejects a tensor nested inside another and two tensors sharing a range", () => {
      const nested = buildFile(
        {
          outer: { dtype: "F32", shape: [8], data_offsets: [0, 32] },
          inner: { dtype: "F32", shape: [1], data_offsets: [20, 24] },
        },
        32,
      );
      expectParseError(nested, "inner", "overlap", '"outer"');
      const shared = buildFile(
        {
          x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
          y: { dtype: "I32", shape: [2], data_offsets: [0, 8] },
        },
        8,
      );
      expect(() => parseSafetensors(shared, LABEL)).toThrow(/overlap/);
    });

    it("rejects I64 values outside the int32 range, naming value and index", () => {
      const data = new Uint8Array(BigInt64Array.of(1n, 2147483648n).buffer);
      const file = buildFile({ idx: { dtype: "I64", shape: [2], data_offsets: [0, 16] } }, data);
      expectParseError(file, "idx", "2147483648", "flat index 1", "int32");
      const low = new Uint8Array(BigInt64Array.of(-2147483649n).buffer);
      const lowFile = buildFile({ idx: { dtype: "I64", shape: [], data_offsets: [0, 8] } }, low);
      expectParseError(lowFile, "idx", "-2147483649");
      const huge = new Uint8Array(BigInt64Array.of(-(2n ** 63n)).buffer);
      const hugeFile = buildFile({ idx: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, huge);
      expectParseError(hugeFile, "idx", "-9223372036854775808");
    });
  });

  it("throws only SafetensorsError for arbitrary corruptions of a valid file", () => {
    const valid = serializeSafetensors(sampleTensors(), { format: "pt" });
    const corruption = fc.record({
      truncateTo: fc.nat({ max: valid.byteLength }),
      edits: fc.array(
        fc.tuple(fc.nat({ max: valid.byteLength - 1 }), fc.integer({ min: 0, max: 255 })),
        {
          maxLength: 8,
        },
      ),
    });
    fc.assert(
      fc.property(corruption, ({ truncateTo, edits }) => {
        const bytes = valid.slice(0, truncateTo);
        for (const [position, value] of edits) {
          if (position < bytes.byteLength) bytes[position] = value;
        }
        try {
          parseSafetensors(bytes, LABEL);
        } catch (error) {
          if (!(error instanceof SafetensorsError)) throw error;
          expect(error.message.startsWith(`${LABEL}: `)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("throws only SafetensorsError for arbitrary JSON headers", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat({ max: 64 }), (header, dataBytes) => {
        try {
          parseSafetensors(buildFile(header ?? null, dataBytes), LABEL);
        } catch (error) {
          if (!(error instanceof SafetensorsError)) throw error;
        }
      }),
      { numRuns: 1000 },
    );
  });
});

/** A header written as raw text (to keep duplicate keys and literal spellings). */
function rawHeader(text: string, data: Uint8Array | number = 0): Uint8Array {
  return buildFile(text, data);
}

describe("the reference implementation's rules (see the module comment of safetensors.ts)", () => {
  it("R4: nothing but whitespace after the header object; nesting is bounded", () => {
    expectParseError(rawHeader("{} {}"), undefined, "not valid JSON", "after the value");
    expectParseError(rawHeader(`{"__metadata__": ${"[".repeat(100)}`), undefined, "nested deeper");
    expect(parseSafetensors(rawHeader("{}\t\n  "), LABEL).tensors.size).toBe(0);
  });

  it("R5: a tensor name given twice is refused, naming it", () => {
    const entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    expectParseError(rawHeader(`{"w":${entry},"w":${entry}}`, 4), undefined, 'duplicate key "w"');
  });

  it("R5: a field given twice inside an entry or in __metadata__ is refused", () => {
    const entry = '{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}';
    expectParseError(rawHeader(`{"w":${entry}}`, 4), undefined, 'duplicate key "dtype"');
    expectParseError(
      rawHeader('{"__metadata__":{"a":"1","a":"2"}}'),
      undefined,
      'duplicate key "a"',
    );
  });

  it("R5: keys that are Object.prototype members are plain names", () => {
    const file = rawHeader(
      '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
        '"toString":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      8,
    );
    expect([...parseSafetensors(file, LABEL).tensors.keys()].sort()).toEqual([
      "__proto__",
      "toString",
    ]);
  });

  it.each(["2.0", "2e0", "0.2e1", "-0", "2E+0"])(
    "R9: the shape literal %s is refused although its value is whole",
    (literal) => {
      const file = rawHeader(`{"w":{"dtype":"F32","shape":[${literal}],"data_offsets":[0,8]}}`, 8);
      expectParseError(file, "w", '"shape"', `[${literal}]`, "no fraction, exponent or sign");
    },
  );

  it.each(["[0,8.0]", "[0e0,8]", "[-0,8]"])("R9: data_offsets %s are refused", (offsets) => {
    const file = rawHeader(`{"w":{"dtype":"F32","shape":[2],"data_offsets":${offsets}}}`, 8);
    expectParseError(file, "w", '"data_offsets"', offsets);
  });

  it("R10: a byte length that overflows is refused", () => {
    const shape = [2 ** 26, 2 ** 26];
    expectParseError(singleTensor({ dtype: "I64", shape }), "w", "too many");
  });

  it("R11: bytes between two tensors are refused, naming both ends", () => {
    const file = buildFile(
      {
        a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
        b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
      },
      12,
    );
    expectParseError(file, "b", "bytes [4,8]", "belong to no tensor", '"a"');
  });

  it("R11: bytes before the first tensor are refused", () => {
    const file = buildFile({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, 8);
    expectParseError(file, "a", "bytes [0,4]", "belong to no tensor");
  });

  it("R11: a zero-size tensor inside another tensor's bytes is refused", () => {
    const file = buildFile(
      {
        a: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
        b: { dtype: "F32", shape: [0], data_offsets: [8, 8] },
      },
      16,
    );
    expectParseError(file, "b", "overlap", '"a"');
  });

  it("R12: trailing bytes after the last tensor are refused", () => {
    expectParseError(singleTensor({}, 20), undefined, "bytes [16,20]", "4 trailing bytes");
    expectParseError(buildFile({}, 1), undefined, "1 trailing bytes");
  });

  it("the writer's output satisfies every rule, for every dtype mix", () => {
    const bytes = serializeSafetensors({
      ...Object.fromEntries(sampleTensors()),
      h: { dtype: "F16", shape: [3], data: Uint16Array.of(1, 2, 3) },
      u: { dtype: "U8", shape: [5], data: Uint8Array.of(1, 2, 3, 4, 5) },
    });
    expect(parseSafetensorsFile(bytes, LABEL).tensors.size).toBe(9);
  });
});

describe("reading from disk", () => {
  let directory = "";
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), "sprig-safetensors-read-"));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("refuses a FIFO without blocking, naming it", async () => {
    const fifo = join(directory, "pipe.safetensors");
    execFileSync("mkfifo", [fifo]);
    await expect(readSafetensors(fifo)).rejects.toThrow(/pipe\.safetensors: is a FIFO/);
  });

  it("refuses an endless device and a directory before reading", async () => {
    await expect(readSafetensors("/dev/zero")).rejects.toThrow(/\/dev\/zero: is a device/);
    await expect(readSafetensorsFile(directory)).rejects.toThrow(/is a directory/);
  });

  it("checks a header's sizes against the file before reading its data", async () => {
    // The header claims a 4 GiB tensor; the file holds 16 bytes of data.
    const path = join(directory, "claims.safetensors");
    const header = { w: { dtype: "F32", shape: [2 ** 30], data_offsets: [0, 2 ** 32] } };
    await writeFile(path, buildFile(header, 16));
    await expect(readSafetensors(path)).rejects.toThrow(/lie outside the 16-byte data section/);
  });

  it("refuses a truncated file with the same message as in memory", async () => {
    const bytes = serializeSafetensors(sampleTensors());
    const path = join(directory, "short.safetensors");
    await writeFile(path, bytes.subarray(0, bytes.byteLength - 3));
    const inMemory = (() => {
      try {
        parseSafetensors(bytes.subarray(0, bytes.byteLength - 3), path);
      } catch (error) {
        return (error as Error).message;
      }
      return "";
    })();
    await expect(readSafetensors(path)).rejects.toThrow(inMemory);
    expect(inMemory).toContain(path);
  });

  it("reads what it wrote, tensors in buffers of their own", async () => {
    const path = join(directory, "ok.safetensors");
    await writeSafetensors(path, sampleTensors());
    const tensors = (await readSafetensors(path)).tensors;
    expectSameTensors(tensors, sampleTensors());
    const buffers = new Set([...tensors.values()].map((t) => t.data.buffer));
    expect(buffers.size).toBe(tensors.size);
  });
});

describe("writeSafetensors", () => {
  let directory = "";

  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), "sprig-safetensors-"));
  });

  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("writes a file that reads back identically", async () => {
    const path = join(directory, "model.safetensors");
    const tensors = sampleTensors();
    await writeSafetensors(path, tensors, { step: "3" });
    const file = await readSafetensors(path);
    expectSameTensors(file.tensors, tensors);
    expect(file.metadata).toEqual({ step: "3" });
    expect(new Uint8Array(await readFile(path))).toEqual(
      serializeSafetensors(tensors, { step: "3" }),
    );
    expect(await readdir(directory)).toEqual(["model.safetensors"]);
  });

  it("replaces an existing file", async () => {
    const path = join(directory, "model.safetensors");
    await writeFile(path, "old contents");
    await writeSafetensors(path, { t: f32Tensor([1], Float32Array.of(9)) });
    const file = await readSafetensors(path);
    expect(file.tensors.get("t")?.data).toEqual(Float32Array.of(9));
    expect(await readdir(directory)).toEqual(["model.safetensors"]);
  });

  it("rejects writing into a missing directory and creates nothing", async () => {
    const path = join(directory, "missing", "model.safetensors");
    await expect(writeSafetensors(path, sampleTensors())).rejects.toThrow(/ENOENT/);
    expect(await readdir(directory)).toEqual([]);
  });

  it("removes the temporary file when the final rename fails", async () => {
    // A non-empty directory at the target path makes rename fail after the data is written.
    const path = join(directory, "model.safetensors");
    await mkdir(path);
    await writeFile(join(path, "keep"), "x");
    await expect(writeSafetensors(path, sampleTensors())).rejects.toThrow();
    expect(await readdir(directory)).toEqual(["model.safetensors"]);
    expect(await readdir(path)).toEqual(["keep"]);
  });

  it("rejects invalid tensors before touching the disk, leaving the old file intact", async () => {
    const path = join(directory, "model.safetensors");
    await writeFile(path, "old contents");
    const bad = { dtype: "f32", shape: [3], data: new Float32Array(2) } as HostTensor;
    const failure = writeSafetensors(path, { bad });
    await expect(failure).rejects.toBeInstanceOf(SafetensorsError);
    await expect(failure).rejects.toThrow(`${path}: tensor "bad"`);
    expect(await readFile(path, "utf8")).toBe("old contents");
    expect(await readdir(directory)).toEqual(["model.safetensors"]);
  });
});

describe("F16, BF16 and U8", () => {
  /** float16 bits to their value from the definition, in float64 arithmetic. */
  function float16Value(bits: number): number {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const mantissa = bits & 0x3ff;
    if (exponent === 0x1f) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
    if (exponent === 0) return sign * mantissa * 2 ** -24;
    return sign * 2 ** (exponent - 15) * (1 + mantissa / 1024);
  }

  const allHalfBits = Uint16Array.from({ length: 1 << 16 }, (_, i) => i);
  const fileTensors = (): Map<string, FileTensor | HostTensor> =>
    new Map<string, FileTensor | HostTensor>([
      ["half", { dtype: "F16", shape: [256, 256], data: allHalfBits }],
      ["brain", { dtype: "BF16", shape: [3], data: Uint16Array.of(0x3f80, 0xc000, 0x7f80) }],
      ["bytes", { dtype: "U8", shape: [5], data: Uint8Array.of(0, 1, 127, 128, 255) }],
      ["odd.half", { dtype: "F16", shape: [1], data: Uint16Array.of(0x3c00) }],
      ["empty.u8", { dtype: "U8", shape: [0], data: new Uint8Array(0) }],
      ...sampleTensors(),
    ]);

  it("round-trips F16 / BF16 bit patterns and U8 bytes exactly", () => {
    const file = parseSafetensorsFile(serializeSafetensors(fileTensors()), LABEL);
    for (const [name, tensor] of fileTensors()) {
      const got = file.tensors.get(name);
      expect(got?.dtype, name).toBe(tensor.dtype);
      expect(got?.shape, name).toEqual(tensor.shape);
      expect(got?.data, name).toEqual(tensor.data);
    }
  });

  it("widens F16 and BF16 exactly to f32 and U8 to i32 for HostTensors", () => {
    const host = parseSafetensors(serializeSafetensors(fileTensors()), LABEL).tensors;
    const half = host.get("half")!;
    expect(half.dtype).toBe("f32");
    const wrong = [...allHalfBits].filter((bits) => {
      const expected = float16Value(bits);
      const got = half.data[bits]!;
      return Number.isNaN(expected) ? !Number.isNaN(got) : !Object.is(got, expected);
    });
    expect(wrong).toEqual([]);
    expect(host.get("brain")).toEqual(
      f32Tensor([3], Float32Array.of(1, -2, Number.POSITIVE_INFINITY)),
    );
    expect(host.get("bytes")).toEqual(i32Tensor([5], Int32Array.of(0, 1, 127, 128, 255)));
    expectSameTensors(
      new Map([...host].filter(([name]) => sampleTensors().has(name))),
      sampleTensors(),
    );
  });

  it("lays the data out by element size, largest first, aligned and without gaps", () => {
    const file = serializeSafetensors(fileTensors());
    const header = JSON.parse(headerText(file)) as Record<
      string,
      { dtype: string; data_offsets: [number, number] }
    >;
    const sizes: Record<string, number> = { I64: 8, F32: 4, F16: 2, BF16: 2, U8: 1 };
    const spans = Object.values(header).sort((a, b) => a.data_offsets[0] - b.data_offsets[0]);
    let end = 0;
    for (const {
      dtype,
      data_offsets: [begin, stop],
    } of spans) {
      expect(begin).toBe(end);
      expect(begin % sizes[dtype]!).toBe(0);
      end = stop;
    }
    expect(spans.map((span) => span.dtype)).toEqual(
      [...spans.map((span) => span.dtype)].sort((a, b) => sizes[b]! - sizes[a]!),
    );
    expect(header.half?.dtype).toBe("F16");
    expect(header.brain?.dtype).toBe("BF16");
    expect(header.bytes?.dtype).toBe("U8");
  });

  it("reads the U8 frames of v1_video_preprocess as stored and as i32", async () => {
    const raw = new Uint8Array(await readFile(CONFORMANCE_V1));
    const headerLength = Number(new DataView(raw.buffer).getBigUint64(0, true));
    const header = JSON.parse(
      new TextDecoder().decode(raw.subarray(8, 8 + headerLength)),
    ) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    const entry = header["input.frames_u8.t4"]!;
    expect(entry.dtype).toBe("U8");
    const [begin, end] = entry.data_offsets;
    const expectedBytes = raw.subarray(8 + headerLength + begin, 8 + headerLength + end);

    const exact = (await readSafetensorsFile(CONFORMANCE_V1)).tensors.get("input.frames_u8.t4");
    expect(exact?.dtype).toBe("U8");
    expect(exact?.shape).toEqual([4, 3, 72, 96]);
    expect(exact?.data).toEqual(expectedBytes);

    const host = (await readSafetensors(CONFORMANCE_V1)).tensors;
    const frames = host.get("input.frames_u8.t4")!;
    expect(frames.dtype).toBe("i32");
    expect(frames.data).toEqual(Int32Array.from(expectedBytes));
    // The other tensors of the file keep their dtypes.
    expect(host.get("expected.pixel_values.t4.res64")?.dtype).toBe("f32");
    expect(host.get("expected.frame_indices.t4")?.data).toEqual(Int32Array.of(7, 22, 37, 52));
  });

  it("keeps the byte length check for the new dtypes", () => {
    expectParseError(
      buildFile({ h: { dtype: "F16", shape: [3], data_offsets: [0, 8] } }, 8),
      "h",
      "F16[3] needs 6 bytes",
    );
    expectParseError(
      buildFile({ b: { dtype: "U8", shape: [2, 2], data_offsets: [0, 3] } }, 3),
      "b",
      "U8[2,2] needs 4 bytes",
    );
  });

  it("rejects FileTensors with the wrong array type, shape or dtype", () => {
    const write = (tensor: unknown) => () => serializeSafetensors({ t: tensor as FileTensor });
    expect(write({ dtype: "F16", shape: [2], data: new Float32Array(2) })).toThrow(/Uint16Array/);
    expect(write({ dtype: "U8", shape: [2], data: new Uint16Array(2) })).toThrow(/Uint8Array/);
    expect(write({ dtype: "F16", shape: [3], data: new Uint16Array(2) })).toThrow(/needs 3 values/);
    expect(write({ dtype: "F64", shape: [1], data: new Float64Array(1) })).toThrow(
      /cannot write dtype "F64"/,
    );
    expect(write({ dtype: "F16", shape: [2], data: new Float32Array(2) })).toThrow(
      SafetensorsError,
    );
  });
});
