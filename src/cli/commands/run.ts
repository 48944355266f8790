import { stat } from "node:fs/promises";
import type { Command } from "commander";
import { KERNEL_CHOICES, type KernelChoice } from "../../../backends/registry.js";
import { attentionGraphs, benchAttention, parseBenchPattern } from "../../api/attention-bench.js";
import { compileWithinBudget, type RunStage, runModel } from "../../api/run.js";
import { parseIntOption } from "../../config/flags.js";
import { getPath } from "../../config/merge.js";
import { readCaptions } from "../../inputs/captions.js";
import { encode } from "../../inputs/tokenizer.js";
import { preprocessVideo } from "../../inputs/video.js";
import { readVocab } from "../../inputs/vocab.js";
import { builtinVocab } from "../../inputs/vocab-builtin.js";
import { ConfigError } from "../../ir/errors.js";
import type { Graph } from "../../ir/graph.js";
import { f32Tensor, type HostTensor } from "../../ir/tensor.js";
import {
  checkGraphSizes,
  checkMemoryBudget,
  type ExtraMemory,
  estimateMemory,
} from "../../memory.js";
import type { VisionModelSpec } from "../../models/config.js";
import { MODELS, type ModelName, modelByName } from "../../models/index.js";
import type { RetrievalModelSpec } from "../../models/retrieval/index.js";
import type { TextModelSpec } from "../../models/text/index.js";
import { formatCostTable, formatTimings, gmac } from "../../report.js";
import { readWeightFile, summarizeWeightLoad } from "../../runtime/weight-file.js";
import { progressReporter } from "../progress.js";
import {
  addMemoryOption,
  addModelOptions,
  chosenModel,
  type ModelFlags,
  memoryBudget,
  specFromFlags,
} from "../spec-options.js";

/** Ranges of the timing options run and bench share. */
const REPS = { min: 1, max: 100_000 } as const;
const WARMUP = { min: 0, max: 100_000 } as const;
const THREADS = { min: 1, max: 1024 } as const;

/**
 * The weights file's size, held in memory while it is read and bound (0 when it cannot be
 * stat'ed as a regular file: reading it then fails with the reason).
 */
export async function weightFileMemory(path: string | undefined): Promise<ExtraMemory[]> {
  if (path === undefined) return [];
  const info = await stat(path).catch(() => undefined);
  return info?.isFile() ? [{ what: `weights file ${path}`, bytes: info.size }] : [];
}

const KERNELS_HELP =
  "sprig's own block-sparse attention kernels: auto (each backend decides), on, off";

function kernelChoice(text: string | undefined): KernelChoice | undefined {
  if (text === undefined) return undefined;
  if (!(KERNEL_CHOICES as readonly string[]).includes(text)) {
    throw new ConfigError("kernels", `must be one of ${KERNEL_CHOICES.join(", ")}, got "${text}"`);
  }
  return text as KernelChoice;
}

const STAGE_LABEL: Record<RunStage, string> = {
  compile: "compiling",
  weights: "initialising",
  lower: "lowering to",
  warmup: "warming up:",
  run: "running",
  done: "done",
};

type RunFlags = ModelFlags & {
  video?: string;
  captions?: string;
  vocab?: string;
  backend?: string;
  threads?: string;
  kernels?: string;
  reps?: string;
  warmup?: string;
  weights?: string;
  maxMemory?: string;
  json?: boolean;
};

/** Repeats one item's values `times` along a new batch axis. */
function repeated(data: Float32Array | Int32Array, times: number): Float32Array | Int32Array {
  const out = new (data.constructor as typeof Float32Array | typeof Int32Array)(
    data.length * times,
  );
  for (let i = 0; i < times; i++) out.set(data, i * data.length);
  return out;
}

/**
 * Real inputs for `run`: --video fills pixel_values (the clip repeated over the batch),
 * --captions fills input_ids and attention_mask (captions in order, the last repeated to
 * fill the batch). Inputs not given stay synthetic; undefined when neither flag is set.
 */
async function givenInputs(
  name: ModelName,
  spec: unknown,
  graph: Graph,
  flags: RunFlags,
): Promise<Record<string, HostTensor> | undefined> {
  if (flags.vocab !== undefined && flags.captions === undefined) {
    throw new ConfigError("vocab", "--vocab given without --captions");
  }
  if (flags.video === undefined && flags.captions === undefined) return undefined;
  const model = modelByName(name);
  const vision =
    name === "vision"
      ? (spec as VisionModelSpec)
      : name === "retrieval"
        ? (spec as RetrievalModelSpec).vision
        : null;
  const text =
    name === "text"
      ? (spec as TextModelSpec)
      : name === "retrieval"
        ? (spec as RetrievalModelSpec)
        : null;
  if (flags.video !== undefined && vision === null) {
    throw new ConfigError(
      "video",
      `--video does not apply to model ${name} (it has no vision encoder)`,
    );
  }
  if (flags.captions !== undefined && text === null) {
    throw new ConfigError(
      "captions",
      `--captions does not apply to model ${name} (it has no text encoder)`,
    );
  }
  const inputs: Record<string, HostTensor> = { ...model.syntheticInputs(graph, spec, 0) };
  if (flags.video !== undefined && vision !== null) {
    const clip = await preprocessVideo(flags.video, {
      frames: vision.frames,
      imageSize: vision.model.imageSize,
    });
    for (const note of clip.notes) process.stderr.write(`sprig: ${flags.video}: ${note}\n`);
    inputs.pixel_values = f32Tensor(
      [vision.batch, ...clip.pixelValues.shape],
      repeated(clip.pixelValues.data, vision.batch) as Float32Array,
    );
  }
  if (flags.captions !== undefined && text !== null) {
    const set = await readCaptions(flags.captions);
    const vocab = flags.vocab === undefined ? builtinVocab() : await readVocab(flags.vocab);
    const batch =
      name === "text" ? (spec as TextModelSpec).batch : (spec as RetrievalModelSpec).texts;
    const texts = Array.from(
      { length: batch },
      (_, i) => set.captions[Math.min(i, set.captions.length - 1)]!.text,
    );
    const encoded = encode(vocab, texts, text.textLength);
    inputs.input_ids = encoded.inputIds;
    inputs.attention_mask = encoded.attentionMask;
  }
  return inputs;
}

export function registerRun(program: Command): void {
  const command = addModelOptions(
    program
      .command("run")
      .description(
        "compile a model (default: the SViTT vision encoder at 8 frames), run it on synthetic inputs and time it",
      )
      .option(
        "--weights <file>",
        "weights by state_dict key: safetensors or a PyTorch .pth (default: seeded)",
      )
      .option(
        "--video <file>",
        "a video file or folder of frames as the clip (vision, retrieval; default: synthetic)",
      )
      .option(
        "--captions <file>",
        "captions file, one per line or JSON (text, retrieval; default: synthetic ids)",
      )
      .option(
        "--vocab <file>",
        "BERT vocab.txt for --captions (default: sprig's built-in stand-in)",
      )
      .option("--backend <name>", "backend (default: the fastest available)")
      .option("--threads <n>", "intra-op threads where the backend has them")
      .option("--kernels <choice>", KERNELS_HELP)
      .option("--reps <n>", "timed forwards", "5")
      .option("--warmup <n>", "untimed forwards first", "1")
      .option("--json", "print one JSON object"),
  );
  addMemoryOption(command).action(async (flags: RunFlags) => {
    const name = chosenModel(flags);
    const model = modelByName(name);
    const spec = await specFromFlags(model, flags);
    const reps = parseIntOption("--reps", "reps", flags.reps, REPS, 5);
    const warmup = parseIntOption("--warmup", "warmup", flags.warmup, WARMUP, 1);
    const kernels = kernelChoice(flags.kernels);
    const threads =
      flags.threads === undefined
        ? undefined
        : parseIntOption("--threads", "threads", flags.threads, THREADS, 2);
    // Refused here, before the weights file, the inputs or any weight exists.
    const { compiled: planned } = compileWithinBudget(
      model,
      spec,
      memoryBudget(flags),
      await weightFileMemory(flags.weights),
    );
    const weightFile =
      flags.weights === undefined ? undefined : await readWeightFile(flags.weights);
    const inputs = await givenInputs(name, spec, planned.graph, flags);
    const progress = progressReporter(reps);
    const result = await runModel(model, spec, {
      compiled: planned,
      ...(flags.backend !== undefined ? { backend: flags.backend } : {}),
      ...(threads !== undefined ? { threads } : {}),
      ...(kernels !== undefined ? { kernels } : {}),
      ...(weightFile !== undefined ? { weightFile } : {}),
      ...(inputs !== undefined ? { inputs } : {}),
      reps,
      warmup,
      onStage: (stage, detail) => progress.stage(`${STAGE_LABEL[stage]} ${detail}`),
      onRep: (done, _total, ms) => progress.rep(done, ms),
    });
    progress.stop();
    const { compiled } = result;
    if (result.weightReport !== null && !flags.json) {
      process.stderr.write(`sprig: ${summarizeWeightLoad(result.weightReport)}\n`);
    }
    const variant = flags.dense ? "dense" : "svitt";
    const tokensPerLayer = compiled.cost.layers.map((l) => l.tokensIn);
    const gflops = (2 * compiled.cost.totals.macs) / (result.medianMs / 1000) / 1e9;
    const frames = model.framesPath === null ? undefined : getPath(spec, model.framesPath);
    // Clips per forward: the vision model's batch, the retrieval model's video batch.
    const clips =
      name === "vision"
        ? (spec as VisionModelSpec).batch
        : name === "retrieval"
          ? (spec as RetrievalModelSpec).vision.batch
          : undefined;
    const clipsPerSecond = clips === undefined ? undefined : (1000 * clips) / result.medianMs;
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({
          model: name,
          backend: result.backend,
          backend_detail: result.backendDetail,
          ...(frames !== undefined ? { frames } : {}),
          ...(name === "vision" ? { batch: getPath(spec, "batch") } : {}),
          variant,
          description: model.describe(spec),
          tokens_per_layer: tokensPerLayer,
          macs: compiled.cost.totals.macs,
          gflops,
          ...(clipsPerSecond !== undefined ? { clips_per_second: clipsPerSecond } : {}),
          median_ms: result.medianMs,
          min_ms: result.minMs,
          max_ms: result.maxMs,
          reps,
          stage_ms: result.stageMs,
          peak_rss_mb: result.peakRssMb,
          weights: result.weightReport ?? "seeded",
        })}\n`,
      );
      return;
    }
    process.stdout.write(
      [
        `${model.describe(spec)}, on ${result.backend} (${result.backendDetail})`,
        "",
        formatCostTable(compiled.cost),
        "",
        formatTimings(compiled.timings),
        `stages: compile ${result.stageMs.compile.toFixed(0)} ms, weights ${result.stageMs.weights.toFixed(0)} ms, lower ${result.stageMs.lower.toFixed(0)} ms, warmup ${result.stageMs.warmup.toFixed(0)} ms`,
        `forward: median ${result.medianMs.toFixed(1)} ms (min ${result.minMs.toFixed(1)}, max ${result.maxMs.toFixed(1)}, ${reps} reps) = ${gflops.toFixed(1)} GFLOP/s on ${gmac(compiled.cost.totals.macs)} GMAC${clipsPerSecond === undefined ? "" : `, ${clipsPerSecond.toFixed(2)} clips/s at ${clips} clip${clips === 1 ? "" : "s"} per forward`}`,
        `peak RSS: ${result.peakRssMb.toFixed(0)} MB`,
        "",
      ].join("\n"),
    );
  });
}

export function registerBench(program: Command): void {
  const command = program
    .command("bench")
    .description("time one operation at SViTT sizes: block-sparse against dense on one backend")
    .requiredOption("--op <op>", "operation to time: attention")
    .option("--frames <T>", "frames per clip (the frame counts run accepts)", "8")
    .option("--backend <name>", "backend (default: the fastest available)")
    .option("--threads <n>", "intra-op threads where the backend has them")
    .option("--kernels <choice>", KERNELS_HELP)
    .option("--reps <n>", "timed runs per variant", "5")
    .option(
      "--pattern <spec>",
      "block-sparse pattern: svitt, or a 3-D window window3d:KTxKHxKW[,block=BS]",
      "svitt",
    )
    .option("--json", "print one JSON object");
  addMemoryOption(command).action(
    async (flags: {
      op: string;
      frames: string;
      backend?: string;
      threads?: string;
      kernels?: string;
      reps: string;
      pattern: string;
      maxMemory?: string;
      json?: boolean;
    }) => {
      if (flags.op !== "attention")
        throw new ConfigError("op", `unknown operation "${flags.op}"; known: attention`);
      // The frame counts `run` accepts: the vision encoder's --frames flag, schema and checks.
      const spec = await specFromFlags(MODELS.vision, { frames: flags.frames }, ["vision"]);
      const frames = spec.frames;
      const kernels = kernelChoice(flags.kernels);
      const threads =
        flags.threads === undefined
          ? undefined
          : parseIntOption("--threads", "threads", flags.threads, THREADS, 2);
      const reps = parseIntOption("--reps", "reps", flags.reps, REPS, 5);
      const pattern = parseBenchPattern(flags.pattern);
      // Both variants are compiled, run and disposed in turn: the larger one must fit.
      const budget = memoryBudget(flags);
      const graphs = attentionGraphs(frames, {}, undefined, pattern);
      for (const [variant, graph] of [
        ["sparse", graphs.sparse],
        ["dense", graphs.dense],
      ] as const) {
        const what = `one ${variant} attention layer at ${frames} frames`;
        checkGraphSizes(graph, what, { workspace: true });
        checkMemoryBudget(estimateMemory(graph), budget, what);
      }
      const result = await benchAttention({
        frames,
        reps,
        pattern,
        ...(flags.backend !== undefined ? { backend: flags.backend } : {}),
        ...(threads !== undefined ? { threads } : {}),
        ...(kernels !== undefined ? { kernels } : {}),
      });
      const json = {
        op: "attention",
        pattern: result.pattern,
        backend: result.backend,
        frames,
        tokens: result.tokens,
        sparse_ms: result.sparseMs,
        dense_ms: result.denseMs,
        speedup: result.denseMs / result.sparseMs,
        sparse_macs: result.sparseMacs,
        dense_macs: result.denseMacs,
        mac_ratio: result.denseMacs / result.sparseMacs,
        reps: result.reps,
        sparse_detail: result.sparseDetail,
        dense_detail: result.denseDetail,
      };
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(json)}\n`);
        return;
      }
      process.stdout.write(
        `attention (${result.pattern}), ${frames} frames (${result.tokens} tokens), ${result.backend}: sparse ${result.sparseMs.toFixed(2)} ms (${gmac(result.sparseMacs)} GMAC), dense ${result.denseMs.toFixed(2)} ms (${gmac(result.denseMacs)} GMAC); speedup ${json.speedup.toFixed(2)}x for a ${json.mac_ratio.toFixed(2)}x MAC ratio (${(json.speedup / json.mac_ratio).toFixed(2)}x dense's FLOP rate)\n  sparse: ${result.sparseDetail}\n  dense: ${result.denseDetail}\n`,
      );
    },
  );
}
