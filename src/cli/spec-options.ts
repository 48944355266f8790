import { totalmem } from "node:os";
import type { Command } from "commander";
import { applyFlags, type FlagSpec, parseByteSize, parseFlagValue } from "../config/flags.js";
import { getPath, isPlainObject, mergeConfig } from "../config/merge.js";
import { int, parseConfig } from "../config/schema.js";
import { readTextFile } from "../io/files.js";
import { ConfigError, SprigError } from "../ir/errors.js";
import { checkGraphSizes, type MemoryBudget } from "../memory.js";
import type { ModelDefinition } from "../models/definition.js";
import { isModelName, MODEL_NAMES, MODELS, type ModelName } from "../models/index.js";
import { MAX_FRAMES } from "../models/vision/schema.js";

/**
 * The model options every model-compiling command shares, and how they become a spec:
 * start from the model's preset for the clip length (--frames, or the config file's), or
 * its dense variant with --dense; lay the --config file over it (a partial spec: objects
 * merge, everything else replaces, null switches a part off); then the flags; then the
 * model's schema and cross-field checks validate the result as a whole. Flags are the
 * models' flag tables (src/config/flags.ts), so a flag and its config key are one field.
 */

/** Commander's attribute name of a long option: "--keep-rate" -> "keepRate". */
export function attributeOf(flag: string): string {
  return flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Every flag of every model, once per name (the first model's help text wins). */
function allModelFlags(models: readonly ModelName[]): FlagSpec[] {
  const seen = new Map<string, FlagSpec>();
  for (const name of models) {
    for (const flag of MODELS[name].flags) if (!seen.has(flag.flag)) seen.set(flag.flag, flag);
  }
  return [...seen.values()];
}

export interface ModelFlags {
  readonly model?: string;
  readonly dense?: boolean;
  readonly config?: string;
  readonly [flag: string]: string | boolean | undefined;
}

/**
 * Adds --model (when more than one model is allowed), --dense, --config and every model
 * flag to a command. `models` lists the models the command accepts, the first the default.
 */
export function addModelOptions(
  command: Command,
  models: readonly ModelName[] = MODEL_NAMES,
): Command {
  if (models.length > 1) {
    command.option(
      "--model <name>",
      `model to compile: ${models.join(" | ")} (default ${models[0]})`,
    );
  }
  command
    .option("--dense", "the dense variant (no edge or node sparsity in the vision encoder)")
    .option("--config <file>", "JSON file with a partial spec of the model (see README, Models)");
  for (const flag of allModelFlags(models)) {
    const name = flag.placeholder === undefined ? flag.flag : `${flag.flag} ${flag.placeholder}`;
    command.option(name, flag.help);
  }
  return command;
}

/**
 * `export` and `emit` take the config file as an optional positional argument too
 * (`sprig export svitt-16.json --onnx m.onnx`); it means the same as --config.
 */
export function withConfigArgument<F extends ModelFlags>(
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

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  const text = await readTextFile(path, "config");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SprigError(`config ${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(json)) throw new SprigError(`config ${path} must be a JSON object`);
  return json;
}

/** The model a command runs: --model, else the command's default. */
export function chosenModel(
  flags: ModelFlags,
  models: readonly ModelName[] = MODEL_NAMES,
): ModelName {
  const name = flags.model ?? models[0]!;
  if (!isModelName(name) || !models.includes(name)) {
    throw new ConfigError("model", `must be one of ${models.join(", ")}, got "${name}"`);
  }
  return name;
}

/** The flags given on the command line, by long option name. */
function givenFlags(model: ModelDefinition<unknown>, flags: ModelFlags, all: readonly FlagSpec[]) {
  const given: Record<string, string | boolean | undefined> = {};
  const own = new Set(model.flags.map((f) => f.flag));
  for (const flag of all) {
    const value = flags[attributeOf(flag.flag)];
    if (value === undefined || value === false) continue;
    if (!own.has(flag.flag)) {
      throw new ConfigError(
        attributeOf(flag.flag),
        `${flag.flag} does not apply to model ${model.name} (its flags: ${model.flags.map((f) => f.flag).join(", ")})`,
      );
    }
    given[flag.flag] = value;
  }
  return given;
}

/** A preset knob at `path` of the spec: its flag's value, else the file's; validated. */
function presetKnob(
  model: ModelDefinition<unknown>,
  flags: ModelFlags,
  file: Record<string, unknown>,
  path: string | null,
  max: number,
): number | undefined {
  if (path === null) return undefined;
  const flag = model.flags.find((f) => f.path === path);
  const fromFlag = flag === undefined ? undefined : flags[attributeOf(flag.flag)];
  const value =
    typeof fromFlag === "string" ? parseFlagValue(flag!, fromFlag) : getPath(file, path);
  return value === undefined ? undefined : parseConfig(int(1, max), value, path);
}

/** Builds and checks the spec of `model` from a command's flags (see the module comment). */
export async function specFromFlags<Spec>(
  model: ModelDefinition<Spec>,
  flags: ModelFlags,
  models: readonly ModelName[] = MODEL_NAMES,
): Promise<Spec> {
  const file = flags.config === undefined ? {} : await readConfigFile(flags.config);
  if (flags.dense && model.framesPath === null) {
    throw new ConfigError(
      "dense",
      `--dense does not apply to model ${model.name} (it has no vision encoder)`,
    );
  }
  // The clip length and encoder depth pick the preset, so they are read first (flag, else file).
  const frames = presetKnob(model, flags, file, model.framesPath, MAX_FRAMES) ?? 8;
  const layers = presetKnob(model, flags, file, model.layersPath, 1000);
  const preset = model.preset({
    frames,
    variant: flags.dense ? "dense" : "svitt",
    ...(layers === undefined ? {} : { layers }),
  });
  const all = allModelFlags(models);
  const given = givenFlags(model as ModelDefinition<unknown>, flags, all);
  const merged = applyFlags(mergeConfig(preset, file), model.flags, given);
  const spec = model.check(parseConfig(model.schema, merged));
  // The size rules on the dense graph (milliseconds), before any command runs the passes.
  checkGraphSizes(model.build(spec).graph, model.describe(spec), { workspace: false });
  return spec;
}

/** --max-memory, for the commands that compile and run (run, export, emit, retrieve, embed, bench). */
export function addMemoryOption(command: Command): Command {
  return command.option(
    "--max-memory <size>",
    "refuse models whose memory estimate exceeds this, e.g. 8GiB (default: this machine's memory)",
  );
}

/** The memory budget of a command: --max-memory, else this machine's memory. */
export function memoryBudget(flags: { readonly maxMemory?: string }): MemoryBudget {
  if (flags.maxMemory !== undefined) {
    return {
      limitBytes: parseByteSize("--max-memory", "maxMemory", flags.maxMemory),
      source: `--max-memory ${flags.maxMemory}`,
    };
  }
  return { limitBytes: totalmem(), source: "this machine's memory (os.totalmem)" };
}
