/**
 * The checkpoint reader on checkpoints written here opcode by opcode (see
 * checkpoint-builder.ts): the view arithmetic on hand-computed cases, where the state_dict
 * may sit, and the views, storages and files it must refuse.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckpointError } from "../../src/io/checkpoint-error.js";
import { ALLOWED_GLOBAL_NAMES, loadPickle } from "../../src/io/pickle.js";
import { mapTensors } from "../../src/io/pickle-tree.js";
import { omegaconfToJson, toPlainJson } from "../../src/io/pickle-json.js";
import {
  findStateDict,
  parseTorchCheckpoint,
  parseTorchStateDict,
  readTorchCheckpoint,
  torchTensorToHost,
} from "../../src/io/torch-checkpoint.js";
import {
  checkpointZip,
  float32Bytes,
  int64Bytes,
  PickleWriter,
  stateDictPickle,
  type ViewSpec,
} from "./checkpoint-builder.js";

const FILE = "crafted.pth";
/** Storage "0": the floats 0, 1, ..., 11. */
const TWELVE = float32Bytes(Array.from({ length: 12 }, (_, i) => i));

function checkpoint(
  views: Record<string, ViewSpec>,
  storages = new Map([["0", TWELVE]]),
  key: string | null = "model",
) {
  return checkpointZip(stateDictPickle(new Map(Object.entries(views)), key), storages);
}

const view = (shape: number[], stride: number[], offset = 0, numel = 12): ViewSpec => ({
  storageKey: "0",
  numel,
  offset,
  shape,
  stride,
});

function values(bytes: Uint8Array, name = "w"): number[] {
  const tensor = parseTorchStateDict(bytes, FILE).tensors.get(name)!;
  expect(tensor.dtype).toBe("f32");
  return [...(tensor.data as Float32Array)];
}

function expectError(run: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(CheckpointError);
  for (const fragment of fragments) expect((caught as Error).message).toContain(fragment);
}

describe("views, computed by hand", () => {
  it("element (i, j) is storage[offset + i·stride0 + j·stride1]", () => {
    // [[0,1,2,3],[4,5,6,7],[8,9,10,11]] transposed: shape [4, 3], stride [1, 4].
    expect(values(checkpoint({ w: view([4, 3], [1, 4]) }))).toEqual([
      0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11,
    ]);
    // Every other element from 1: 1, 3, 5, 7.
    expect(values(checkpoint({ w: view([4], [2], 1) }))).toEqual([1, 3, 5, 7]);
    // A [2, 2] window at offset 5 of the [3, 4] matrix: rows 1-2, columns 1-2.
    expect(values(checkpoint({ w: view([2, 2], [4, 1], 5) }))).toEqual([5, 6, 9, 10]);
    // A broadcast (stride 0) row, as expand() makes.
    expect(values(checkpoint({ w: view([2, 3], [0, 1], 3) }))).toEqual([3, 4, 5, 3, 4, 5]);
  });

  it("reads 0-d and empty tensors", () => {
    const bytes = checkpoint({ scalar: view([], [], 7), empty: view([0, 5], [5, 1], 12) });
    const tensors = parseTorchStateDict(bytes, FILE).tensors;
    expect(tensors.get("scalar")!.shape).toEqual([]);
    expect([...(tensors.get("scalar")!.data as Float32Array)]).toEqual([7]);
    expect(tensors.get("empty")!.shape).toEqual([0, 5]);
    expect(tensors.get("empty")!.data.length).toBe(0);
  });

  it("shares one tensor between identical views (tied weights) and slices a fused storage", () => {
    const bytes = checkpoint({
      a: view([12], [1]),
      tied: view([12], [1]),
      first: view([6], [1]),
      second: view([6], [1], 6),
    });
    const tensors = parseTorchStateDict(bytes, FILE).tensors;
    expect(tensors.get("tied")).toBe(tensors.get("a"));
    expect([...(tensors.get("second")!.data as Float32Array)]).toEqual([6, 7, 8, 9, 10, 11]);
  });

  it("reads int64 storages and narrows them to int32 with a range check", () => {
    const storages = new Map([["0", int64Bytes([-1n, 2n ** 31n - 1n, -(2n ** 31n), 2n ** 31n])]]);
    const longs = (shape: number[], offset = 0): ViewSpec => ({
      ...view(shape, [1], offset, 4),
      storageType: "LongStorage",
    });
    const ok = parseTorchStateDict(checkpoint({ w: longs([3]) }, storages), FILE);
    const tensor = ok.tensors.get("w")!;
    expect(tensor.dtype).toBe("i64");
    expect(torchTensorToHost(tensor, FILE, "w").data).toEqual(
      Int32Array.of(-1, 2 ** 31 - 1, -(2 ** 31)),
    );
    const big = parseTorchStateDict(checkpoint({ w: longs([1], 3) }, storages), FILE).tensors.get(
      "w",
    )!;
    expectError(
      () => torchTensorToHost(big, FILE, "w"),
      `${FILE}: tensor "w"`,
      "2147483648",
      "int32 range",
    );
  });
});

describe("where the state_dict is", () => {
  it("finds it at top level, under model or under state_dict", () => {
    for (const key of [null, "model", "state_dict"]) {
      const found = findStateDict(
        parseTorchCheckpoint(checkpoint({ w: view([12], [1]) }, undefined, key), FILE),
      );
      expect(found.location).toBe(key ?? "top level");
      expect([...found.tensors.keys()]).toEqual(["w"]);
    }
  });

  it("says what it found when there is none", () => {
    const bytes = checkpoint({ w: view([12], [1]) }, undefined, "weights");
    expectError(
      () => parseTorchStateDict(bytes, FILE),
      "no state_dict",
      'top-level keys: "weights"',
    );
  });

  it("keeps non-plain entries out of the metadata and lists them", () => {
    const writer = new PickleWriter().emptyDict();
    writer.str("model").global("collections", "OrderedDict").emptyTuple().reduce().str("w");
    writer.global("torch._utils", "_rebuild_tensor_v2").mark().mark().str("storage");
    writer.global("torch", "FloatStorage").str("0").str("cpu").int(12).tuple().persistentId();
    writer.int(0).intTuple([12]).intTuple([1]).bool(false);
    writer
      .global("collections", "OrderedDict")
      .emptyTuple()
      .reduce()
      .tuple()
      .reduce()
      .setItem()
      .setItem();
    writer.str("dtype_name").global("typing", "Any").setItem();
    writer.str("epoch").int(7).setItem();
    const found = parseTorchStateDict(
      checkpointZip(writer.finish(), new Map([["0", TWELVE]])),
      FILE,
    );
    expect(found.metadata).toEqual({ epoch: 7 });
    expect(found.skipped).toEqual(["dtype_name"]);
  });
});

describe("what the reader refuses", () => {
  it("refuses a view reaching past its storage, naming the tensor", () => {
    expectError(
      () => parseTorchStateDict(checkpoint({ w: view([4, 3], [3, 1], 1) }), FILE),
      `${FILE}: tensor "w"`,
      "reaches element 12, past the storage's 12 elements",
    );
    expectError(
      () => parseTorchStateDict(checkpoint({ w: view([0], [1], 13) }), FILE),
      "starts past the storage",
    );
    expectError(
      () => parseTorchStateDict(checkpoint({ w: view([2 ** 20, 2 ** 20], [1, 1]) }), FILE),
      "reaches element",
    );
  });

  it("refuses many overlapping views that would copy more than the file holds", () => {
    // Storage of 4096 floats; 400 distinct one-element-shifted views of 4000 elements
    // would copy 6.4 MB out of a file of about 50 kB.
    const storage = float32Bytes(new Array(4096).fill(1));
    const views: Record<string, ViewSpec> = {};
    for (let i = 0; i < 400; i++) views[`v${i}`] = view([4000], [1], 1 + (i % 96), 4096);
    const bytes = checkpoint(views, new Map([["0", storage]]));
    expectError(() => parseTorchStateDict(bytes, FILE), "file-size budget", "overlapping views");
  });

  it("refuses storages referenced with two different types", () => {
    const bytes = checkpoint({
      a: view([12], [1]),
      b: { ...view([6], [1], 0, 6), storageType: "LongStorage" },
    });
    expectError(
      () => parseTorchStateDict(bytes, FILE),
      'storage "0" is referenced as i64[6] and as f32[12]',
    );
  });

  it("refuses what is not a checkpoint, and what is not a regular file", async () => {
    const safetensors = fileURLToPath(
      new URL(
        "../../../shared/conformance/inputs/v1_video_preprocess.safetensors",
        import.meta.url,
      ),
    );
    await expect(readTorchCheckpoint(safetensors)).rejects.toThrow(/not a PyTorch checkpoint/);
    await expect(readTorchCheckpoint(tmpdir())).rejects.toThrow(
      /is a directory, not a regular file/,
    );
    await expect(readTorchCheckpoint(join(tmpdir(), "sprig-missing.pth"))).rejects.toThrow(
      /sprig-missing\.pth: cannot read file \(ENOENT\)/,
    );
    await expect(readTorchCheckpoint("/dev/zero")).rejects.toBeInstanceOf(CheckpointError);
    await expect(readTorchCheckpoint("/dev/zero")).rejects.toThrow(
      /is a device, not a regular file/,
    );
  });
});

describe("files written to disk", () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "sprig-checkpoint-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("reads a crafted checkpoint from a file like from memory", async () => {
    const path = join(directory, "model.pth");
    await writeFile(path, checkpoint({ w: view([4, 3], [1, 4]) }));
    const tensor = findStateDict(await readTorchCheckpoint(path)).tensors.get("w")!;
    expect([...(tensor.data as Float32Array)]).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
  });
});

describe("object graphs", () => {
  it("walks nesting far deeper than the JS stack without recursion", () => {
    const depth = 200_000;
    // ] x depth, then APPEND x (depth - 1): each list inside the one before.
    const data = new Uint8Array(2 + 2 * depth);
    data.set([0x80, 2]);
    data.fill(0x5d, 2, 2 + depth);
    data.fill(0x61, 2 + depth, 1 + 2 * depth);
    data[1 + 2 * depth] = 0x2e;
    const { value } = loadPickle(data, { file: FILE });
    const mapped = mapTensors(value, () => null);
    expect(Array.isArray(mapped)).toBe(true);
    // Too deep for JSON metadata: left out, not a crash.
    expect(toPlainJson(value)).toBeUndefined();
  });

  it("bounds JSON conversion of a shared-subtree graph (2^40 paths)", () => {
    // l0 = []; l(k+1) = [l(k), l(k)], all appended to one outer list as they are made:
    // 41 lists, 2^40 leaves when expanded.
    const writer = new PickleWriter().emptyList().emptyList().put(0).append();
    for (let k = 1; k <= 40; k++) {
      writer
        .emptyList()
        .get(k - 1)
        .append()
        .get(k - 1)
        .append()
        .put(k)
        .append();
    }
    const { value } = loadPickle(writer.finish(), { file: FILE });
    const start = performance.now();
    expect(toPlainJson(value)).toBeUndefined();
    expect(mapTensors(value, () => null)).toBeDefined();
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it("turns cycles into 'not plain data', and omegaconf needs an omegaconf object", () => {
    const cyclic = loadPickle(Uint8Array.of(0x80, 2, 0x5d, 0x71, 0, 0x68, 0, 0x61, 0x2e), {
      file: FILE,
    }).value;
    expect(toPlainJson(cyclic)).toBeUndefined();
    expect(omegaconfToJson([1])).toBeUndefined();
  });
});

describe("the allow-list", () => {
  it("holds every global of the real checkpoints and none of the malicious ones", async () => {
    const specPath = fileURLToPath(
      new URL("../../../shared/conformance/inputs/checkpoints.json", import.meta.url),
    );
    const spec = JSON.parse(
      await (await import("node:fs/promises")).readFile(specPath, "utf8"),
    ) as {
      files: Record<string, { globals: { module: string; name: string }[] }>;
    };
    for (const [file, { globals }] of Object.entries(spec.files)) {
      for (const { module, name } of globals) {
        const allowed = ALLOWED_GLOBAL_NAMES.includes(`${module}.${name}`);
        expect(allowed, `${file}: ${module}.${name}`).toBe(!file.startsWith("malicious"));
      }
    }
  });
});
