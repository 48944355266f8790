import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { ConfigError, SprigError } from "../ir/errors.js";
import type { PaddingMode } from "../ir/pattern.js";
import {
  BEIT_BASE,
  type BeitConfig,
  checkVisionSpec,
  type SparsityConfig,
  type VisionModelSpec,
} from "../models/config.js";
import { svittSparsity } from "../models/presets.js";
import type { TokenOrderKind } from "../models/token-order.js";

/**
 * The options every model-compiling command shares, and how they become a
 * VisionModelSpec: start from the SViTT preset for --frames (or dense with --dense), then
 * a --config file, then individual flags. The result is validated as a whole.
 */
export interface SpecFlags {
  readonly frames?: string;
  readonly batch?: string;
  readonly dense?: boolean;
  readonly config?: string;
  readonly keepRate?: string;
  readonly dropAfter?: string;
  readonly blockSize?: string;
  readonly local?: string;
  readonly random?: string;
  readonly seed?: string;
  readonly perHead?: boolean;
  readonly padding?: string;
  readonly tokenOrder?: string;
  readonly layers?: string;
}

export function addSpecOptions(command: Command): Command {
  return command
    .option("--frames <T>", "frames per clip (tokens = 196 T + 1; default 8)")
    .option("--batch <B>", "clips per batch (default 1)")
    .option("--dense", "the dense encoder (no edge or node sparsity)")
    .option(
      "--config <file>",
      "JSON file with a partial spec: {frames, batch, model: {...}, sparsity: {...}}",
    )
    .option(
      "--keep-rate <r>",
      "token keep rate in (0, 1] (default: curriculum 0.7 / 0.6 / 0.5 by frames)",
    )
    .option(
      "--drop-after <layers>",
      "comma-separated layers after which tokens are dropped (default 3,6,9)",
    )
    .option("--block-size <n>", "attention block size (default 56)")
    .option("--local <n>", "local window in blocks, odd (default 1)")
    .option("--random <n>", "random key blocks per query block (default 3)")
    .option("--seed <n>", "seed for random blocks (default 0)")
    .option("--per-head", "draw random blocks per head")
    .option("--padding <mode>", 'padded keys: "reference" (as the authors) or "masked"')
    .option("--token-order <kind>", "none | zcurve | hilbert")
    .option("--layers <n>", "encoder layers (default 12)");
}

/**
 * `export` and `emit` take the config file as an optional positional argument too
 * (`sprig export svitt-16.json --onnx m.onnx`); it means the same as --config.
 */
export function withConfigArgument<F extends SpecFlags>(
  positional: string | undefined,
  flags: F,
): F {
  if (positional === undefined) return flags;
  if (flags.config !== undefined && flags.config !== positional) {
    throw new SprigError(
      `two config files given: "${positional}" and --config "${flags.config}"; pass one`,
    );
  }
  return { ...flags, config: positional };
}

function integer(field: string, text: string): number {
  const value = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(value)) {
    throw new ConfigError(field, `must be an integer, got "${text}"`);
  }
  return value;
}

function decimal(field: string, text: string): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value))
    throw new ConfigError(field, `must be a number, got "${text}"`);
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new SprigError(
      `cannot read config ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SprigError(`config ${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isRecord(json)) throw new SprigError(`config ${path} must be a JSON object`);
  const known = new Set(["frames", "batch", "model", "sparsity"]);
  for (const key of Object.keys(json)) {
    if (!known.has(key))
      throw new ConfigError(key, `unknown field in ${path} (known: ${[...known].join(", ")})`);
  }
  return json;
}

/** `base` with the fields of `patch` (an object from a config file) replacing its own. */
function mergeKnown<T extends object>(base: T, patch: unknown, field: string): T {
  if (!isRecord(patch)) throw new ConfigError(field, "must be an object");
  for (const key of Object.keys(patch)) {
    if (!(key in base))
      throw new ConfigError(
        `${field}.${key}`,
        `unknown field (known: ${Object.keys(base).join(", ")})`,
      );
  }
  return { ...base, ...patch } as T;
}

/** The preset's sparsity with a config file's "sparsity" object applied (null disables a part). */
function sparsityFromFile(frames: number, patch: unknown): SparsityConfig {
  const preset = svittSparsity(frames);
  if (patch === undefined) return preset;
  const fields = mergeKnown(preset, patch, "sparsity") as unknown as Record<string, unknown>;
  const given = patch as Record<string, unknown>;
  const part = <T extends object>(key: "attention" | "tokens", base: T): T | null => {
    if (!(key in given)) return base;
    return fields[key] === null ? null : mergeKnown(base, fields[key], `sparsity.${key}`);
  };
  return {
    attention: part("attention", preset.attention!),
    tokens: part("tokens", preset.tokens!),
    tokenOrder: fields.tokenOrder as TokenOrderKind,
  };
}

export async function specFromFlags(flags: SpecFlags): Promise<VisionModelSpec> {
  const file = flags.config === undefined ? {} : await readConfigFile(flags.config);
  const frames = flags.frames !== undefined ? integer("frames", flags.frames) : (file.frames ?? 8);
  if (!(typeof frames === "number" && Number.isInteger(frames) && frames >= 1)) {
    throw new ConfigError("frames", `must be an integer >= 1, got ${JSON.stringify(frames)}`);
  }
  const batch = flags.batch !== undefined ? integer("batch", flags.batch) : (file.batch ?? 1);
  if (typeof batch !== "number")
    throw new ConfigError("batch", `must be an integer >= 1, got ${JSON.stringify(batch)}`);
  let model: BeitConfig =
    file.model === undefined ? BEIT_BASE : mergeKnown(BEIT_BASE, file.model, "model");
  if (flags.layers !== undefined) model = { ...model, numLayers: integer("layers", flags.layers) };
  let sparsity: SparsityConfig = flags.dense
    ? { attention: null, tokens: null, tokenOrder: "none" }
    : sparsityFromFile(frames, file.sparsity);
  // A flag for a part of the sparsity that is off would be silently ignored: reject it.
  const partFlags = {
    attention: {
      blockSize: ["--block-size", flags.blockSize],
      local: ["--local", flags.local],
      random: ["--random", flags.random],
      seed: ["--seed", flags.seed],
      padding: ["--padding", flags.padding],
      perHead: ["--per-head", flags.perHead],
    },
    tokens: {
      keepRate: ["--keep-rate", flags.keepRate],
      dropAfter: ["--drop-after", flags.dropAfter],
    },
  } as const;
  for (const part of ["attention", "tokens"] as const) {
    if (sparsity[part] !== null) continue;
    for (const [field, [flag, value]] of Object.entries(partFlags[part])) {
      if (value === undefined || value === false) continue;
      const why = flags.dense
        ? "--dense is set"
        : `${part === "attention" ? "edge" : "token"} sparsity is off in the config`;
      throw new ConfigError(`sparsity.${part}.${field}`, `${flag} given but ${why}`);
    }
  }
  if (flags.dense && flags.tokenOrder !== undefined && flags.tokenOrder !== "none") {
    throw new ConfigError("sparsity.tokenOrder", "--token-order given with --dense");
  }
  const attention = sparsity.attention;
  if (attention !== null) {
    sparsity = {
      ...sparsity,
      attention: {
        ...attention,
        ...(flags.blockSize !== undefined
          ? { blockSize: integer("sparsity.attention.blockSize", flags.blockSize) }
          : {}),
        ...(flags.local !== undefined
          ? { local: integer("sparsity.attention.local", flags.local) }
          : {}),
        ...(flags.random !== undefined
          ? { random: integer("sparsity.attention.random", flags.random) }
          : {}),
        ...(flags.seed !== undefined
          ? { seed: integer("sparsity.attention.seed", flags.seed) }
          : {}),
        ...(flags.perHead ? { perHead: true } : {}),
        ...(flags.padding !== undefined ? { padding: flags.padding as PaddingMode } : {}),
      },
    };
  }
  const tokens = sparsity.tokens;
  if (tokens !== null) {
    sparsity = {
      ...sparsity,
      tokens: {
        keepRate:
          flags.keepRate !== undefined
            ? decimal("sparsity.tokens.keepRate", flags.keepRate)
            : tokens.keepRate,
        dropAfter:
          flags.dropAfter !== undefined
            ? flags.dropAfter
                .split(",")
                .filter((s) => s.trim() !== "")
                .map((s) => integer("sparsity.tokens.dropAfter", s))
            : tokens.dropAfter,
      },
    };
  }
  if (flags.tokenOrder !== undefined)
    sparsity = { ...sparsity, tokenOrder: flags.tokenOrder as TokenOrderKind };
  return checkVisionSpec({ model, frames, batch, sparsity });
}
