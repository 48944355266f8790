import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import {
  candidateFromExport,
  type ExploreCandidate,
  explore,
  exploreScene,
  formatExploreTable,
} from "../../api/explore.js";
import { pictureFormat, writePicture } from "../../api/patterns.js";
import { parseIntOption } from "../../config/flags.js";
import { preprocessVideo } from "../../inputs/video.js";
import { ConfigError, SprigError } from "../../ir/errors.js";
import { f32Tensor, type HostTensor } from "../../ir/tensor.js";
import { checkKeepRate, type VisionModelSpec } from "../../models/config.js";
import { MODELS } from "../../models/index.js";
import { parsePattern } from "../../patterns/library/index.js";
import {
  addMemoryOption,
  addModelOptions,
  memoryBudget,
  type ModelFlags,
  specFromFlags,
} from "../spec-options.js";

/**
 * `sprig explore SPEC... [--module FILE] --keep-rates R,R`: MACs, time on a backend and the
 * pooled embedding's cosine similarity to the dense model (and, with --retrieval N, the
 * agreement of retrieval rankings) for every pattern and keep rate; a table, or JSON, and
 * a plot (--plot FILE.png|.svg). --module imports a JavaScript or TypeScript module of the
 * user's and takes each export that is a pattern (definePattern, or a combinator's result)
 * or a predicate (q, k, head) => boolean as one more candidate: it runs the user's code, as
 * `node FILE` would.
 */
interface ExploreFlags extends ModelFlags {
  readonly keepRates?: string;
  readonly module?: string;
  readonly backend?: string;
  readonly reps?: string;
  readonly retrieval?: string;
  readonly video?: string;
  readonly plot?: string;
  readonly json?: boolean;
  readonly maxMemory?: string;
}

export function registerExplore(program: Command): void {
  const command = addModelOptions(
    program
      .command("explore")
      .description(
        "compare attention patterns and keep rates: MACs, time, and how far the output moves from the dense model",
      )
      .argument(
        "[specs...]",
        "pattern specs of the library (sprig pattern list), e.g. svitt window3d:3x7x7 divided",
      )
      .option(
        "--keep-rates <list>",
        "comma-separated keep rates of the token drops, 1 for none (default: the spec's)",
      )
      .option(
        "--module <file>",
        "a module whose exported patterns or predicates (q, k, head) => boolean are candidates too",
      )
      .option("--backend <name>", "backend to time on (default: the fastest available)")
      .option("--reps <n>", "timed forwards per variant (default 3)")
      .option(
        "--retrieval <clips>",
        "also compare retrieval rankings of the whole model over this many synthetic clips (1-4)",
      )
      .option(
        "--video <file>",
        "run on this video (or folder of frames) instead of the synthetic clip",
      )
      .option("--plot <file>", "write the plot, .png or .svg")
      .option("--json", "print one JSON object instead of the table"),
    ["vision"],
  );
  addMemoryOption(command).action(async (specs: string[], flags: ExploreFlags) => {
    if (flags.pattern !== undefined) {
      throw new ConfigError(
        "pattern",
        "list the patterns as arguments (sprig explore svitt divided ...), not --pattern",
      );
    }
    if (flags.plot !== undefined) pictureFormat(flags.plot);
    const candidates: ExploreCandidate[] = specs.map((spec) => {
      parsePattern(spec, "patterns");
      return { name: spec, pattern: spec };
    });
    if (flags.module !== undefined) candidates.push(...(await moduleCandidates(flags.module)));
    if (candidates.length === 0) {
      throw new ConfigError(
        "patterns",
        "give at least one pattern spec or a --module with patterns",
      );
    }
    const base = (await specFromFlags(MODELS.vision, flags, ["vision"])) as VisionModelSpec;
    const keepRates =
      flags.keepRates === undefined
        ? [base.sparsity.tokens?.keepRate ?? 1]
        : flags.keepRates.split(",").map((text) => {
            const value = Number(text.trim());
            if (text.trim() === "" || !Number.isFinite(value)) {
              throw new ConfigError(
                "keepRates",
                `--keep-rates must be comma-separated numbers, got "${flags.keepRates}"`,
              );
            }
            return checkKeepRate("keepRates", value);
          });
    const reps = parseIntOption("--reps", "reps", flags.reps, { min: 1, max: 1000 }, 3);
    const clips = parseIntOption(
      "--retrieval",
      "retrieval",
      flags.retrieval,
      { min: 0, max: 4 },
      0,
    );
    const inputs = flags.video === undefined ? undefined : await videoInputs(flags.video, base);
    const result = await explore({
      spec: base,
      candidates,
      keepRates,
      reps,
      retrievalClips: clips,
      budget: memoryBudget(flags),
      ...(flags.backend === undefined ? {} : { backend: flags.backend }),
      ...(inputs === undefined ? {} : { inputs }),
      onProgress: (line) => {
        if (process.stderr.isTTY) process.stderr.write(`explore: ${line}\n`);
      },
    });
    if (flags.plot !== undefined) await writePicture(flags.plot, exploreScene(result));
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      return;
    }
    process.stdout.write(`${formatExploreTable(result)}\n`);
    if (flags.plot !== undefined) process.stdout.write(`plot: ${flags.plot}\n`);
  });
}

/** The candidates a user module exports (see the module comment). */
async function moduleCandidates(path: string): Promise<ExploreCandidate[]> {
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (error) {
    throw new SprigError(`--module ${path} could not be imported: ${(error as Error).message}`);
  }
  const found = Object.entries(exports)
    .map(([name, value]) => candidateFromExport(name === "default" ? path : name, value))
    .filter((c): c is ExploreCandidate => c !== null);
  if (found.length === 0) {
    throw new ConfigError(
      "module",
      `${path} exports no pattern (definePattern(...), a combinator) and no predicate (q, k, head) => boolean`,
    );
  }
  return found;
}

async function videoInputs(
  path: string,
  spec: VisionModelSpec,
): Promise<Record<string, HostTensor>> {
  const clip = await preprocessVideo(path, {
    frames: spec.frames,
    imageSize: spec.model.imageSize,
  });
  for (const note of clip.notes) process.stderr.write(`sprig: ${path}: ${note}\n`);
  const data = clip.pixelValues.data;
  const batched = new Float32Array(spec.batch * data.length);
  for (let b = 0; b < spec.batch; b++) batched.set(data, b * data.length);
  return { pixel_values: f32Tensor([spec.batch, ...clip.pixelValues.shape], batched) };
}
