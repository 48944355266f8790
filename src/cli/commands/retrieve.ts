import { readdir, stat } from "node:fs/promises";
import { basename, extname, join } from "node:path";
import type { Command } from "commander";
import { KERNEL_CHOICES, type KernelChoice } from "../../../backends/registry.js";
import {
  planRetrieval,
  type RetrieveOptions,
  type RetrieveResult,
  retrieve,
  syntheticVideo,
  type VideoSource,
} from "../../api/retrieve.js";
import { parseIntOption } from "../../config/flags.js";
import {
  builtinCaptions,
  type CaptionSet,
  readCaptions,
  readGroundTruth,
} from "../../inputs/captions.js";
import { readVocab } from "../../inputs/vocab.js";
import { builtinVocab } from "../../inputs/vocab-builtin.js";
import { writeSafetensors } from "../../io/safetensors.js";
import { ConfigError, SprigError } from "../../ir/errors.js";
import { f32Tensor, numElements } from "../../ir/tensor.js";
import { MODELS } from "../../models/index.js";
import type { RetrievalModelSpec } from "../../models/retrieval/index.js";
import type { RecallResult, ScoreMatrix } from "../../models/retrieval/ranking.js";
import { gmac } from "../../report.js";
import { readWeightFile, summarizeWeightLoad } from "../../runtime/weight-file.js";
import {
  addMemoryOption,
  addModelOptions,
  type ModelFlags,
  memoryBudget,
  specFromFlags,
} from "../spec-options.js";
import { workersFor } from "../../api/executable-pool.js";
import { pickBackend } from "../../api/run.js";
import { weightFileMemory } from "./run.js";

const VIDEO_EXTENSIONS = new Set([
  ".mp4",
  ".mov",
  ".m4v",
  ".mkv",
  ".webm",
  ".avi",
  ".mpg",
  ".mpeg",
]);
const FRAME_EXTENSIONS = new Set([".png", ".jpg", ".jpeg"]);

/** The id of a video: its file or folder name without extension. */
function videoId(path: string): string {
  return basename(path, extname(path));
}

async function kindOf(path: string): Promise<"file" | "dir"> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (error) {
    throw new SprigError(
      `video ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  if (info.isDirectory()) return "dir";
  if (info.isFile()) return "file";
  const kind = info.isFIFO()
    ? "a FIFO"
    : info.isCharacterDevice() || info.isBlockDevice()
      ? "a device"
      : "a special file";
  throw new SprigError(`video ${path} is ${kind}, not a regular file or a directory`);
}

/**
 * The videos named on the command line: a file is a video; a directory of images is one
 * video (its frames); any other directory holds videos (its video files, and its
 * subdirectories of frames), in name order.
 */
export async function expandVideoArgs(paths: readonly string[]): Promise<VideoSource[]> {
  const out: VideoSource[] = [];
  for (const path of paths) {
    if ((await kindOf(path)) === "file") {
      out.push({ id: videoId(path), path });
      continue;
    }
    const entries = (await readdir(path)).sort();
    const ext = (e: string) => extname(e).toLowerCase();
    if (
      entries.some((e) => FRAME_EXTENSIONS.has(ext(e))) &&
      !entries.some((e) => VIDEO_EXTENSIONS.has(ext(e)))
    ) {
      out.push({ id: videoId(path), path });
      continue;
    }
    const before = out.length;
    for (const entry of entries) {
      const full = join(path, entry);
      if (VIDEO_EXTENSIONS.has(ext(entry))) out.push({ id: videoId(entry), path: full });
      else if ((await stat(full)).isDirectory()) {
        const inner = await readdir(full);
        if (inner.some((e) => FRAME_EXTENSIONS.has(ext(e)))) out.push({ id: entry, path: full });
      }
    }
    if (out.length === before) {
      throw new SprigError(
        `${path}: no videos (${[...VIDEO_EXTENSIONS].join(" ")}) and no folders of frames (.png .jpg) in it`,
      );
    }
  }
  return out;
}

export type RetrieveFlags = ModelFlags & {
  captions?: string;
  gt?: string;
  vocab?: string;
  weights?: string;
  k?: string;
  pairsPerBatch?: string;
  synthetic?: string;
  prefetch?: string;
  workers?: string;
  backend?: string;
  threads?: string;
  kernels?: string;
  maxMemory?: string;
  json?: boolean;
};

/** A positive integer option: decimal digits only, in [1, max]. */
function positiveInt(
  flag: string,
  field: string,
  text: string | undefined,
  fallback: number,
  max = 1 << 20,
): number {
  return parseIntOption(flag, field, text, { min: 1, max }, fallback);
}

function kernelChoice(text: string | undefined): KernelChoice | undefined {
  if (text === undefined) return undefined;
  if (!(KERNEL_CHOICES as readonly string[]).includes(text)) {
    throw new ConfigError("kernels", `must be one of ${KERNEL_CHOICES.join(", ")}, got "${text}"`);
  }
  return text as KernelChoice;
}

const WORKERS_HELP =
  "video encoders run at once on worker threads, each with its own weights (default: every core where the backend runs on one, e.g. tfjs-wasm; else 1)";

const PREFETCH_HELP =
  "video files decoded ahead of the video encoder, on a worker thread while it runs (0: one at a time; default: the video batch per encoder)";

/** --prefetch: clips decoded ahead, in [0, 4096]; undefined: retrieve's default (the video batch). */
function prefetchOption(text: string | undefined): number | undefined {
  return text === undefined
    ? undefined
    : parseIntOption("--prefetch", "prefetch", text, { min: 0, max: 4096 }, 0);
}

/**
 * Everything `retrieve` and `embed` share: the spec, the compiled parts (checked against
 * the memory budget before any weight, clip or caption is loaded), inputs, vocab, weights
 * and backend choices from flags; `options` is what both pass to `retrieve` as it is.
 */
export async function retrievalInputs(
  videoArgs: readonly string[],
  flags: RetrieveFlags,
  parts: { readonly pairsPerBatch: number; readonly embeddingsOnly: boolean },
) {
  const threads =
    flags.threads === undefined
      ? undefined
      : positiveInt("--threads", "threads", flags.threads, 2, 1024);
  const kernels = kernelChoice(flags.kernels);
  const model = MODELS.retrieval;
  let spec: RetrievalModelSpec = await specFromFlags(model, flags, ["retrieval"]);
  const captions: CaptionSet =
    flags.captions === undefined ? builtinCaptions() : await readCaptions(flags.captions);
  if (flags.texts === undefined) {
    // encode captions in batches of up to 16 unless told otherwise
    spec = model.check({ ...spec, texts: Math.min(16, captions.captions.length) });
  }
  if (videoArgs.length > 0 && flags.synthetic !== undefined) {
    throw new ConfigError("synthetic", "--synthetic given together with video files");
  }
  const synthetic =
    videoArgs.length > 0 ? 0 : positiveInt("--synthetic", "synthetic", flags.synthetic, 4, 4096);
  const { model: beit, frames } = spec.vision;
  const clipBytes = 4 * numElements([frames, beit.channels, beit.imageSize, beit.imageSize]);
  const files = videoArgs.length > 0 ? await expandVideoArgs(videoArgs) : null;
  const videoCount = files?.length ?? synthetic;
  // The backend decides how many video encoders run at once, which the memory check counts.
  const backend = await pickBackend(flags.backend);
  const workers = workersFor(
    backend,
    Math.ceil(videoCount / spec.vision.batch),
    flags.workers === undefined
      ? undefined
      : positiveInt("--workers", "workers", flags.workers, 1, 64),
  );
  const prefetch = prefetchOption(flags.prefetch) ?? spec.vision.batch * workers;
  const plan = planRetrieval(spec, {
    ...parts,
    videoEncoders: workers,
    budget: memoryBudget(flags),
    extra: [
      { what: `${synthetic} synthetic clips`, bytes: synthetic * clipBytes },
      // the clips decoded ahead, and the one being decoded, besides the batch being encoded
      ...(videoArgs.length > 0
        ? [{ what: `${prefetch + 1} clips decoded ahead`, bytes: (prefetch + 1) * clipBytes }]
        : []),
      ...(await weightFileMemory(flags.weights)),
    ],
  });
  // Synthetic clips are made only once the memory check has passed.
  const videos =
    files ?? Array.from({ length: synthetic }, (_, i) => syntheticVideo(spec, `synthetic-${i}`));
  const vocab = flags.vocab === undefined ? builtinVocab() : await readVocab(flags.vocab);
  const weightFile = flags.weights === undefined ? undefined : await readWeightFile(flags.weights);
  const notes: string[] = [];
  if (weightFile !== undefined && flags.vocab === undefined) {
    notes.push(
      "captions are tokenized with sprig's built-in stand-in vocabulary; a released checkpoint needs its own vocab.txt (--vocab)",
    );
  }
  const options = {
    spec,
    videos,
    captions: captions.captions,
    vocab,
    plan,
    prefetch,
    workers,
    embeddingsOnly: parts.embeddingsOnly,
    ...(flags.backend !== undefined ? { backend: flags.backend } : {}),
    ...(threads !== undefined ? { threads } : {}),
    ...(kernels !== undefined ? { kernels } : {}),
    ...(weightFile !== undefined ? { weightFile } : {}),
  } satisfies RetrieveOptions;
  return { spec, captions, weightFile, notes, options };
}

function scoresJson(m: ScoreMatrix): number[][] {
  const rows: number[][] = [];
  for (let r = 0; r < m.rows; r++)
    rows.push(Array.from(m.data.subarray(r * m.cols, (r + 1) * m.cols)));
  return rows;
}

function recallLine(label: string, r: RecallResult): string {
  return `recall (${label}): video->caption R@1 ${r.txt_r1} R@5 ${r.txt_r5} R@10 ${r.txt_r10} (mean ${r.txt_r_mean}); caption->video R@1 ${r.img_r1} R@5 ${r.img_r5} R@10 ${r.img_r10} (mean ${r.img_r_mean}); r_mean ${r.r_mean}`;
}

/** A caption on one line: whitespace runs become one space, long ones are cut. */
function clip(text: string, width = 48): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > width ? `${line.slice(0, width - 3)}...` : line;
}

/** MACs for people: GMAC, or MMAC below a tenth of a GMAC. */
function macs(count: number): string {
  return count >= 1e8 ? `${gmac(count)} GMAC` : `${(count / 1e6).toFixed(2)} MMAC`;
}

function formatRetrieval(result: RetrieveResult, spec: RetrievalModelSpec, top: number): string {
  const lines: string[] = [];
  const nt = result.captions.length;
  const nv = result.videoIds.length;
  lines.push(
    `${MODELS.retrieval.describe(spec).replace(/, \d+ videos? x \d+ captions?$/, "")}: ${nv} videos x ${nt} captions on ${result.backend}, ITM reranking the top ${Math.min(result.k, Math.max(nv, nt))} (k ${result.k}), ${result.pairsScored} pairs scored`,
  );
  lines.push("", "video -> captions (by ITM score; ITC similarity in brackets):");
  result.rankingI2t.forEach((order, v) => {
    const best = order.slice(0, top).map((c) => {
      const itm = result.itmI2t.data[v * nt + c]!;
      const itc = result.sim.data[v * nt + c]!;
      return `${result.captions[c]!.id} "${clip(result.captions[c]!.text, 32)}" ${itm.toFixed(3)} (${itc.toFixed(3)})`;
    });
    lines.push(`  ${result.videoIds[v]}: ${best.join("; ")}`);
  });
  lines.push("", "caption -> videos:");
  result.rankingT2i.forEach((order, c) => {
    const best = order
      .slice(0, top)
      .map((v) => `${result.videoIds[v]} ${result.itmT2i.data[c * nv + v]!.toFixed(3)}`);
    lines.push(
      `  ${result.captions[c]!.id} "${clip(result.captions[c]!.text)}": ${best.join("; ")}`,
    );
  });
  if (result.recall !== null) {
    lines.push("", recallLine("ITM", result.recall.itm), recallLine("ITC", result.recall.itc));
  }
  const t = result.timings;
  lines.push(
    "",
    `time: video ${t.videoMsPerClip.toFixed(1)} ms/clip (${macs(result.macs.video)}), text ${t.textMsPerCaption.toFixed(1)} ms/caption (${macs(result.macs.text)}), ITM ${t.itmMsPerPair.toFixed(1)} ms/pair (${macs(result.macs.pair)}); compile ${t.compileMs.toFixed(0)} ms, lower ${t.lowerMs.toFixed(0)} ms, total ${t.totalMs.toFixed(0)} ms`,
    videoPhaseLine(result),
  );
  return lines.join("\n");
}

/** The video phase: throughput and where its time went (decoding overlaps the encoder). */
function videoPhaseLine(result: RetrieveResult): string {
  const t = result.timings;
  const steps = t.preprocessSteps;
  return `videos: ${t.clipsPerSecond.toFixed(2)} clips/s (${result.videoIds.length} in ${t.videoWallMs.toFixed(0)} ms: encoder ${t.videoMs.toFixed(0)} ms, waiting for decoded clips ${t.preprocessWaitMs.toFixed(0)} ms, copies ${t.videoCopyMs.toFixed(0)} ms); decoding ${t.preprocessMs.toFixed(0)} ms (probe ${steps.probeMs.toFixed(0)}, decode ${steps.decodeMs.toFixed(0)}, resize ${steps.resizeMs.toFixed(0)}) on ${result.preprocessing}`;
}

export function registerRetrieve(program: Command): void {
  const command = addModelOptions(
    program
      .command("retrieve")
      .argument(
        "[videos...]",
        "video files, folders of videos, or folders of frames (default: synthetic clips)",
      )
      .description(
        "rank captions for every video and videos for every caption: ITC similarity, then ITM on each query's top k",
      )
      .option(
        "--captions <file>",
        "captions: one per line, or JSON [{text, id, videos}] (default: built-in)",
      )
      .option(
        "--gt <file>",
        'ground truth as JSON {"pairs": [["video", "caption"], ...]}: prints recall@1/5/10',
      )
      .option("--vocab <file>", "BERT vocab.txt (default: sprig's built-in stand-in vocabulary)")
      .option(
        "--weights <file>",
        "retrieval model weights: safetensors or a PyTorch .pth (default: seeded)",
      )
      .option("--k <n>", "candidates reranked with ITM per query (k_test)", "128")
      .option("--pairs-per-batch <n>", "ITM pairs per batch", "8")
      .option("--synthetic <n>", "synthetic clips when no videos are given (default 4)")
      .option("--prefetch <n>", PREFETCH_HELP)
      .option("--workers <n>", WORKERS_HELP)
      .option("--backend <name>", "backend (default: the fastest available)")
      .option("--threads <n>", "intra-op threads where the backend has them")
      .option("--kernels <choice>", "sprig's own block-sparse attention kernels: auto, on, off")
      .option("--json", "print one JSON object"),
    ["retrieval"],
  );
  addMemoryOption(command).action(async (videoArgs: string[], flags: RetrieveFlags) => {
    const pairsPerBatch = positiveInt(
      "--pairs-per-batch",
      "pairsPerBatch",
      flags.pairsPerBatch,
      8,
      4096,
    );
    const k = positiveInt("--k", "k", flags.k, 128);
    const input = await retrievalInputs(videoArgs, flags, { pairsPerBatch, embeddingsOnly: false });
    const groundTruth =
      flags.gt !== undefined
        ? await readGroundTruth(flags.gt)
        : input.captions.pairs.length > 0
          ? input.captions.pairs
          : undefined;
    const progress = (message: string) => {
      if (process.stderr.isTTY) process.stderr.write(`sprig: ${message}\n`);
    };
    for (const note of input.notes) process.stderr.write(`sprig: note: ${note}\n`);
    const result = await retrieve({
      ...input.options,
      k,
      pairsPerBatch,
      ...(groundTruth !== undefined
        ? { groundTruth, groundTruthSource: flags.gt ?? input.captions.source }
        : {}),
      onProgress: progress,
    });
    for (const note of result.notes) process.stderr.write(`sprig: ${note}\n`);
    if (result.weightReport !== null && !flags.json) {
      process.stderr.write(`sprig: ${summarizeWeightLoad(result.weightReport)}\n`);
    }
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({
          model: "retrieval",
          backend: result.backend,
          backend_detail: result.backendDetail,
          frames: input.spec.vision.frames,
          k: result.k,
          videos: result.videoIds,
          captions: result.captions,
          sim_i2t: scoresJson(result.sim),
          itm_scores_i2t: scoresJson(result.itmI2t),
          itm_scores_t2i: scoresJson(result.itmT2i),
          ranking_i2t: result.rankingI2t,
          ranking_t2i: result.rankingT2i,
          pairs_scored: result.pairsScored,
          recall: result.recall,
          timings_ms: result.timings,
          preprocessing: result.preprocessing,
          macs: result.macs,
          weights: result.weightReport ?? "seeded",
        })}\n`,
      );
      return;
    }
    process.stdout.write(`${formatRetrieval(result, input.spec, 3)}\n`);
  });
}

/**
 * `sprig embed [videos...] --out FILE.safetensors`: the retrieval model's normalised ITC
 * embeddings of every video (video_feat [Nv, E]) and caption (text_feat [Nt, E]), written
 * atomically with the video ids and captions in __metadata__, for search elsewhere.
 */
export function registerEmbed(program: Command): void {
  const command = addModelOptions(
    program
      .command("embed")
      .argument(
        "[videos...]",
        "video files, folders of videos, or folders of frames (default: synthetic clips)",
      )
      .description("write the ITC embeddings of videos and captions as safetensors")
      .requiredOption("--out <file>", "where to write the embeddings (safetensors)")
      .option(
        "--captions <file>",
        "captions: one per line, or JSON [{text, id, videos}] (default: built-in)",
      )
      .option("--vocab <file>", "BERT vocab.txt (default: sprig's built-in stand-in vocabulary)")
      .option(
        "--weights <file>",
        "retrieval model weights: safetensors or a PyTorch .pth (default: seeded)",
      )
      .option("--synthetic <n>", "synthetic clips when no videos are given (default 4)")
      .option("--prefetch <n>", PREFETCH_HELP)
      .option("--workers <n>", WORKERS_HELP)
      .option("--backend <name>", "backend (default: the fastest available)")
      .option("--threads <n>", "intra-op threads where the backend has them")
      .option("--kernels <choice>", "sprig's own block-sparse attention kernels: auto, on, off")
      .option("--json", "print one JSON object describing what was written"),
    ["retrieval"],
  );
  addMemoryOption(command).action(
    async (videoArgs: string[], flags: RetrieveFlags & { out: string }) => {
      const input = await retrievalInputs(videoArgs, flags, {
        pairsPerBatch: 8,
        embeddingsOnly: true,
      });
      for (const note of input.notes) process.stderr.write(`sprig: note: ${note}\n`);
      const result = await retrieve(input.options);
      const e = input.spec.embedDim;
      const rows = (feats: readonly Float32Array[]) => {
        const data = new Float32Array(feats.length * e);
        feats.forEach((f, i) => {
          data.set(f, i * e);
        });
        return f32Tensor([feats.length, e], data);
      };
      await writeSafetensors(
        flags.out,
        { video_feat: rows(result.videoFeats), text_feat: rows(result.textFeats) },
        {
          videos: JSON.stringify(result.videoIds),
          captions: JSON.stringify(result.captions),
          model: MODELS.retrieval.describe(input.spec),
          weights: input.weightFile?.path ?? "seeded",
        },
      );
      const summary = {
        out: flags.out,
        video_feat: [result.videoIds.length, e],
        text_feat: [result.captions.length, e],
        backend: result.backend,
        timings_ms: result.timings,
        preprocessing: result.preprocessing,
      };
      if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else
        process.stdout.write(
          `wrote ${flags.out}: video_feat [${result.videoIds.length}, ${e}], text_feat [${result.captions.length}, ${e}] (${result.backend}; video ${result.timings.videoMsPerClip.toFixed(1)} ms/clip, text ${result.timings.textMsPerCaption.toFixed(1)} ms/caption)\n${videoPhaseLine(result)}\n`,
        );
    },
  );
}
