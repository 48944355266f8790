import { ConfigError } from "../ir/errors.js";
import { f32Tensor, type HostTensor } from "../ir/tensor.js";
import type { MemoryBudget } from "../memory.js";
import { tokenWindow, type VisionModelSpec } from "../models/config.js";
import { MODELS } from "../models/index.js";
import { preprocessVideo } from "../inputs/video.js";
import { keptTokensRaster } from "../pictures/frames.js";
import type { Raster } from "../pictures/png.js";
import { reportPage } from "../pictures/report-page.js";
import type { Scene } from "../pictures/scene.js";
import type { CompiledModel } from "./compile.js";
import { layerPatternScene, layerPatterns } from "./patterns.js";
import { runModel } from "./run.js";

/**
 * The page `sprig report --html` writes (src/pictures/report-page.ts): the compiled model's
 * cost table and every layer's pattern and, when asked to run the vision encoder on a clip
 * (a real video, or the built-in synthetic clip), the tokens each drop kept, drawn over the
 * video's own frames or, for the synthetic clip, over the token grid.
 */
export interface HtmlReportOptions {
  readonly model: string;
  readonly description: string;
  readonly compiled: CompiledModel;
  readonly dense: CompiledModel | null;
  /** Run the vision encoder once on a clip and draw what each drop kept. */
  readonly run?: {
    readonly spec: VisionModelSpec;
    /** A video file or folder of frames; absent: the synthetic clip. */
    readonly video?: string;
    readonly backend?: string;
    readonly budget?: MemoryBudget;
  };
}

export async function htmlReport(options: HtmlReportOptions): Promise<string> {
  const patterns = new Map<number, Scene>();
  for (const entry of layerPatterns(options.compiled.graph)) {
    if (entry.layer !== null) patterns.set(entry.layer, layerPatternScene(entry, { zoom: 2 }));
  }
  const notes: string[] = [];
  const drops = options.run === undefined ? [] : await keptTokenPictures(options.run, notes);
  return reportPage({
    title: `sprig report: ${options.model}`,
    description: options.description,
    cost: options.compiled.cost,
    denseCost: options.dense?.cost ?? null,
    patterns,
    drops,
    notes,
  });
}

async function keptTokenPictures(
  run: NonNullable<HtmlReportOptions["run"]>,
  notes: string[],
): Promise<{ caption: string; picture: Raster }[]> {
  const { spec } = run;
  const grid = tokenWindow(spec.model, spec.frames);
  let pixels: { data: Float32Array; imageSize: number } | undefined;
  let inputs: Record<string, HostTensor> | undefined;
  if (run.video !== undefined) {
    const clip = await preprocessVideo(run.video, {
      frames: spec.frames,
      imageSize: spec.model.imageSize,
    });
    notes.push(
      `input: ${run.video} (${clip.vlen} frames, sampled ${Array.from(clip.frameIndices).join(", ")})`,
      ...clip.notes,
    );
    const data = clip.pixelValues.data;
    pixels = { data, imageSize: spec.model.imageSize };
    const batched = new Float32Array(spec.batch * data.length);
    for (let b = 0; b < spec.batch; b++) batched.set(data, b * data.length);
    inputs = { pixel_values: f32Tensor([spec.batch, ...clip.pixelValues.shape], batched) };
  } else {
    notes.push("input: the built-in synthetic clip (seeded noise), drawn as the token grid");
  }
  const result = await runModel(MODELS.vision, spec, {
    reps: 1,
    warmup: 0,
    ...(run.backend === undefined ? {} : { backend: run.backend }),
    ...(inputs === undefined ? {} : { inputs }),
    ...(run.budget === undefined ? {} : { budget: run.budget }),
  });
  notes.push(`run on ${result.backend}: ${result.medianMs.toFixed(0)} ms per forward`);
  const dropAfter = spec.sparsity.tokens?.dropAfter ?? [];
  const out: { caption: string; picture: Raster }[] = [];
  for (let j = 0; ; j++) {
    const index = result.outputs[`token_idx.${j}`];
    if (index === undefined) break;
    const kept = index.shape[1]!;
    const first = Array.from(index.data.subarray(0, kept));
    out.push({
      caption: `drop ${j}, after layer ${dropAfter[j] ?? "?"}: ${kept} of ${grid[0] * grid[1] * grid[2]} tokens of the clip kept (clip 0)`,
      picture: keptTokensRaster({ grid, kept: first, ...(pixels === undefined ? {} : { pixels }) }),
    });
  }
  if (out.length === 0) notes.push("the model drops no tokens, so there is nothing kept to draw");
  return out;
}

/** Checks that a run for the page applies to `model`. */
export function checkHtmlRun(model: string): void {
  if (model !== "vision") {
    throw new ConfigError(
      "run",
      `--run and --video draw the vision encoder's token drops; model ${model} is not the vision encoder`,
    );
  }
}
