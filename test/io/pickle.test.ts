/**
 * The pickle machine: CPython-written pickles decode to the right values, the malicious
 * conformance checkpoints are refused at the forbidden global's lookup (so nothing they
 * name is ever called), and malformed streams fail with PickleError at the right byte.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { bytesSource } from "../../src/io/byte-source.js";
import {
  CheckpointError,
  ForbiddenGlobalError,
  PickleError,
  PickleTruncatedError,
} from "../../src/io/checkpoint-error.js";
import {
  loadPickle,
  PickleDict,
  PickleGlobal,
  type PickleObject,
  PickleTuple,
  type PickleValue,
  StorageRef,
  TensorRecipe,
} from "../../src/io/pickle.js";
import { readTorchCheckpoint } from "../../src/io/torch-checkpoint.js";
import { readZipArchive } from "../../src/io/zip.js";

const inputPath = (name: string) =>
  fileURLToPath(new URL(`../../../shared/conformance/inputs/${name}`, import.meta.url));

const FILE = "test.pkl";
const hex = (text: string) =>
  Uint8Array.from(text.match(/../g)!.map((pair) => Number.parseInt(pair, 16)));
const bytes = (...parts: (string | number[])[]) =>
  Uint8Array.from(
    parts.flatMap((part) => (typeof part === "string" ? [...Buffer.from(part, "latin1")] : part)),
  );

function load(data: Uint8Array): PickleValue {
  return loadPickle(data, { file: FILE }).value;
}

/** Runs a pickle and returns the opcodes that ran, and the error it stopped with. */
function traced(data: Uint8Array): { ran: string[]; error: unknown } {
  const ran: string[] = [];
  try {
    loadPickle(data, { file: FILE, trace: (opcode) => ran.push(opcode) });
  } catch (error) {
    return { ran, error };
  }
  return { ran, error: undefined };
}

function expectPickleError(
  data: Uint8Array,
  offset: number,
  opcode: string,
  ...fragments: string[]
): PickleError {
  let caught: unknown;
  try {
    load(data);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(PickleError);
  const error = caught as PickleError;
  expect(error.offset).toBe(offset);
  expect(error.opcode).toBe(opcode);
  expect(error.message).toContain(`${FILE}: pickle opcode ${opcode} at byte ${offset}`);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
  return error;
}

/** The data.pkl record of a conformance zip checkpoint. */
function dataPickle(name: string): Uint8Array {
  const archive = readZipArchive(bytesSource(readFileSync(inputPath(name))), name);
  const entry = [...archive.entries.values()].find((e) => e.name.endsWith("/data.pkl"))!;
  return archive.read(entry);
}

describe("values from CPython pickles", () => {
  // pickle.dumps({'a': [1, -2, 3.5, True, None, 'é', (1, 2), 2**70, -2**63, 65535, -1,
  // 100000], 'b': (), 'c': {}, 'd': b'xy'}, protocol=4), from CPython 3.
  const PROTOCOL_4 =
    "80049560000000000000007d94288c0161945d94284b014afeffffff47400c000000000000884e8c02c3a9944b" +
    "014b0286948a090000000000000000408a0800000000000000804dffff4affffffff4aa0860100658c016294" +
    "298c0163947d948c0164944302787994752e";

  it("decodes protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE, LONG1, BINFLOAT, ...)", () => {
    const value = load(hex(PROTOCOL_4));
    expect(value).toBeInstanceOf(PickleDict);
    const dict = value as PickleDict;
    expect([...dict.items.keys()]).toEqual(["a", "b", "c", "d"]);
    expect(dict.items.get("a")).toEqual([
      1,
      -2,
      3.5,
      true,
      null,
      "é",
      new PickleTuple([1, 2]),
      2n ** 70n,
      -(2n ** 63n),
      65535,
      -1,
      100000,
    ]);
    expect(dict.items.get("b")).toEqual(new PickleTuple([]));
    expect(dict.items.get("c")).toEqual(new PickleDict("dict"));
    expect(dict.items.get("d")).toEqual(Uint8Array.of(0x78, 0x79));
  });

  it("keeps shared references shared and cycles cyclic (BINPUT / BINGET)", () => {
    // l = [1]; pickle.dumps([l, l], protocol=2)
    const shared = load(hex("80025d7100285d71014b01616801652e")) as PickleValue[][];
    expect(shared[0]).toBe(shared[1]);
    expect(shared[0]).toEqual([1]);
    // a = []; a.append(a); pickle.dumps(a, protocol=2)
    const cyclic = load(hex("80025d71006800612e")) as PickleValue[];
    expect(cyclic[0]).toBe(cyclic);
  });

  it("keeps an OrderedDict's attributes set by BUILD (a state_dict's _metadata)", () => {
    // od = OrderedDict([('w', 1)]); od._metadata = {'': {'version': 1}}; protocol 2
    const od = load(
      hex(
        "800263636f6c6c656374696f6e730a4f726465726564446963740a71002952710158010000007771024b0173" +
          "7d710358090000005f6d6574616461746171047d7105580000000071067d7107580700000076657273696f6e" +
          "71084b01737373622e",
      ),
    ) as PickleDict;
    expect(od.pythonType).toBe("OrderedDict");
    expect([...od.items]).toEqual([["w", 1]]);
    const metadata = od.attributes?.get("_metadata") as PickleDict;
    expect((metadata.items.get("") as PickleDict).items.get("version")).toBe(1);
  });

  it("decodes LONG1 as little-endian two's complement (the legacy magic number too)", () => {
    expect(load(bytes([0x80, 2, 0x8a, 1, 0xff], "."))).toBe(-1);
    expect(load(bytes([0x80, 2, 0x8a, 2, 0x00, 0x80], "."))).toBe(-32768);
    expect(load(bytes([0x80, 2, 0x8a, 0], "."))).toBe(0);
    const magic = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
    expect(load(bytes([0x80, 2, 0x8a, 10, ...magic], "."))).toBe(0x1950a86a20f9469cfc6cn);
  });

  it("builds tensor recipes from torch's persistent ids and _rebuild_tensor_v2", () => {
    const value = load(dataPickle("k1_checkpoint_fp16.pth")) as PickleDict;
    const model = value.items.get("model") as PickleDict;
    expect(model.pythonType).toBe("OrderedDict");
    const bias = model.items.get("vision_proj.bias") as TensorRecipe;
    expect(bias).toBeInstanceOf(TensorRecipe);
    expect([bias.storageOffset, bias.shape, bias.stride, bias.requiresGrad]).toEqual([
      1,
      [32],
      [2],
      false,
    ]);
    expect(bias.storage).toEqual(new StorageRef("f16", "153", "cpu", 67));
    const config = value.items.get("config") as PickleObject;
    expect(config.className).toBe("omegaconf.dictconfig.DictConfig");
  });
});

describe("the malicious checkpoints", () => {
  it.each([
    [
      "malicious.pth",
      "posix.system",
      "GLOBAL",
      13,
      ["PROTO", "EMPTY_DICT", "BINUNICODE", "GLOBAL"],
    ],
    [
      "malicious_stack_global.pth",
      "builtins.eval",
      "STACK_GLOBAL",
      26,
      [
        "PROTO",
        "EMPTY_DICT",
        "SHORT_BINUNICODE",
        "SHORT_BINUNICODE",
        "SHORT_BINUNICODE",
        "STACK_GLOBAL",
      ],
    ],
  ])(
    "%s is refused at the lookup of %s, before REDUCE runs",
    async (file, global, opcode, offset, ran) => {
      const path = inputPath(file);
      const error = await readTorchCheckpoint(path).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(ForbiddenGlobalError);
      const forbidden = error as ForbiddenGlobalError;
      expect(forbidden.globalName).toBe(global);
      expect(forbidden.message).toContain(`${path}: record "${file.replace(".pth", "")}/data.pkl"`);
      expect(forbidden.message).toContain(`global ${global} is not allowed`);
      expect([forbidden.opcode, forbidden.offset]).toEqual([opcode, offset]);

      // The trace shows the machine stopped at the lookup: the REDUCE that would call the
      // global (the pickle's next opcodes) never ran, and no value for it was pushed.
      const trace = traced(dataPickle(file));
      expect(trace.error).toBeInstanceOf(ForbiddenGlobalError);
      expect(trace.ran).toEqual(ran);
      expect(trace.ran).not.toContain("REDUCE");
    },
  );

  it("refuses a forbidden global that is only named, never called", () => {
    const named = bytes([0x80, 2], "cposix\nsystem\n.");
    const { ran, error } = traced(named);
    expect(error).toBeInstanceOf(ForbiddenGlobalError);
    expect(ran).toEqual(["PROTO", "GLOBAL"]);
  });

  it.each([
    ["__builtin__", "getattr"],
    ["builtins", "exec"],
    ["os", "system"],
    ["_codecs", "encode"], // how protocol 2 spells bytes; checkpoints hold none
    ["torch", "_utils._rebuild_tensor_v2"], // allowed only as module torch._utils
    ["collections.OrderedDict", ""],
    ["torch._utils", "_rebuild_parameter"],
    ["torch", "ByteStorage"],
    ["omegaconf.nodes", "StringNode"],
  ])("refuses %s.%s", (module, name) => {
    const error = expectPickleError(
      bytes([0x80, 2], `c${module}\n${name}\n.`),
      2,
      "GLOBAL",
      `global ${module}.${name}`,
    );
    expect(error).toBeInstanceOf(ForbiddenGlobalError);
    const stacked = bytes(
      [0x80, 4, 0x8c, module.length],
      module,
      [0x8c, name.length],
      name,
      [0x93],
      ".",
    );
    expect(() => load(stacked)).toThrow(ForbiddenGlobalError);
  });

  it("never calls a global that is allowed only as a value", () => {
    expectPickleError(
      bytes([0x80, 2], "c__builtin__\ndict\n)R."),
      21,
      "REDUCE",
      "may appear as a value but not be called",
    );
    expectPickleError(bytes([0x80, 2], "ctyping\nAny\n)R."), 15, "REDUCE", "not be called");
    expectPickleError(bytes([0x80, 2], "ctorch\nFloatStorage\n)R."), 23, "REDUCE", "not be called");
  });

  it("calls allowed callables only with the arguments torch writes", () => {
    expectPickleError(
      bytes([0x80, 2], "ccollections\nOrderedDict\n]\x85R."),
      29,
      "REDUCE",
      "takes no arguments",
    );
    expectPickleError(
      bytes([0x80, 2], "ccollections\ndefaultdict\nc__builtin__\nlist\n\x85R."),
      46,
      "REDUCE",
      "(dict,)",
    );
    expectPickleError(
      bytes([0x80, 2], "ctorch._utils\n_rebuild_tensor_v2\n)R."),
      36,
      "REDUCE",
      "6 or 7 arguments",
    );
    expectPickleError(
      bytes([0x80, 2], "ccollections\nOrderedDict\n)\x81."),
      28,
      "NEWOBJ",
      "omegaconf",
    );
    expectPickleError(
      bytes([0x80, 2], "comegaconf.nodes\nAnyNode\n)R."),
      28,
      "REDUCE",
      "not be called",
    );
  });

  it("produces data only: no function anywhere in a real checkpoint's object", () => {
    const seen = new Set<unknown>();
    const work: unknown[] = [load(dataPickle("k1_checkpoint_fp16.pth"))];
    while (work.length > 0) {
      const value = work.pop();
      expect(typeof value).not.toBe("function");
      if (typeof value !== "object" || value === null || seen.has(value)) continue;
      seen.add(value);
      if (value instanceof PickleGlobal) {
        expect(Object.keys(value).sort()).toEqual(["kind", "qualifiedName", "role"]);
      }
      if (value instanceof PickleDict) work.push(...value.items.keys(), ...value.items.values());
      else if (!(value instanceof Uint8Array)) work.push(...Object.values(value));
    }
    expect(seen.size).toBeGreaterThan(500);
  });
});

describe("malformed streams", () => {
  it("names an unknown opcode and its offset", () => {
    expectPickleError(bytes([0x80, 2, 0xff]), 2, "0xff", "unknown or unsupported opcode");
    // Protocol 0's PUT is not implemented: torch never writes it.
    expectPickleError(bytes([0x80, 2, 0x4e], "p0\n."), 3, "0x70 'p'");
  });

  it("refuses length prefixes past the end without allocating them", () => {
    const huge = expectPickleError(
      bytes([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0xff], "abc"),
      2,
      "BINUNICODE",
      "needs 4294967295 more bytes",
    );
    expect(huge).toBeInstanceOf(PickleTruncatedError);
    expectPickleError(
      bytes([0x80, 4, 0x95, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "N."),
      2,
      "FRAME",
    );
    expectPickleError(
      bytes([0x80, 2, 0x42, 0, 0, 0, 0x80]),
      2,
      "BINBYTES",
      "needs 2147483648 more bytes",
    );
    expectPickleError(bytes([0x80, 2, 0x8a, 9, 1, 2]), 2, "LONG1");
    expectPickleError(bytes([0x80, 2], "cposix"), 2, "GLOBAL");
    expectPickleError(bytes([0x80, 2, 0x4e]), 3, "(end of data)");
  });

  it("refuses stack and memo misuse", () => {
    expectPickleError(bytes([0x80, 2], "a."), 2, "APPEND", "pops an empty stack");
    expectPickleError(bytes([0x80, 2], "](a."), 4, "APPEND", "pops past a MARK");
    expectPickleError(bytes([0x80, 2], "]e."), 3, "APPENDS", "no MARK");
    expectPickleError(bytes([0x80, 2], "h\x05."), 2, "BINGET", "memo entry 5 was never stored");
    expectPickleError(bytes([0x80, 2], "q\x00."), 2, "BINPUT", "empty stack");
    expectPickleError(bytes([0x80, 2], "NN."), 4, "STOP", "stack holds 2 values");
    expectPickleError(bytes([0x80, 2], "(N."), 4, "STOP", "MARK(s) still open");
    expectPickleError(bytes([0x80, 2], "."), 2, "STOP", "stack holds 0 values");
    expectPickleError(bytes([0x80, 2], "NNa."), 4, "APPEND", "must be a list");
    expectPickleError(bytes([0x80, 2], "}(K\x01u."), 6, "SETITEMS", "odd number");
    expectPickleError(bytes([0x80, 2], "}))s."), 5, "SETITEM", "dict key");
    expectPickleError(bytes([0x80, 9], "N."), 0, "PROTO", "protocol 9");
  });

  it("refuses persistent ids that are not torch storages", () => {
    expectPickleError(bytes([0x80, 2], "NQ."), 3, "BINPERSID", "must be a tuple");
    expectPickleError(bytes([0x80, 2], "(X\x01\x00\x00\x00xtQ."), 10, "BINPERSID", "'storage'");
    const pid = (extra: string) =>
      bytes(
        [0x80, 2],
        "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04",
        extra,
        "tQ.",
      );
    expect(load(pid(""))).toEqual(new StorageRef("f32", "0", "cpu", 4));
    expect(load(pid("N"))).toEqual(new StorageRef("f32", "0", "cpu", 4));
    expect(() => load(pid("K\x01"))).toThrow(/storage views/);
  });

  it("is a CheckpointError (hence a SprigError) naming the file and pickle", () => {
    let caught: unknown;
    try {
      loadPickle(bytes([0x80, 2, 0xff]), { file: "a.pth", place: 'record "a/data.pkl"' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CheckpointError);
    expect((caught as Error).message).toBe(
      'a.pth: record "a/data.pkl": pickle opcode 0xff at byte 2: unknown or unsupported opcode',
    );
  });
});
