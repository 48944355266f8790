import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { emitModule } from "../../../backends/gpujs/codegen/module.js";
import { compileWithinBudget } from "../../api/run.js";
import { debugLevelFromEnv, stderrSink } from "../../debug.js";
import { writeFileAtomic } from "../../io/atomic.js";
import { onInterrupt } from "../../io/cleanup.js";
import { SprigError } from "../../ir/errors.js";
import { modelByName } from "../../models/index.js";
import {
  addMemoryOption,
  addModelOptions,
  chosenModel,
  type ModelFlags,
  memoryBudget,
  specFromFlags,
  withConfigArgument,
} from "../spec-options.js";

/**
 * `sprig emit --out DIR`: compiles the vision encoder and writes the standalone gpu.js
 * module for it (kernels.ts, model.ts, index.ts, README.md; see
 * backends/gpujs/codegen/module.ts). Everything is generated in memory first; each file is
 * then written atomically, and if any write fails the files written so far are removed (or
 * restored, with --force) and a directory this command created is removed again, so an
 * error never leaves a partial module behind. The same undo runs on SIGINT or SIGTERM
 * (src/io/cleanup.ts). Like `run`, emit refuses a model whose memory estimate exceeds this
 * machine's memory (or --max-memory): the module it writes would not run here.
 */

type EmitFlags = ModelFlags & {
  readonly out: string;
  readonly force?: boolean;
  readonly maxMemory?: string;
};

/** Entries of `dir`, or null when it does not exist. */
async function entriesOf(dir: string): Promise<string[] | null> {
  try {
    return await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ENOTDIR") {
      const self = await stat(dir).catch(() => null);
      throw new SprigError(
        self !== null
          ? `--out ${dir} exists and is not a directory`
          : `cannot create --out ${dir}: one of its parents is a file, not a directory`,
      );
    }
    throw new SprigError(`cannot read --out ${dir}: ${code ?? String(error)}`);
  }
}

/**
 * Creates `dir` and its missing ancestors one level at a time, returning the outermost
 * directory created. (Not mkdir's `recursive`: on Node 20 that never settles for a path
 * under /proc.) A missing ancestor's parent that is a file is an error naming it.
 */
async function makeDirectories(dir: string): Promise<string | undefined> {
  const missing: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    const info = await stat(at).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return null;
      throw error;
    });
    if (info !== null) {
      if (!info.isDirectory()) throw Object.assign(new Error("ENOTDIR"), { code: "ENOTDIR" });
      break;
    }
    missing.push(at);
    if (dirname(at) === at) break;
  }
  for (const level of [...missing].reverse()) await mkdir(level);
  return missing.at(-1);
}

/**
 * Writes `files` into `dir` all or nothing: first every target is checked (and the contents
 * of files about to be replaced are kept), then each file is written atomically; on a
 * failure, files that did not exist are deleted, replaced ones get their old contents back,
 * and `dir` is removed if this call created it. `write` is the file writer (a seam for tests).
 */
export async function writeModuleFiles(
  dir: string,
  files: ReadonlyMap<string, string>,
  force: boolean,
  write: (path: string, contents: string | Uint8Array) => Promise<void> = writeFileAtomic,
): Promise<void> {
  const existing = await entriesOf(dir);
  if (existing !== null && existing.length > 0 && !force) {
    throw new SprigError(
      `--out ${dir} is not empty (${existing.length} entries); pass --force to write into it`,
    );
  }
  const previous = new Map<string, Buffer | null>();
  for (const name of files.keys()) {
    const path = join(dir, name);
    if (!existing?.includes(name)) {
      previous.set(path, null);
      continue;
    }
    try {
      if (!(await stat(path)).isFile()) throw new SprigError(`${path} exists and is not a file`);
      previous.set(path, await readFile(path));
    } catch (error) {
      if (error instanceof SprigError) throw error;
      throw new SprigError(
        `cannot read ${path} before replacing it: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      );
    }
  }
  // The outermost directory this call creates (mkdir reports it), removed again on failure.
  let created: string | undefined;
  const written: string[] = [];
  const undo = async () => {
    for (const path of written) {
      const old = previous.get(path);
      if (old === null || old === undefined) await rm(path, { force: true }).catch(() => undefined);
      else await writeFileAtomic(path, old).catch(() => undefined);
    }
    if (created !== undefined)
      await rm(created, { recursive: true, force: true }).catch(() => undefined);
  };
  const unregister = onInterrupt(`the module files in ${dir}`, undo);
  try {
    if (existing === null) {
      try {
        created = await makeDirectories(dir);
      } catch (error) {
        throw new SprigError(
          `cannot create --out ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        );
      }
    }
    try {
      for (const [name, text] of files) {
        const path = join(dir, name);
        // Counted before the write: an interrupted write may have replaced the file already.
        written.push(path);
        await write(path, text);
      }
    } catch (error) {
      await undo();
      throw error;
    }
  } finally {
    unregister();
  }
}

export function registerEmit(program: Command): void {
  const command = addModelOptions(
    program
      .command("emit")
      .argument("[config]", "JSON model config (same as --config)")
      .description(
        "compile a model and write a standalone TypeScript module of gpu.js kernels for it",
      )
      .requiredOption("--out <dir>", "directory to write the module into (created if missing)")
      .option("--force", "write into a non-empty directory, replacing the module's files"),
  );
  addMemoryOption(command).action(async (config: string | undefined, given: EmitFlags) => {
    const flags = withConfigArgument(config, given);
    const model = modelByName(chosenModel(flags));
    const spec = await specFromFlags(model, flags);
    const { compiled } = compileWithinBudget(model, spec, memoryBudget(flags));
    const emitted = emitModule(compiled, { title: model.describe(spec) });
    if (debugLevelFromEnv() >= 3) {
      for (const kernel of emitted.program.kernels) {
        stderrSink(`gpujs kernel ${kernel.name}:\n${kernel.source}`);
      }
    }
    const dir = resolve(String(flags.out));
    await writeModuleFiles(dir, emitted.files, flags.force === true);
    const launches = emitted.program.steps.filter((step) => step.kind === "launch").length;
    process.stdout.write(
      `wrote ${[...emitted.files.keys()].join(", ")} to ${dir} (${emitted.program.kernels.length} kernels, ${launches} launches per run)\n`,
    );
  });
}
