/**
 * Throughput for many clips (issue 11, item 3), per backend, in one process:
 *
 * 1. Compute: the 8-frame SViTT encoder at batch 1, 4 and 8 on synthetic clips, each batch
 *    size compiled once, one untimed warm-up each, then rounds that alternate between the
 *    batch sizes (so drift on the shared machine hits all of them). clips/s = B / median
 *    forward. On onnx also the staged executable (`--kernels on`: block-sparse attention in
 *    sprig's native kernel between ONNX segments) at the same batch sizes.
 * 2. Decoding overlapped with compute: `retrieve({ embeddingsOnly: true })`, what `sprig
 *    embed` runs, over real video files made with ffmpeg's testsrc2 (320x240, 3-5 s, 25 fps,
 *    H.264) in a temporary folder, at video batch 1, 4 and 8, decoding one clip at a time
 *    on the main thread (prefetch 0) against decoding ahead on a worker thread (one batch
 *    ahead) and, on one-core backends (tfjs-wasm), against sprig's default there: one video
 *    encoder per core on worker threads, fed one batch ahead each; alternating. Per job: clips/s over the video phase, the encoder's
 *    time, the time it waited for decoded clips, the decoding steps summed over clips
 *    (probe = ffprobe counting frames, decode = ffmpeg, resize = bicubic + normalise) and
 *    the host copies; and from /proc the CPU time of this process (its threads and child
 *    processes) and of everything else on the machine over the video phase, as shares of
 *    the machine, so that a job disturbed by other work shows.
 * 3. The whole model: `retrieve` of those videos x captions with ITM reranking every pair
 *    (k 128), one at a time against overlapped.
 * 4. The onnx staged path explained: one model against staged at batch 1 (from 1), where the
 *    staged run's time goes (stagedProfile: per segment and per kernel call, bytes crossing
 *    out of onnxruntime), and onnxruntime's own profiler on both (SPRIG_ONNX_PROFILE):
 *    attention's ops in the one model against the native kernel, the other ops, and the
 *    time session.run takes beyond onnxruntime's model_run (onnxruntime-node copying the
 *    outputs into JavaScript buffers).
 *
 *   npx tsx bench/throughput.bench.ts [backend ...]     (default onnx tfjs-wasm)
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type BackendName,
  builtinVocab,
  compileVision,
  type Executable,
  type Graph,
  initWeights,
  loadBackend,
  median,
  type RetrieveResult,
  retrievalPreset,
  retrieve,
  stagedProfile,
  syntheticClip,
  visionPreset,
  workersFor,
} from "../src/index.js";
import { availableBackends } from "./common.js";
import { machineDescription } from "./harness.js";
import { BENCH_CAPTIONS } from "./retrieval.bench.js";

export const THROUGHPUT_BATCHES: readonly number[] = [1, 4, 8];
const FRAMES = 8;
/** Pause before each timed run, so that the previous executable's idle pool stops spinning. */
const SETTLE_MS = 50;

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- CPU accounting (Linux /proc; null elsewhere) --------------------------------------

interface CpuSnapshot {
  /** Busy jiffies of the whole machine, every core. */
  readonly busy: number;
  /** This process's user + system jiffies, its threads and its waited-for children. */
  readonly ours: number;
  readonly at: number;
}

/** Clock ticks per second of /proc's counters (USER_HZ; 100 on Linux). */
const USER_HZ = 100;

function cpuSnapshot(): CpuSnapshot | null {
  if (!existsSync("/proc/stat")) return null;
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq] = fields.slice(1).map(Number);
  // /proc/self/stat: after "(comm) ", field 11 is utime, 12 stime, 13 cutime, 14 cstime.
  const self = readFileSync("/proc/self/stat", "utf8").split(") ")[1]!.split(" ").map(Number);
  return {
    busy: user! + nice! + system! + irq! + softirq!,
    ours: self[11]! + self[12]! + self[13]! + self[14]!,
    at: performance.now(),
  };
}

/** Shares of the machine (all cores = 1) used by us and by others between two snapshots. */
export interface CpuShare {
  readonly ours: number;
  readonly others: number;
}

function cpuShare(a: CpuSnapshot | null, b: CpuSnapshot | null, cores: number): CpuShare | null {
  if (a === null || b === null || b.at <= a.at) return null;
  const capacity = ((b.at - a.at) / 1000) * USER_HZ * cores;
  const ours = b.ours - a.ours;
  return { ours: ours / capacity, others: Math.max(0, b.busy - a.busy - ours) / capacity };
}

const CORES = (() => {
  const text = existsSync("/proc/stat") ? readFileSync("/proc/stat", "utf8") : "";
  const count = text.split("\n").filter((line) => /^cpu\d+ /.test(line)).length;
  return count > 0 ? count : 1;
})();

// ---- 1. compute: batch 1, 4, 8 --------------------------------------------------------

export interface ComputeRow {
  readonly backend: string;
  /** "one model" or "staged" (onnx), else the backend's executable. */
  readonly variant: string;
  readonly batch: number;
  readonly medianMs: number;
  readonly samples: readonly number[];
  readonly clipsPerSecond: number;
  readonly detail: string;
}

interface Compiled {
  readonly batch: number;
  readonly graph: Graph;
  readonly executable: Executable;
  readonly inputs: ReturnType<typeof syntheticClip>;
}

/** The encoder at each batch size, compiled once, timed in alternating rounds. */
async function benchCompute(
  backend: BackendName,
  kernels: "auto" | "on",
  rounds: number,
): Promise<{ rows: ComputeRow[]; profiles: (ReturnType<typeof stagedProfile> & {})[] }> {
  const variant = backend !== "onnx" ? backend : kernels === "on" ? "staged" : "one model";
  const compiled: Compiled[] = [];
  try {
    for (const batch of THROUGHPUT_BATCHES) {
      const { graph } = compileVision({ ...visionPreset(FRAMES), batch });
      const weights = initWeights(graph, 0);
      const executable = await (await loadBackend(backend, { kernels })).compile(graph, weights);
      compiled.push({ batch, graph, executable, inputs: syntheticClip(graph, 0) });
      await executable.run(compiled.at(-1)!.inputs);
      console.log(`throughput ${backend} ${variant} batch ${batch}: compiled, warmed up`);
    }
    const samples: number[][] = compiled.map(() => []);
    for (let round = 0; round < rounds; round++) {
      const order = compiled.map((_, i) => i);
      if (round % 2 === 1) order.reverse();
      for (const i of order) {
        await pause(SETTLE_MS);
        const start = performance.now();
        await compiled[i]!.executable.run(compiled[i]!.inputs);
        samples[i]!.push(performance.now() - start);
      }
    }
    const profiles = compiled.flatMap((c) => {
      const profile = stagedProfile(c.executable);
      return profile === null ? [] : [profile];
    });
    const rows = compiled.map((c, i) => {
      const medianMs = median(samples[i]!);
      return {
        backend,
        variant,
        batch: c.batch,
        medianMs,
        samples: samples[i]!,
        clipsPerSecond: (1000 * c.batch) / medianMs,
        detail: c.executable.detail,
      };
    });
    return { rows, profiles };
  } finally {
    for (const c of compiled) c.executable.dispose();
  }
}

// ---- 2 and 3: real videos -------------------------------------------------------------

/** Makes `count` H.264 clips with ffmpeg's testsrc2 (320x240, 3-5 s, hue-shifted). */
export async function makeVideos(dir: string, count: number): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const path = join(dir, `clip${String(i).padStart(2, "0")}.mp4`);
    execFileSync("ffmpeg", [
      "-nostdin",
      "-v",
      "error",
      "-y",
      "-f",
      "lavfi",
      "-i",
      `testsrc2=size=320x240:rate=25:duration=${3 + (i % 3)}`,
      "-vf",
      `hue=h=${(i * 37) % 360}`,
      "-pix_fmt",
      "yuv420p",
      "-c:v",
      "libx264",
      "-preset",
      "veryfast",
      path,
    ]);
    paths.push(path);
  }
  return paths;
}

export interface VideoJobRow {
  readonly backend: string;
  /** "embed" (video and text encoders) or "retrieve" (with ITM on every pair). */
  readonly job: "embed" | "retrieve";
  readonly batch: number;
  /** 0: one clip at a time on the main thread; else clips decoded ahead on a worker. */
  readonly prefetch: number;
  /** Video encoders at once (1: on the main thread; more: one per worker thread). */
  readonly workers: number;
  readonly preprocessing: string;
  readonly videos: number;
  readonly captions: number;
  readonly runs: number;
  /** Medians over runs. */
  readonly clipsPerSecond: number;
  readonly videoWallMs: number;
  readonly encoderMs: number;
  readonly waitMs: number;
  readonly probeMs: number;
  readonly decodeMs: number;
  readonly resizeMs: number;
  readonly copyMs: number;
  readonly totalMs: number;
  /** Over the video phase (median of runs), or null without /proc. */
  readonly cpu: CpuShare | null;
}

/** One job, with CPU shares over its video phase (between retrieve's progress lines). */
async function videoJob(
  backend: BackendName,
  job: "embed" | "retrieve",
  paths: readonly string[],
  captions: number,
  batch: number,
  prefetch: number,
  workers: number,
): Promise<{ result: RetrieveResult; cpu: CpuShare | null }> {
  const base = retrievalPreset(FRAMES, "svitt");
  const spec = { ...base, vision: { ...base.vision, batch }, texts: Math.min(16, captions) };
  let start: CpuSnapshot | null = null;
  let end: CpuSnapshot | null = null;
  const result = await retrieve({
    spec,
    videos: paths.map((path, i) => ({ id: `clip${i}`, path })),
    captions: BENCH_CAPTIONS.slice(0, captions).map((text, i) => ({ id: `c${i}`, text })),
    vocab: builtinVocab(),
    embeddingsOnly: job === "embed",
    k: 128,
    pairsPerBatch: 8,
    prefetch,
    workers,
    backend,
    onProgress: (message) => {
      if (message.startsWith("encoding ")) start = cpuSnapshot();
      if (message === `encoded ${paths.length}/${paths.length} videos`) end = cpuSnapshot();
    },
  });
  return { result, cpu: cpuShare(start, end, CORES) };
}

function jobRow(
  backend: string,
  job: "embed" | "retrieve",
  batch: number,
  prefetch: number,
  workers: number,
  runs: readonly { result: RetrieveResult; cpu: CpuShare | null }[],
): VideoJobRow {
  const med = (pick: (t: RetrieveResult["timings"]) => number) =>
    median(runs.map((r) => pick(r.result.timings)));
  const cpus = runs.flatMap((r) => (r.cpu === null ? [] : [r.cpu]));
  const first = runs[0]!.result;
  return {
    backend,
    job,
    batch,
    prefetch,
    workers,
    preprocessing: first.preprocessing,
    videos: first.videoIds.length,
    captions: first.captions.length,
    runs: runs.length,
    clipsPerSecond: med((t) => t.clipsPerSecond),
    videoWallMs: med((t) => t.videoWallMs),
    encoderMs: med((t) => t.videoMs),
    waitMs: med((t) => t.preprocessWaitMs),
    probeMs: med((t) => t.preprocessSteps.probeMs),
    decodeMs: med((t) => t.preprocessSteps.decodeMs),
    resizeMs: med((t) => t.preprocessSteps.resizeMs),
    copyMs: med((t) => t.videoCopyMs),
    totalMs: med((t) => t.totalMs),
    cpu:
      cpus.length === 0
        ? null
        : { ours: median(cpus.map((c) => c.ours)), others: median(cpus.map((c) => c.others)) },
  };
}

/**
 * Jobs at each batch: one clip at a time, decoded ahead for one encoder, and (where the
 * backend's default runs several encoders, one-core backends) decoded ahead for that many
 * encoders on worker threads; `rounds` of each, alternating within a round.
 */
async function benchVideoJobs(
  backend: BackendName,
  job: "embed" | "retrieve",
  paths: readonly string[],
  captions: number,
  batches: readonly number[],
  rounds: number,
): Promise<VideoJobRow[]> {
  const loaded = await loadBackend(backend);
  const configs = batches.flatMap((batch) => {
    const workers = workersFor(loaded, Math.ceil(paths.length / batch));
    return [
      { batch, prefetch: 0, workers: 1 },
      { batch, prefetch: batch, workers: 1 },
      ...(workers > 1 ? [{ batch, prefetch: batch * workers, workers }] : []),
    ];
  });
  const runs = configs.map(() => [] as { result: RetrieveResult; cpu: CpuShare | null }[]);
  for (let round = 0; round < rounds; round++) {
    const order = configs.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const { batch, prefetch, workers } = configs[i]!;
      const run = await videoJob(backend, job, paths, captions, batch, prefetch, workers);
      runs[i]!.push(run);
      const t = run.result.timings;
      console.log(
        `throughput ${backend} ${job} batch ${batch} prefetch ${prefetch} workers ${workers} (${round + 1}/${rounds}): ${t.clipsPerSecond.toFixed(2)} clips/s, encoder ${t.videoMs.toFixed(0)} ms, waited ${t.preprocessWaitMs.toFixed(0)} ms, decoding ${t.preprocessMs.toFixed(0)} ms; CPU ours ${run.cpu === null ? "?" : (100 * run.cpu.ours).toFixed(0)}%, others ${run.cpu === null ? "?" : (100 * run.cpu.others).toFixed(0)}%`,
      );
    }
  }
  return configs.map(({ batch, prefetch, workers }, i) =>
    jobRow(backend, job, batch, prefetch, workers, runs[i]!),
  );
}

// ---- 4. the staged path, explained -----------------------------------------------------

export interface StagedExplanation {
  /** Medians from part 1 at batch 1. */
  readonly oneModelMs: number;
  readonly stagedMs: number;
  readonly segments: number;
  readonly hostNodes: number;
  /** Per staged run: session.run of every segment, native kernel calls, MiB crossing. */
  readonly segmentsMs: number;
  readonly kernelMs: number;
  readonly crossingMiB: number;
  /** onnxruntime's profiler, per run (profiled runs, slower than unprofiled ones). */
  readonly profiled: {
    readonly oneModel: OrtProfileSummary;
    readonly staged: OrtProfileSummary;
    /** session.run time of the profiled staged runs, segments summed, per run. */
    readonly stagedSessionRunMs: number;
    /** The native kernel calls of the profiled staged runs, per run. */
    readonly stagedKernelMs: number;
  };
}

export interface OrtProfileSummary {
  /** onnxruntime's model_run, summed over sessions, per run. */
  readonly modelRunMs: number;
  /** Kernel time of the nodes lowered from block-sparse attention nodes, per run. */
  readonly attentionMs: number;
  /** Kernel time of every other node, per run. */
  readonly otherMs: number;
  /** Kernel time per onnxruntime op type, per run, largest first (top 8). */
  readonly byOp: readonly (readonly [string, number])[];
}

interface OrtEvent {
  readonly cat: string;
  readonly name: string;
  readonly dur: number;
  readonly args?: { readonly op_name?: string };
}

/**
 * Sums onnxruntime profile files (one per session) over the profiled runs, skipping each
 * session's first run (warm-up). Node names carry the sprig node they were lowered from
 * ("node/%19/MultiHeadAttention"), which attributes them to attention or not.
 */
async function summarizeOrtProfiles(
  dir: string,
  attentionIds: ReadonlySet<number>,
  runs: number,
): Promise<OrtProfileSummary> {
  let modelRun = 0;
  let attention = 0;
  let other = 0;
  const byOp = new Map<string, number>();
  for (const file of await readdir(dir)) {
    const events = JSON.parse(await readFile(join(dir, file), "utf8")) as OrtEvent[];
    const sessionRuns = events.filter((e) => e.cat === "Session" && e.name === "model_run");
    modelRun += sessionRuns.slice(1).reduce((sum, e) => sum + e.dur, 0);
    const nodes = events.filter((e) => e.cat === "Node" && e.name.endsWith("_kernel_time"));
    const perRun = nodes.length / sessionRuns.length;
    for (const e of nodes.slice(perRun)) {
      const id = /(?:^|\/)%(\d+)\//.exec(e.name)?.[1];
      if (id !== undefined && attentionIds.has(Number(id))) attention += e.dur;
      else other += e.dur;
      const op = e.args?.op_name ?? "?";
      byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    }
  }
  const perRunMs = (us: number) => us / 1000 / runs;
  return {
    modelRunMs: perRunMs(modelRun),
    attentionMs: perRunMs(attention),
    otherMs: perRunMs(other),
    byOp: [...byOp]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([op, us]) => [op, perRunMs(us)] as const),
  };
}

/** Runs the batch-1 encoder `runs` + 1 times under onnxruntime's profiler. */
async function profiledRuns(
  kernels: "off" | "on",
  runs: number,
): Promise<{ summary: OrtProfileSummary; sessionRunMs: number; kernelMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), "sprig-ort-profile-"));
  const previous = process.env.SPRIG_ONNX_PROFILE;
  process.env.SPRIG_ONNX_PROFILE = dir;
  try {
    const { graph } = compileVision(visionPreset(FRAMES));
    const executable = await (await loadBackend("onnx", { kernels })).compile(
      graph,
      initWeights(graph, 0),
    );
    const inputs = syntheticClip(graph, 0);
    for (let i = 0; i <= runs; i++) await executable.run(inputs);
    const profile = stagedProfile(executable);
    executable.dispose();
    // Sessions write their profile when released (asynchronously).
    const sessions = profile === null ? 1 : profile.segments;
    for (let wait = 0; wait < 100 && (await readdir(dir)).length < sessions; wait++) {
      await pause(100);
    }
    const attentionIds = new Set(
      graph.nodes.filter((n) => n.op === "blockSparseAttention").map((n) => n.id),
    );
    const summary = await summarizeOrtProfiles(dir, attentionIds, runs);
    // The staged profile counts every run; the first (warm-up) is in it too.
    const scale = profile === null ? 0 : runs / profile.runs;
    const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
    return {
      summary,
      sessionRunMs: profile === null ? 0 : (sum(profile.segmentMs) * scale) / runs,
      kernelMs: profile === null ? 0 : (sum(profile.hostMs) * scale) / runs,
    };
  } finally {
    if (previous === undefined) delete process.env.SPRIG_ONNX_PROFILE;
    else process.env.SPRIG_ONNX_PROFILE = previous;
    await rm(dir, { recursive: true, force: true });
  }
}

async function explainStaged(
  oneModel: ComputeRow,
  staged: ComputeRow,
  profile: NonNullable<ReturnType<typeof stagedProfile>>,
  profiledRunCount: number,
): Promise<StagedExplanation> {
  const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
  const single = await profiledRuns("off", profiledRunCount);
  const split = await profiledRuns("on", profiledRunCount);
  return {
    oneModelMs: oneModel.medianMs,
    stagedMs: staged.medianMs,
    segments: profile.segments,
    hostNodes: profile.hostNodes,
    segmentsMs: sum(profile.segmentMs) / profile.runs,
    kernelMs: sum(profile.hostMs) / profile.runs,
    crossingMiB: profile.crossingBytes / 2 ** 20,
    profiled: {
      oneModel: single.summary,
      staged: split.summary,
      stagedSessionRunMs: split.sessionRunMs,
      stagedKernelMs: split.kernelMs,
    },
  };
}

// ---- the suite ---------------------------------------------------------------------------

export interface ThroughputOptions {
  /** Alternating rounds of the compute part (default: 5 on onnx, 2 elsewhere). */
  readonly rounds?: number;
  /** Real videos in the embed jobs (default 16 on onnx, 8 elsewhere). */
  readonly videos?: number;
  /** Rounds of the video jobs (default 2 on onnx, 1 elsewhere). */
  readonly jobRounds?: number;
  /** Batch sizes of the video jobs (default 1, 4, 8). */
  readonly jobBatches?: readonly number[];
}

export interface ThroughputResult {
  readonly machine: string;
  readonly compute: readonly ComputeRow[];
  readonly jobs: readonly VideoJobRow[];
  readonly staged: StagedExplanation | null;
}

const onnxFirst = (backend: string, onnx: number, other: number) =>
  backend === "onnx" ? onnx : other;

export async function benchThroughput(
  backends: readonly BackendName[],
  options: ThroughputOptions = {},
): Promise<ThroughputResult> {
  const compute: ComputeRow[] = [];
  const jobs: VideoJobRow[] = [];
  let staged: StagedExplanation | null = null;
  const dir = await mkdtemp(join(tmpdir(), "sprig-throughput-"));
  try {
    const most = Math.max(16, options.videos ?? 0);
    const allPaths = await makeVideos(dir, most);
    for (const backend of backends) {
      const rounds = options.rounds ?? onnxFirst(backend, 5, 2);
      const one = await benchCompute(backend, "auto", rounds);
      compute.push(...one.rows);
      if (backend === "onnx") {
        const split = await benchCompute(backend, "on", rounds);
        compute.push(...split.rows);
        const profile = split.profiles[0];
        if (profile !== undefined) {
          staged = await explainStaged(one.rows[0]!, split.rows[0]!, profile, 3);
        }
      }
      const count = options.videos ?? onnxFirst(backend, 16, 8);
      const paths = allPaths.slice(0, count);
      const jobRounds = options.jobRounds ?? onnxFirst(backend, 2, 1);
      const batches = options.jobBatches ?? THROUGHPUT_BATCHES;
      jobs.push(...(await benchVideoJobs(backend, "embed", paths, 1, batches, jobRounds)));
      // The whole model: every video against as many captions (at most 16), at the batch of
      // the best embed job.
      const best = jobs
        .filter((r) => r.backend === backend && r.prefetch > 0)
        .sort((a, b) => b.clipsPerSecond - a.clipsPerSecond)[0]!.batch;
      jobs.push(
        ...(await benchVideoJobs(
          backend,
          "retrieve",
          paths,
          Math.min(16, count),
          [best],
          jobRounds,
        )),
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { machine: machineDescription(), compute, jobs, staged };
}

// ---- tables -------------------------------------------------------------------------------

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

export function computeTable(rows: readonly ComputeRow[]): string {
  const lines = [
    "| backend | executable | batch | forward ms (median) | ms per clip | clips/s | vs batch 1 | samples |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of rows) {
    const base = rows.find(
      (x) => x.backend === r.backend && x.variant === r.variant && x.batch === 1,
    );
    lines.push(
      `| ${r.backend} | ${r.variant} | ${r.batch} | ${ms(r.medianMs)} | ${ms(r.medianMs / r.batch)} | ${r.clipsPerSecond.toFixed(2)} | ${base === undefined ? "" : `${(r.clipsPerSecond / base.clipsPerSecond).toFixed(2)}x`} | ${r.samples.length} |`,
    );
  }
  return lines.join("\n");
}

export function jobsTable(rows: readonly VideoJobRow[]): string {
  const lines = [
    "| backend | job | videos x captions | batch | decoding | encoders | clips/s (video phase) | vs one at a time | video phase ms | encoder ms | waited ms | probe / decode / resize ms | copies ms | CPU: ours / others | job total ms | runs |",
    "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|",
  ];
  for (const r of rows) {
    const serial = rows.find(
      (x) => x.backend === r.backend && x.job === r.job && x.batch === r.batch && x.prefetch === 0,
    );
    const gain =
      serial === undefined || r.prefetch === 0
        ? ""
        : `${(r.clipsPerSecond / serial.clipsPerSecond).toFixed(2)}x`;
    lines.push(
      `| ${r.backend} | ${r.job} | ${r.videos} x ${r.captions} | ${r.batch} | ${r.prefetch === 0 ? "one at a time, main thread" : `worker, ${r.prefetch} ahead`} | ${r.workers === 1 ? "1, main thread" : `${r.workers}, worker threads`} | ${r.clipsPerSecond.toFixed(2)} | ${gain} | ${ms(r.videoWallMs)} | ${ms(r.encoderMs)} | ${ms(r.waitMs)} | ${ms(r.probeMs)} / ${ms(r.decodeMs)} / ${ms(r.resizeMs)} | ${ms(r.copyMs)} | ${r.cpu === null ? "?" : `${pct(r.cpu.ours)} / ${pct(r.cpu.others)}`} | ${ms(r.totalMs)} | ${r.runs} |`,
    );
  }
  return lines.join("\n");
}

export function stagedSection(s: StagedExplanation): string {
  const p = s.profiled;
  const byOp = (summary: OrtProfileSummary) =>
    summary.byOp.map(([op, t]) => `${op} ${ms(t)}`).join(", ");
  return [
    `One onnxruntime model ${ms(s.oneModelMs)} ms, staged ${ms(s.stagedMs)} ms per forward (batch 1, medians above): staged/one = ${(s.stagedMs / s.oneModelMs).toFixed(2)}. The staged run: ${s.segments} ONNX segments (one session each) around ${s.hostNodes} native attention calls; per run ${ms(s.segmentsMs)} ms in the segments' session.run, ${ms(s.kernelMs)} ms in the kernel, ${s.crossingMiB.toFixed(1)} MiB of tensors handed out of onnxruntime between stages (each one a copy into a new JavaScript buffer).`,
    "",
    "onnxruntime's profiler (SPRIG_ONNX_PROFILE), per run, 3 profiled runs after a warm-up:",
    "",
    "| per forward, ms | one model | staged |",
    "|---|---:|---:|",
    `| onnxruntime model_run (all sessions) | ${ms(p.oneModel.modelRunMs)} | ${ms(p.staged.modelRunMs)} |`,
    `| block-sparse attention: onnxruntime's ops / sprig's kernel | ${ms(p.oneModel.attentionMs)} | ${ms(p.stagedKernelMs)} |`,
    `| every other op (onnxruntime kernels) | ${ms(p.oneModel.otherMs)} | ${ms(p.staged.otherMs + p.staged.attentionMs)} |`,
    `| session.run beyond model_run (onnxruntime-node: feeds, output copies) | | ${ms(p.stagedSessionRunMs - p.staged.modelRunMs)} |`,
    "",
    `Largest op types, one model: ${byOp(p.oneModel)}; staged: ${byOp(p.staged)}.`,
  ].join("\n");
}

export function throughputSection(result: ThroughputResult): string[] {
  return [
    "Compute, synthetic clips (SViTT, 8 frames):",
    computeTable(result.compute),
    "Real videos (testsrc2 320x240, H.264): decoding one clip at a time against decoding ahead on a worker thread while the encoder runs, and, on one-core backends, that many video encoders on worker threads (sprig's default there). Video phase: first clip asked for to last embedding. Decoding steps are summed over clips wherever they ran (on the worker they overlap the encoder). CPU: shares of the whole machine over the video phase, this process with its threads and child processes (ffprobe, ffmpeg) against everything else.",
    jobsTable(result.jobs),
    ...(result.staged === null ? [] : ["The onnx staged path:", stagedSection(result.staged)]),
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const wanted = process.argv.slice(2) as BackendName[];
  const { ready, skipped } = await availableBackends(
    wanted.length > 0 ? wanted : ["onnx", "tfjs-wasm"],
  );
  for (const line of skipped) console.log(`skipped ${line}`);
  const result = await benchThroughput(ready);
  console.log(`${result.machine}\n\n${throughputSection(result).join("\n\n")}`);
}
