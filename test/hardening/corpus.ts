/**
 * The hardening corpus: malformed configs, flags and files for every command, generated
 * here (nothing is hand-copied). Each entry is one `sprig` invocation that must be refused
 * with exactly one stderr line starting "sprig: " that names the field or file (every
 * string in `mentions`), exit status 1, no stack trace, nothing left in its directory
 * beyond the files it started with, in under 5 s and 1 GiB (corpus.test.ts runs and checks
 * them).
 *
 * An entry runs in a fresh directory of its own; "$DIR" in its arguments and mentions
 * stands for that directory, and `files` are created there first. To add an entry, add it
 * to one of the generators below (or write a new generator and list it in `corpus()`):
 * give it a unique name, the command, the argv after `sprig`, its files and what the error
 * line must name.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { f32Tensor } from "../../src/ir/tensor.js";
import { parseSafetensors, serializeSafetensors } from "../../src/io/safetensors.js";
import { MODELS, type ModelName } from "../../src/models/index.js";
import { SHARED } from "../support/cli.js";
import { K1_CONFIG } from "../support/k1.js";

export const COMMANDS = [
  "run",
  "retrieve",
  "embed",
  "convert",
  "preprocess",
  "report",
  "compile",
  "verify",
  "export",
  "emit",
  "bench",
] as const;
export type CommandName = (typeof COMMANDS)[number];

/** A file an entry starts with. */
export type FileSpec =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "bytes"; readonly bytes: Uint8Array }
  | { readonly kind: "copy"; readonly from: string }
  | { readonly kind: "fifo" }
  | { readonly kind: "dir" }
  /** A file of `size` bytes whose data was never written (a sparse file: ftruncate). */
  | { readonly kind: "sparse"; readonly size: number };

export interface CorpusEntry {
  readonly name: string;
  readonly command: CommandName;
  /** argv after `sprig`; "$DIR" is the entry's directory. */
  readonly args: readonly string[];
  /** Files created in $DIR before the run, by relative path (parents first). */
  readonly files?: Readonly<Record<string, FileSpec>>;
  /** Strings the one error line must contain ("$DIR" expanded). */
  readonly mentions: readonly string[];
}

const INPUTS = join(SHARED, "conformance/inputs");
const CONFORMANCE = join(SHARED, "conformance");
const A1 = "a1_selfattn_dense_rpb";

const text = (value: string): FileSpec => ({ kind: "text", text: value });
const bytes = (value: Uint8Array): FileSpec => ({ kind: "bytes", bytes: value });
const json = (value: unknown): FileSpec => text(JSON.stringify(value));
const FIFO: FileSpec = { kind: "fifo" };
const DIRECTORY: FileSpec = { kind: "dir" };
const K1_JSON = json(K1_CONFIG);

/** JSON text of `value` with extra own keys (so "__proto__" stays a key) at `path`. */
function withKey(value: unknown, path: readonly string[], key: string, extra: unknown): string {
  const clone = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  let node: Record<string, unknown> = clone;
  for (const part of path) node = node[part] as Record<string, unknown>;
  Object.defineProperty(node, key, { value: extra, enumerable: true, writable: true });
  return JSON.stringify(clone);
}

/** The value at a dotted path replaced (a partial config holding only that path). */
function partial(path: string, value: unknown): string {
  const keys = path.split(".");
  let out: unknown = value;
  for (const key of keys.reverse()) {
    const node: Record<string, unknown> = {};
    Object.defineProperty(node, key, { value: out, enumerable: true, writable: true });
    out = node;
  }
  return JSON.stringify(out);
}

// ---- config files: every field kind of every model -----------------------------------------

/** Fields whose numbers are real (everything else numeric is an integer). */
const REAL_FIELDS = /(?:layerNormEps|keepRate)$/;

type Leaf =
  | { readonly kind: "int" | "real" | "bool" | "choice" | "list"; readonly path: string }
  | { readonly kind: "object" | "nullable"; readonly path: string };

/** Nullable parts: null switches them off (README, config files). */
const NULLABLE = /(?:sparsity\.attention|sparsity\.tokens|crossModal)$/;

function leaves(value: unknown, path: string[] = []): Leaf[] {
  const here = path.join(".");
  if (value === null) return [{ kind: "nullable", path: here }];
  if (Array.isArray(value)) return [{ kind: "list", path: here }];
  if (typeof value === "object") {
    const inner = Object.entries(value as Record<string, unknown>).flatMap(([k, v]) =>
      leaves(v, [...path, k]),
    );
    if (path.length === 0) return inner;
    return [{ kind: NULLABLE.test(here) ? "nullable" : "object", path: here }, ...inner];
  }
  if (typeof value === "boolean") return [{ kind: "bool", path: here }];
  if (typeof value === "string") return [{ kind: "choice", path: here }];
  return [{ kind: REAL_FIELDS.test(here) ? "real" : "int", path: here }];
}

/** Wrong values for each field kind, each with a short label. */
const BAD_VALUES: Readonly<Record<Leaf["kind"], readonly (readonly [string, unknown])[]>> = {
  int: [
    ["a string of digits", "8"],
    ["a fraction", 2.5],
    ["null", null],
    ["a boolean", true],
    ["out of range (-1)", -1],
  ],
  real: [
    ["a string of digits", "0.5"],
    ["null", null],
    ["out of range (-1)", -1],
  ],
  bool: [
    ['the string "no"', "no"],
    ['the string "true"', "true"],
    ["0", 0],
    ["null", null],
  ],
  choice: [
    ["an unknown name", "sideways"],
    ["a number", 3],
    ["null", null],
  ],
  list: [
    ["a number", 3],
    ["null", null],
    ["a list of strings", ["3"]],
    ["a list with a fraction", [3.5]],
  ],
  object: [
    ["null (cannot be off)", null],
    ["a list", []],
    ["a string", "x"],
  ],
  nullable: [
    ["a list", []],
    ["a number", 5],
  ],
};

/** Which command and model flag reach a model's config: report for all four. */
function modelArgs(model: ModelName): string[] {
  return model === "vision" ? [] : ["--model", model];
}

/** The models' configs: every leaf of vision and text in full, the others' own fields. */
function configFieldEntries(): CorpusEntry[] {
  const entries: CorpusEntry[] = [];
  const plan: [ModelName, (leaf: Leaf) => boolean][] = [
    ["vision", () => true],
    ["text", () => true],
    ["fusion", (leaf) => !leaf.path.startsWith("text")],
    [
      "retrieval",
      (leaf) => !/^(?:vision\.|text\.)/.test(leaf.path) || leaf.path === "vision.frames",
    ],
  ];
  for (const [model, wanted] of plan) {
    const preset = MODELS[model].preset({ frames: 8, variant: "svitt" });
    for (const leaf of leaves(preset).filter(wanted)) {
      const values =
        model === "vision" || model === "text"
          ? BAD_VALUES[leaf.kind]
          : BAD_VALUES[leaf.kind].slice(0, 2);
      for (const [label, value] of values) {
        entries.push({
          name: `report --model ${model}: config ${leaf.path} is ${label}`,
          command: "report",
          args: ["report", ...modelArgs(model), "--config", "$DIR/config.json"],
          files: { "config.json": text(partial(leaf.path, value)) },
          mentions: [`"${leaf.path}"`],
        });
      }
    }
  }
  return entries;
}

/** Keys that are members of every object: they must read as unknown fields, not as known. */
const OWN_PROPERTY_NAMES = ["toString", "__proto__", "constructor", "valueOf", "hasOwnProperty"];

function unknownKeyEntries(): CorpusEntry[] {
  const entries: CorpusEntry[] = [];
  const levels: [ModelName, string[]][] = [
    ["vision", []],
    ["vision", ["model"]],
    ["vision", ["sparsity"]],
    ["vision", ["sparsity", "attention"]],
    ["vision", ["sparsity", "tokens"]],
    ["text", ["text"]],
    ["retrieval", ["vision", "sparsity"]],
  ];
  for (const [model, path] of levels) {
    const preset = MODELS[model].preset({ frames: 8, variant: "svitt" });
    const keys =
      path.length === 0 ? [...OWN_PROPERTY_NAMES, "framez"] : OWN_PROPERTY_NAMES.slice(0, 3);
    for (const key of keys) {
      const field = [...path, key].join(".");
      entries.push({
        name: `report --model ${model}: config has unknown key ${field}`,
        command: "report",
        args: ["report", ...modelArgs(model), "--config", "$DIR/config.json"],
        files: { "config.json": text(withKey(preset, path, key, 1)) },
        mentions: [`"${field}"`, "unknown field"],
      });
    }
  }
  return entries;
}

/** Relations between fields (checked after the types). */
function crossFieldEntries(): CorpusEntry[] {
  const cases: [string, string, unknown, string][] = [
    ["hidden size not divisible by heads", "model", { hiddenSize: 770 }, "model.hiddenSize"],
    ["patch size not dividing the image", "model", { patchSize: 15 }, "model.patchSize"],
    [
      "relative position bias with 2 CLS tokens",
      "model",
      { numClsTokens: 2 },
      "model.numClsTokens",
    ],
    ["an even local window", "sparsity.attention", { local: 2 }, "sparsity.attention.local"],
    [
      "more random blocks than blocks",
      "sparsity.attention",
      { random: 99 },
      "sparsity.attention.random",
    ],
    ["no key blocks at all", "sparsity.attention", { local: 0, random: 0 }, "sparsity.attention"],
    [
      "a drop after a missing layer",
      "sparsity.tokens",
      { dropAfter: [12] },
      "sparsity.tokens.dropAfter",
    ],
    [
      "a drop layer listed twice",
      "sparsity.tokens",
      { dropAfter: [3, 3] },
      "sparsity.tokens.dropAfter",
    ],
  ];
  const entries: CorpusEntry[] = cases.map(([label, at, value, field]) => ({
    name: `report: config with ${label}`,
    command: "report" as const,
    args: ["report", "--config", "$DIR/config.json"],
    files: { "config.json": text(partial(at, value)) },
    mentions: [`"${field}"`],
  }));
  entries.push(
    {
      name: "report --model text: fusion layer after the last layer",
      command: "report",
      args: ["report", "--model", "text", "--config", "$DIR/config.json"],
      files: { "config.json": text(partial("text.fusionLayer", 13)) },
      mentions: ["text.fusionLayer"],
    },
    {
      name: "report: --keep-rate for a config that switches token drops off",
      command: "report",
      args: ["report", "--config", "$DIR/config.json", "--keep-rate", "0"],
      files: { "config.json": text(partial("sparsity.tokens", null)) },
      mentions: ['"sparsity.tokens.keepRate"'],
    },
    {
      name: "report: --pattern naming no library pattern",
      command: "report",
      args: ["report", "--pattern", "sideways"],
      mentions: ['"sparsity.attention.pattern"', "sideways", "known patterns"],
    },
    {
      name: "report: --pattern with a parameter of the wrong shape",
      command: "report",
      args: ["report", "--pattern", "window3d:3x7"],
      mentions: ['"sparsity.attention.pattern"', "kernel", "AxBxC"],
    },
    {
      name: "report: config pattern with an unknown parameter",
      command: "report",
      args: ["report", "--config", "$DIR/config.json"],
      files: { "config.json": text(partial("sparsity.attention", { pattern: "window:size=3" })) },
      mentions: ['"sparsity.attention.pattern"', "unknown parameter", "size"],
    },
    {
      name: "report: config pattern that is not a string",
      command: "report",
      args: ["report", "--config", "$DIR/config.json"],
      files: { "config.json": text(partial("sparsity.attention", { pattern: 3 })) },
      mentions: ['"sparsity.attention.pattern"'],
    },
    {
      name: "report: --block-size for a config that switches block sparsity off",
      command: "report",
      args: ["report", "--config", "$DIR/config.json", "--block-size", "32"],
      files: { "config.json": text(partial("sparsity.attention", null)) },
      mentions: ["sparsity.attention", "off"],
    },
  );
  return entries;
}

// ---- flags ------------------------------------------------------------------------------------

/** Malformed text for each flag kind. */
const BAD_FLAG_TEXT = {
  int: ["0x10", "1.5", "1e3", "abc", ""],
  number: ["0x1", "abc", "NaN", "1,5"],
  intList: ["3,x", "3.5", "0x3"],
  choice: ["sideways"],
  text: [""],
  switch: [],
} as const;

function flagEntries(): CorpusEntry[] {
  const entries: CorpusEntry[] = [];
  const seen = new Set<string>();
  for (const model of ["vision", "text", "fusion", "retrieval"] as const) {
    for (const flag of MODELS[model].flags) {
      const key = `${flag.flag}:${flag.path}`;
      if (
        seen.has(key) ||
        (model === "retrieval" &&
          !flag.path.startsWith("vision.batch") &&
          flag.path.startsWith("vision."))
      )
        continue;
      seen.add(key);
      const texts =
        model === "vision" ? BAD_FLAG_TEXT[flag.kind] : BAD_FLAG_TEXT[flag.kind].slice(0, 2);
      for (const value of texts) {
        entries.push({
          name: `report --model ${model} ${flag.flag} ${JSON.stringify(value)}`,
          command: "report",
          args: ["report", ...modelArgs(model), flag.flag, value],
          mentions: [`"${flag.path}"`, flag.flag],
        });
      }
    }
  }
  const outOfRange: [string, string, string][] = [
    ["--frames", "0", "frames"],
    ["--frames", "4097", "frames"],
    ["--batch", "99999", "batch"],
    ["--seed", "4294967296", "sparsity.attention.seed"],
    ["--seed", "-1", "sparsity.attention.seed"],
    ["--keep-rate", "1e-400", "sparsity.tokens.keepRate"],
    ["--keep-rate", "1.5", "sparsity.tokens.keepRate"],
    ["--layers", "0", "model.numLayers"],
    ["--drop-after", "3,99", "sparsity.tokens.dropAfter"],
    ["--local", "2", "sparsity.attention.local"],
    ["--random", "99", "sparsity.attention.random"],
  ];
  for (const [flag, value, field] of outOfRange) {
    entries.push({
      name: `report ${flag} ${value} (out of range)`,
      command: "report",
      args: ["report", flag, value],
      mentions: [`"${field}"`],
    });
  }
  entries.push(
    {
      name: "report --model text --frames 4 (a flag of another model)",
      command: "report",
      args: ["report", "--model", "text", "--frames", "4"],
      mentions: ["--frames", "does not apply"],
    },
    {
      name: "report --model fusion --dense (no vision encoder)",
      command: "report",
      args: ["report", "--model", "fusion", "--dense"],
      mentions: ["--dense", "does not apply"],
    },
    {
      name: "report --model nope",
      command: "report",
      args: ["report", "--model", "nope"],
      mentions: ['"model"', "nope"],
    },
  );
  return entries;
}

/** Every command's own options. */
function commandOptionEntries(): CorpusEntry[] {
  const e = (
    command: CommandName,
    args: string[],
    mentions: string[],
    files?: Record<string, FileSpec>,
  ): CorpusEntry => ({
    name: `${args.join(" ")}`,
    command,
    args,
    mentions,
    ...(files === undefined ? {} : { files }),
  });
  return [
    e("run", ["run", "--reps", "0x5"], ['"reps"', "--reps"]),
    e("run", ["run", "--reps", "0"], ['"reps"', "[1, 100000]"]),
    e("run", ["run", "--warmup", "-1"], ['"warmup"', "[0, 100000]"]),
    e("run", ["run", "--threads", "0"], ['"threads"']),
    e("run", ["run", "--threads", "1.5"], ['"threads"']),
    e("run", ["run", "--kernels", "maybe"], ['"kernels"']),
    e("run", ["run", "--backend", "nope"], ['"nope"', "known backends"]),
    e("run", ["run", "--max-memory", "lots"], ['"maxMemory"', "--max-memory"]),
    e("run", ["run", "--max-memory", "1e9"], ['"maxMemory"']),
    e("run", ["run", "--max-memory", "10"], ['"maxMemory"', "1MiB"]),
    e("run", ["run", "--vocab", "$DIR/vocab.txt"], ['"vocab"', "--captions"]),
    e("run", ["run", "--model", "fusion", "--video", "$DIR/clip.mp4"], ['"video"', "fusion"]),
    e("run", ["run", "--captions", "$DIR/c.txt"], ['"captions"', "vision"]),
    e("bench", ["bench", "--op", "softmax"], ['"op"', "softmax"]),
    e("bench", ["bench", "--op", "attention", "--frames", "0x8"], ['"frames"', "--frames"]),
    e("bench", ["bench", "--op", "attention", "--frames", "8.0"], ['"frames"', "--frames"]),
    e("bench", ["bench", "--op", "attention", "--frames", "0"], ['"frames"']),
    e("bench", ["bench", "--op", "attention", "--frames", "5000"], ['"frames"']),
    e("bench", ["bench", "--op", "attention", "--reps", "1.5"], ['"reps"']),
    e("bench", ["bench", "--op", "attention", "--threads", "0x2"], ['"threads"']),
    e("bench", ["bench", "--op", "attention", "--kernels", "fast"], ['"kernels"']),
    e("bench", ["bench", "--op", "attention", "--max-memory", "-1GiB"], ['"maxMemory"']),
    e("export", ["export", "--onnx", "$DIR/m.onnx", "--weight-seed", "-1"], ['"weightSeed"']),
    e("export", ["export", "--onnx", "$DIR/m.onnx", "--weight-seed", "0x1"], ['"weightSeed"']),
    e(
      "export",
      ["export", "--onnx", "$DIR/m.onnx", "--weight-seed", "4294967296"],
      ['"weightSeed"'],
    ),
    e(
      "export",
      ["export", "$DIR/a.json", "--config", "$DIR/b.json", "--onnx", "$DIR/m.onnx"],
      ["two config files"],
    ),
    e("retrieve", ["retrieve", "--k", "0"], ['"k"', "--k"]),
    e("retrieve", ["retrieve", "--k", "1.5"], ['"k"']),
    e("retrieve", ["retrieve", "--pairs-per-batch", "0x8"], ['"pairsPerBatch"']),
    e("retrieve", ["retrieve", "--pairs-per-batch", "5000"], ['"pairsPerBatch"']),
    e("retrieve", ["retrieve", "--synthetic", "0"], ['"synthetic"']),
    e("retrieve", ["retrieve", "--synthetic", "5000"], ['"synthetic"']),
    e("retrieve", ["retrieve", "--threads", "0"], ['"threads"']),
    e("retrieve", ["retrieve", "--kernels", "fast"], ['"kernels"']),
    e("retrieve", ["retrieve", "--texts", "0x2"], ['"texts"']),
    e(
      "retrieve",
      ["retrieve", "$DIR/clip.mp4", "--synthetic", "2"],
      ['"synthetic"', "video files"],
      { "clip.mp4": { kind: "copy", from: join(INPUTS, "clip.mp4") } },
    ),
    e("embed", ["embed", "--out", "$DIR/e.safetensors", "--synthetic", "1e2"], ['"synthetic"']),
    e("embed", ["embed", "--out", "$DIR/e.safetensors", "--video-batch", "0"], ['"vision.batch"']),
    e(
      "preprocess",
      ["preprocess", "$DIR/v.mp4", "--frames", "0", "--out", "$DIR/p.st"],
      ['"frames"'],
    ),
    e(
      "preprocess",
      ["preprocess", "$DIR/v.mp4", "--frames", "0x3", "--out", "$DIR/p.st"],
      ['"frames"', "--frames"],
    ),
    e(
      "preprocess",
      ["preprocess", "$DIR/v.mp4", "--frames", "1025", "--out", "$DIR/p.st"],
      ['"frames"', "1024"],
    ),
    e(
      "preprocess",
      ["preprocess", "$DIR/v.mp4", "--frames", "4", "--image-size", "4097", "--out", "$DIR/p.st"],
      ['"imageSize"', "--image-size"],
    ),
    e(
      "preprocess",
      ["preprocess", "$DIR/v.mp4", "--frames", "4", "--image-size", "1.5", "--out", "$DIR/p.st"],
      ['"imageSize"'],
    ),
    e("convert", ["convert", "$DIR/c.pth", "--out", "$DIR/o.st", "--dtype", "f64"], ['"dtype"']),
    e("convert", ["convert", "$DIR/c.pth", "--out", "$DIR/o.st", "--model", "fusion"], ['"model"']),
    e("verify", ["verify", CONFORMANCE, "--backend", "nope"], ['"nope"']),
    e("emit", ["emit", "--out", "$DIR/m", "--max-memory", "8 parsecs"], ['"maxMemory"']),
    e("compile", ["compile", "--frames", "0x4"], ['"frames"']),
  ];
}

// ---- sizes and memory: refused before anything is allocated ---------------------------------

function resourceEntries(): CorpusEntry[] {
  const big = (model: unknown) => json({ model });
  return [
    {
      name: "run --frames 4000 (a tensor over 2^31 elements)",
      command: "run",
      args: ["run", "--frames", "4000"],
      mentions: ["4000 frames", "2^31"],
    },
    {
      name: "report --frames 4000",
      command: "report",
      args: ["report", "--frames", "4000"],
      mentions: ["4000 frames", "2^31"],
    },
    {
      name: "compile: 65536-px images in 1-px patches",
      command: "compile",
      args: ["compile", "--frames", "1", "--config", "$DIR/big.json"],
      files: { "big.json": big({ imageSize: 65536, patchSize: 1 }) },
      mentions: ['"model.imageSize"', "2^31"],
    },
    {
      name: "report: 4096-px images in 4-px patches",
      command: "report",
      args: ["report", "--frames", "1", "--config", "$DIR/big.json"],
      files: { "big.json": big({ imageSize: 4096, patchSize: 4 }) },
      mentions: ["too large", "2^31"],
    },
    {
      name: "export: a 65536 x 262144 layer",
      command: "export",
      args: ["export", "$DIR/big.json", "--onnx", "$DIR/m.onnx"],
      files: { "big.json": big({ hiddenSize: 65536, intermediateSize: 262144, numHeads: 64 }) },
      mentions: ["too large", "2^31"],
    },
    {
      name: "run: 200 layers need more than 2GiB",
      command: "run",
      args: ["run", "--frames", "1", "--layers", "200", "--max-memory", "2GiB"],
      mentions: ["needs an estimated", "--max-memory 2GiB"],
    },
    {
      name: "run --dense --frames 512 (dense attention scores)",
      command: "run",
      args: ["run", "--dense", "--frames", "512"],
      mentions: ["512 frames", "attention score matrix"],
    },
    {
      name: "run: a block of 100000 tokens",
      command: "run",
      args: ["run", "--frames", "64", "--block-size", "100000", "--random", "0"],
      mentions: ["attention score matrix", "2^31"],
    },
    {
      name: "run --batch 4096 (a tensor over 2^31 elements)",
      command: "run",
      args: ["run", "--batch", "4096", "--frames", "1"],
      mentions: ["batch 4096", "2^31"],
    },
    {
      name: "run --batch 1024 --max-memory 2GiB",
      command: "run",
      args: ["run", "--batch", "1024", "--frames", "1", "--max-memory", "2GiB"],
      mentions: ["batch 1024 needs an estimated", "--max-memory 2GiB"],
    },
    {
      name: "run --frames 64 --max-memory 256MiB",
      command: "run",
      args: ["run", "--frames", "64", "--max-memory", "256MiB"],
      mentions: ["64 frames needs an estimated", "--max-memory 256MiB"],
    },
    {
      name: "emit --frames 64 --max-memory 100MiB",
      command: "emit",
      args: ["emit", "--frames", "64", "--out", "$DIR/module", "--max-memory", "100MiB"],
      mentions: ["needs an estimated", "--max-memory 100MiB"],
    },
    {
      name: "export --max-memory 200MiB (weights and the ONNX copy)",
      command: "export",
      args: ["export", "--onnx", "$DIR/m.onnx", "--max-memory", "200MiB"],
      mentions: ["the ONNX model as built", "--max-memory 200MiB"],
    },
    {
      name: "bench --frames 64 (dense scores over 2^31)",
      command: "bench",
      args: ["bench", "--op", "attention", "--frames", "64"],
      mentions: ["dense attention layer at 64 frames", "2^31"],
    },
    {
      name: "bench --frames 4000 (as run: a tensor over 2^31)",
      command: "bench",
      args: ["bench", "--op", "attention", "--frames", "4000"],
      mentions: ["4000 frames", "2^31"],
    },
    {
      name: "bench --frames 16 --max-memory 64MiB",
      command: "bench",
      args: ["bench", "--op", "attention", "--frames", "16", "--max-memory", "64MiB"],
      mentions: ["attention layer at 16 frames", "--max-memory 64MiB"],
    },
    {
      name: "retrieve --synthetic 4096 --max-memory 4GiB (the clips)",
      command: "retrieve",
      args: ["retrieve", "--synthetic", "4096", "--max-memory", "4GiB"],
      mentions: ["4096 synthetic clips", "--max-memory 4GiB"],
    },
    {
      name: "embed --max-memory 100MiB",
      command: "embed",
      args: ["embed", "--out", "$DIR/e.safetensors", "--max-memory", "100MiB"],
      mentions: ["retrieval model", "--max-memory 100MiB"],
    },
    {
      name: "retrieve --frames 4000",
      command: "retrieve",
      args: ["retrieve", "--frames", "4000"],
      mentions: ["4000 frames", "2^31"],
    },
  ];
}

// ---- files ---------------------------------------------------------------------------------

/** A safetensors image from a raw header text and data bytes. */
function safetensorsBytes(header: string, data = 0): Uint8Array {
  const head = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + head.byteLength + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.byteLength), true);
  out.set(head, 8);
  return out;
}

/** A header `{"?":1}` whose key is the byte 0xFF, which is no UTF-8. */
function notUtf8Header(): Uint8Array {
  const file = safetensorsBytes('{"x":1}');
  file[10] = 0xff;
  return file;
}

const F32_1 = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';

/** Safetensors files the format's reference implementation refuses (safetensors.ts R1-R12). */
function badSafetensors(): [string, Uint8Array, string][] {
  const valid = serializeSafetensors({ w: f32Tensor([2], Float32Array.of(1, 2)) });
  return [
    ["shorter than 8 bytes", Uint8Array.of(1, 2, 3), "shorter than the 8-byte"],
    ["a header length past the end", valid.subarray(0, 12), "past the end"],
    ["a zero header length", new Uint8Array(16), "header length is 0"],
    ["a header that is not UTF-8", notUtf8Header(), "UTF-8"],
    ["a header that is a list", safetensorsBytes("[]"), "must be a JSON object"],
    [
      "a duplicate tensor name",
      safetensorsBytes(`{"w":${F32_1},"w":${F32_1}}`, 4),
      'duplicate key "w"',
    ],
    [
      "a float literal in a shape",
      safetensorsBytes('{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', 4),
      "[1.0]",
    ],
    ["bytes no tensor covers", safetensorsBytes(`{"w":${F32_1}}`, 8), "trailing bytes"],
    [
      "a gap between tensors",
      safetensorsBytes(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}',
        12,
      ),
      "belong to no tensor",
    ],
    [
      "overlapping tensors",
      safetensorsBytes(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        8,
      ),
      "overlap",
    ],
    ["a truncated data section", valid.subarray(0, valid.byteLength - 2), "data section"],
    [
      "an unknown dtype",
      safetensorsBytes('{"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}', 8),
      "F64",
    ],
  ];
}

/**
 * Special and broken files every file-taking option is given: a label, the file (null: it
 * does not exist) and what the message must say besides the path ("" for nothing more).
 */
function specialFiles(): [string, FileSpec | null, string][] {
  const garbage = Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff);
  return [
    ["missing", null, "ENOENT"],
    ["a FIFO", FIFO, "FIFO"],
    ["a directory", DIRECTORY, "directory"],
    ["empty", text(""), ""],
    ["garbage", bytes(garbage), ""],
  ];
}

/** The files of an entry: `base`, plus `name` unless the file is meant to be missing. */
function withFile(
  base: Record<string, FileSpec>,
  name: string,
  spec: FileSpec | null,
): Record<string, FileSpec> {
  return spec === null ? { ...base } : { ...base, [name]: spec };
}

/** Mentions: the path, and what is wrong where that is known. */
function naming(path: string, what: string): string[] {
  return what === "" ? [path] : [path, what];
}

function fileEntries(): CorpusEntry[] {
  const entries: CorpusEntry[] = [];
  const add = (
    command: CommandName,
    label: string,
    args: string[],
    files: Record<string, FileSpec>,
    mentions: string[],
  ) => entries.push({ name: `${command}: ${label}`, command, args, files, mentions });
  const k1 = { "k1.json": K1_JSON };
  const tiny = ["--dense", "--frames", "1", "--layers", "1"];

  // --config: every model-compiling command reads it through the same path
  const configCommands: [CommandName, string[]][] = [
    ["report", ["report"]],
    ["compile", ["compile"]],
    ["run", ["run"]],
    ["export", ["export", "--onnx", "$DIR/m.onnx"]],
    ["emit", ["emit", "--out", "$DIR/module"]],
    ["retrieve", ["retrieve"]],
    ["embed", ["embed", "--out", "$DIR/e.safetensors"]],
    ["convert", ["convert", `${INPUTS}/k1_checkpoint.pth`, "--out", "$DIR/o.safetensors"]],
  ];
  for (const [command, base] of configCommands) {
    const kinds = specialFiles().slice(0, command === "report" ? 5 : 3);
    for (const [label, spec, what] of kinds) {
      const args = [...base, "--config", "$DIR/config.json"];
      add(
        command,
        `--config ${label}`,
        args,
        withFile({}, "config.json", spec),
        naming("$DIR/config.json", what),
      );
    }
  }
  const config = (label: string, spec: FileSpec, what: string) =>
    add(
      "report",
      `--config ${label}`,
      ["report", "--config", "$DIR/config.json"],
      { "config.json": spec },
      naming("$DIR/config.json", what),
    );
  config("of 65 MiB", { kind: "sparse", size: 65 * 2 ** 20 }, "bytes");
  config("invalid JSON", text('{"frames": 4,'), "not valid JSON");
  config("a JSON list", text("[1]"), "JSON object");
  config("JSON null", text("null"), "JSON object");
  config("not UTF-8", bytes(Uint8Array.of(0x7b, 0xff, 0x7d)), "UTF-8");
  add("report", "--config /dev/zero", ["report", "--config", "/dev/zero"], {}, [
    "/dev/zero",
    "device",
  ]);

  // --weights: safetensors or .pth, for every command that loads weights
  const weightCommands: [CommandName, string[], Record<string, FileSpec>][] = [
    ["run", ["run", ...tiny], {}],
    ["export", ["export", ...tiny, "--onnx", "$DIR/m.onnx"], {}],
    ["retrieve", ["retrieve", "--config", "$DIR/k1.json"], k1],
    ["embed", ["embed", "--config", "$DIR/k1.json", "--out", "$DIR/e.safetensors"], k1],
  ];
  const checkpoint = readFileSync(join(INPUTS, "k1_checkpoint.pth"));
  for (const [command, base, files] of weightCommands) {
    for (const [label, spec, what] of specialFiles()) {
      add(
        command,
        `--weights ${label}`,
        [...base, "--weights", "$DIR/w.safetensors"],
        withFile(files, "w.safetensors", spec),
        naming("$DIR/w.safetensors", what),
      );
    }
    add(command, "--weights /dev/zero", [...base, "--weights", "/dev/zero"], files, [
      "/dev/zero",
      "device",
    ]);
    add(
      command,
      "--weights a truncated .pth",
      [...base, "--weights", "$DIR/w.pth"],
      { ...files, "w.pth": bytes(checkpoint.subarray(0, 4000)) },
      ["$DIR/w.pth"],
    );
    add(
      command,
      "--weights a malicious .pth",
      [...base, "--weights", "$DIR/evil.pth"],
      { ...files, "evil.pth": { kind: "copy", from: join(INPUTS, "malicious.pth") } },
      ["$DIR/evil.pth"],
    );
  }
  for (const [label, data, what] of badSafetensors()) {
    add(
      "run",
      `--weights safetensors with ${label}`,
      ["run", ...tiny, "--weights", "$DIR/w.safetensors"],
      { "w.safetensors": bytes(data) },
      ["$DIR/w.safetensors", what],
    );
  }
  const stranger = serializeSafetensors({ unrelated: f32Tensor([2], Float32Array.of(1, 2)) });
  add(
    "run",
    "--weights that hold no weight of the model",
    ["run", ...tiny, "--weights", "$DIR/w.safetensors"],
    { "w.safetensors": bytes(stranger) },
    ["$DIR/w.safetensors"],
  );

  // convert CHECKPOINT
  const convert = (
    label: string,
    path: string,
    files: Record<string, FileSpec>,
    mentions: string[],
  ) =>
    add(
      "convert",
      label,
      ["convert", path, "--config", "$DIR/k1.json", "--out", "$DIR/o.safetensors"],
      { ...k1, ...files },
      mentions,
    );
  for (const [label, spec, what] of specialFiles()) {
    convert(
      `checkpoint ${label}`,
      "$DIR/c.pth",
      withFile({}, "c.pth", spec),
      naming("$DIR/c.pth", what),
    );
  }
  convert("checkpoint /dev/zero", "/dev/zero", {}, ["/dev/zero"]);
  convert(
    "checkpoint truncated",
    "$DIR/c.pth",
    { "c.pth": bytes(checkpoint.subarray(0, 100_000)) },
    ["$DIR/c.pth"],
  );
  for (const evil of ["malicious.pth", "malicious_stack_global.pth"]) {
    convert(
      `checkpoint ${evil}`,
      "$DIR/c.pth",
      { "c.pth": { kind: "copy", from: join(INPUTS, evil) } },
      ["$DIR/c.pth"],
    );
  }
  add(
    "convert",
    "a checkpoint of another architecture",
    ["convert", `${INPUTS}/k1_checkpoint.pth`, "--out", "$DIR/o.safetensors"],
    {},
    ["k1_checkpoint.pth", "--config"],
  );

  // videos: run --video, preprocess VIDEO, retrieve VIDEOS
  const videoCommands: [CommandName, (path: string) => string[], Record<string, FileSpec>][] = [
    ["run", (p) => ["run", ...tiny, "--video", p], {}],
    ["preprocess", (p) => ["preprocess", p, "--frames", "4", "--out", "$DIR/p.safetensors"], {}],
    ["retrieve", (p) => ["retrieve", p, "--config", "$DIR/k1.json"], k1],
  ];
  const clip = readFileSync(join(INPUTS, "clip.mp4"));
  for (const [command, argsOf, files] of videoCommands) {
    for (const [label, spec, what] of specialFiles()) {
      // a directory is a folder of frames (preprocess, run) or of videos (retrieve): below
      if (label === "a directory") continue;
      // src/inputs/video.ts says "neither a file nor a directory", without the kind
      const named = what === "ENOENT" || (what === "FIFO" && command !== "retrieve") ? "" : what;
      add(
        command,
        `video ${label}`,
        argsOf("$DIR/v.mp4"),
        withFile(files, "v.mp4", spec),
        naming("$DIR/v.mp4", named),
      );
    }
    add(command, "video /dev/zero", argsOf("/dev/zero"), files, ["/dev/zero"]);
    add(
      command,
      "a truncated video",
      argsOf("$DIR/v.mp4"),
      { ...files, "v.mp4": bytes(clip.subarray(0, 2000)) },
      ["$DIR/v.mp4"],
    );
  }
  add(
    "retrieve",
    "a folder with no videos",
    ["retrieve", "$DIR/videos", "--config", "$DIR/k1.json"],
    { ...k1, videos: DIRECTORY, "videos/notes.txt": text("x") },
    ["$DIR/videos", "no videos"],
  );
  add(
    "preprocess",
    "an empty folder of frames",
    ["preprocess", "$DIR/frames", "--frames", "2", "--out", "$DIR/p.safetensors"],
    { frames: DIRECTORY },
    ["$DIR/frames"],
  );
  add(
    "run",
    "--video an empty folder of frames",
    ["run", ...tiny, "--video", "$DIR/frames"],
    { frames: DIRECTORY },
    ["$DIR/frames"],
  );

  // --captions and --vocab (run, retrieve, embed), --gt (retrieve)
  const textCommands: [CommandName, string[], Record<string, FileSpec>][] = [
    ["run", ["run", "--model", "text"], {}],
    ["retrieve", ["retrieve", "--config", "$DIR/k1.json"], k1],
    ["embed", ["embed", "--config", "$DIR/k1.json", "--out", "$DIR/e.safetensors"], k1],
  ];
  const captions = { "c.txt": text("a dog runs\n") };
  for (const [command, base, files] of textCommands) {
    for (const [label, spec, what] of specialFiles().slice(0, 4)) {
      add(
        command,
        `--captions ${label}`,
        [...base, "--captions", "$DIR/c.txt"],
        withFile(files, "c.txt", spec),
        naming("$DIR/c.txt", what),
      );
    }
    add(
      command,
      "--captions not UTF-8",
      [...base, "--captions", "$DIR/c.txt"],
      { ...files, "c.txt": bytes(Uint8Array.of(0x61, 0xff, 0x0a)) },
      ["$DIR/c.txt", "UTF-8"],
    );
    add(command, "--captions /dev/zero", [...base, "--captions", "/dev/zero"], files, [
      "/dev/zero",
    ]);
    add(
      command,
      "--captions JSON of the wrong shape",
      [...base, "--captions", "$DIR/c.json"],
      { ...files, "c.json": json([{ text: 5 }]) },
      ["$DIR/c.json"],
    );
    for (const [label, spec, what] of specialFiles().slice(0, 4)) {
      add(
        command,
        `--vocab ${label}`,
        [...base, "--captions", "$DIR/c.txt", "--vocab", "$DIR/vocab.txt"],
        withFile({ ...files, ...captions }, "vocab.txt", spec),
        naming("$DIR/vocab.txt", what),
      );
    }
    add(
      command,
      "--vocab without [UNK]",
      [...base, "--captions", "$DIR/c.txt", "--vocab", "$DIR/vocab.txt"],
      { ...files, ...captions, "vocab.txt": text("[PAD]\n[CLS]\na\ndog\n") },
      ["$DIR/vocab.txt", "[UNK]"],
    );
  }
  const gt = (label: string, spec: FileSpec | null, mentions: string[]) =>
    add(
      "retrieve",
      `--gt ${label}`,
      ["retrieve", "--config", "$DIR/k1.json", "--gt", "$DIR/gt.json"],
      withFile(k1, "gt.json", spec),
      mentions,
    );
  for (const [label, spec, what] of specialFiles().slice(0, 4))
    gt(label, spec, naming("$DIR/gt.json", what));
  gt("invalid JSON", text("{"), ["$DIR/gt.json"]);
  gt("naming an unknown video", json({ pairs: [["nope", "0"]] }), ["$DIR/gt.json", "nope"]);

  // verify DIR
  const sidecar = join(CONFORMANCE, `${A1}.json`);
  const tensors = join(CONFORMANCE, `${A1}.safetensors`);
  const cases = (patch: Partial<Record<"json" | "safetensors", FileSpec>>) => ({
    cases: DIRECTORY,
    [`cases/${A1}.json`]: patch.json ?? { kind: "copy", from: sidecar },
    [`cases/${A1}.safetensors`]: patch.safetensors ?? { kind: "copy", from: tensors },
  });
  const verify = (
    label: string,
    dir: string,
    files: Record<string, FileSpec>,
    mentions: string[],
  ) => add("verify", label, ["verify", dir], files, mentions);
  const original = readFileSync(tensors);
  verify("a directory that does not exist", "$DIR/none", {}, ["$DIR/none"]);
  verify("a file instead of a directory", "$DIR/file", { file: text("x") }, ["$DIR/file"]);
  verify("a FIFO instead of a directory", "$DIR/pipe", { pipe: FIFO }, ["$DIR/pipe"]);
  verify("an empty directory", "$DIR/cases", { cases: DIRECTORY }, [
    "$DIR/cases",
    "no conformance cases",
  ]);
  verify("a sidecar that is not JSON", "$DIR/cases", cases({ json: text("{") }), [A1, "JSON"]);
  verify("a sidecar that is a FIFO", "$DIR/cases", cases({ json: FIFO }), [A1, "FIFO"]);
  verify("a sidecar that is a directory", "$DIR/cases", cases({ json: DIRECTORY }), [
    A1,
    "directory",
  ]);
  verify("a tensor file that is a FIFO", "$DIR/cases", cases({ safetensors: FIFO }), [A1, "FIFO"]);
  verify(
    "a tensor file that is missing",
    "$DIR/cases",
    { cases: DIRECTORY, [`cases/${A1}.json`]: { kind: "copy", from: sidecar } },
    [A1, "ENOENT"],
  );
  verify(
    "a truncated tensor file",
    "$DIR/cases",
    cases({ safetensors: bytes(original.subarray(0, 5000)) }),
    [A1],
  );
  verify(
    "a tensor file with trailing bytes",
    "$DIR/cases",
    cases({ safetensors: bytes(Buffer.concat([original, Buffer.alloc(4)])) }),
    [A1, "trailing bytes"],
  );
  verify(
    "an expected tensor holding -Infinity",
    "$DIR/cases",
    cases({ safetensors: bytes(withNonFinite(tensors, sidecar, Number.NEGATIVE_INFINITY)) }),
    [A1, "want -Infinity"],
  );
  verify(
    "an expected tensor holding NaN",
    "$DIR/cases",
    cases({ safetensors: bytes(withNonFinite(tensors, sidecar, Number.NaN)) }),
    [A1, "want NaN"],
  );
  verify(
    "a sidecar naming a missing tensor",
    "$DIR/cases",
    cases({ json: text(sidecarWithExtraTensor(sidecar)) }),
    [A1, "expected.missing"],
  );
  return entries;
}

/** The case's first f32 expected tensor with `value` at flat index 0. */
function withNonFinite(tensorPath: string, sidecarPath: string, value: number): Uint8Array {
  const file = parseSafetensors(readFileSync(tensorPath), tensorPath);
  const names = Object.keys(JSON.parse(readFileSync(sidecarPath, "utf8")).tensors as object);
  const name = names.find((n) => n.startsWith("expected.") && file.tensors.get(n)?.dtype === "f32");
  const target = file.tensors.get(name!)!;
  const data = Float32Array.from(target.data as Float32Array);
  data[0] = value;
  file.tensors.set(name!, f32Tensor(target.shape, data));
  return serializeSafetensors(file.tensors, file.metadata);
}

function sidecarWithExtraTensor(sidecarPath: string): string {
  const parsed = JSON.parse(readFileSync(sidecarPath, "utf8")) as {
    tensors: Record<string, unknown>;
  };
  parsed.tensors["expected.missing"] = { role: "expected_output" };
  return JSON.stringify(parsed);
}

// ---- outputs that cannot be written --------------------------------------------------------

/** The k1 checkpoint's vocabulary (its case's sidecar lists it), so k1 runs can encode captions. */
function k1Vocab(): FileSpec {
  const sidecar = JSON.parse(
    readFileSync(join(CONFORMANCE, "video-text/k1_retrieval_pixels.json"), "utf8"),
  ) as { module_spec: { vocab: string[] } };
  return text(`${sidecar.module_spec.vocab.join("\n")}\n`);
}

function outputEntries(): CorpusEntry[] {
  const tiny = ["--dense", "--frames", "1", "--layers", "1"];
  const k1 = { "k1.json": K1_JSON, "vocab.txt": k1Vocab() };
  /** Where an output cannot go: its path for an extension, and the files that stop it. */
  const targets: [string, (ext: string) => string, (ext: string) => Record<string, FileSpec>][] = [
    ["into a missing directory", (ext) => `$DIR/missing/out${ext}`, () => ({})],
    ["onto a directory", (ext) => `$DIR/taken${ext}`, (ext) => ({ [`taken${ext}`]: DIRECTORY })],
    ["under a file", (ext) => `$DIR/file/out${ext}`, () => ({ file: text("x") })],
    ["in /proc", (ext) => `/proc/sprig-corpus/out${ext}`, () => ({})],
  ];
  const entries: CorpusEntry[] = [];
  for (const [label, out, files] of targets) {
    const entry = (command: CommandName, flag: string, ext: string, args: string[], extra = {}) =>
      entries.push({
        name: `${command} ${flag} ${label}`,
        command,
        args: [...args, flag, out(ext)],
        files: { ...files(ext), ...extra },
        mentions: [out(ext)],
      });
    entry("export", "--onnx", ".onnx", ["export", ...tiny]);
    entry("compile", "--dot", ".dot", ["compile", ...tiny]);
    entry(
      "convert",
      "--out",
      ".safetensors",
      ["convert", `${INPUTS}/k1_checkpoint.pth`, "--config", "$DIR/k1.json"],
      k1,
    );
    entry(
      "embed",
      "--out",
      ".safetensors",
      ["embed", "--config", "$DIR/k1.json", "--vocab", "$DIR/vocab.txt", "--synthetic", "1"],
      k1,
    );
    entry("preprocess", "--out", ".safetensors", [
      "preprocess",
      `${INPUTS}/clip.mp4`,
      "--frames",
      "2",
      "--image-size",
      "32",
    ]);
  }
  const emit = (label: string, out: string, files: Record<string, FileSpec>, mentions: string[]) =>
    entries.push({
      name: `emit --out ${label}`,
      command: "emit",
      args: ["emit", ...tiny, "--out", out],
      files,
      mentions,
    });
  emit("onto a file", "$DIR/file", { file: text("x") }, ["$DIR/file", "not a directory"]);
  emit("into a non-empty directory", "$DIR/full", { full: DIRECTORY, "full/keep.txt": text("x") }, [
    "$DIR/full",
    "--force",
  ]);
  emit("under a file", "$DIR/file/module", { file: text("x") }, ["$DIR/file/module"]);
  emit("in /proc", "/proc/sprig-corpus/module", {}, ["/proc/sprig-corpus/module"]);
  return entries;
}

/** The whole corpus. */
export function corpus(): CorpusEntry[] {
  return [
    ...configFieldEntries(),
    ...unknownKeyEntries(),
    ...crossFieldEntries(),
    ...flagEntries(),
    ...commandOptionEntries(),
    ...resourceEntries(),
    ...fileEntries(),
    ...outputEntries(),
  ];
}
