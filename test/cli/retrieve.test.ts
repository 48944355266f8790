import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSafetensors } from "../../src/io/safetensors.js";
import { expectUserError, lines, SHARED, sprigTsx } from "../support/cli.js";
import { K1_CONFIG } from "../support/k1.js";
import { makeTestClips } from "../support/videos.js";

/**
 * `sprig retrieve` and `sprig embed` end to end: the built-in default on a fresh machine,
 * and real inputs (videos made with ffmpeg, a captions file with ground truth, the k1
 * PyTorch checkpoint and its vocabulary) on onnx; bad inputs give one message and exit 1.
 */
const INPUTS = join(SHARED, "conformance/inputs");
const K1_SIDECAR = join(SHARED, "conformance/video-text/k1_retrieval_pixels.json");

let tmp: string;
let config: string;
let vocab: string;
let videos: string;
let captions: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sprig-retrieve-"));
  config = join(tmp, "k1.json");
  await writeFile(config, JSON.stringify(K1_CONFIG));
  const sidecar = JSON.parse(await readFile(K1_SIDECAR, "utf8"));
  vocab = join(tmp, "vocab.txt");
  await writeFile(vocab, `${sidecar.module_spec.vocab.join("\n")}\n`);
  videos = join(tmp, "videos");
  await mkdir(videos);
  makeTestClips(videos, 3, { step: 0.4, hue: 90 });
  captions = join(tmp, "captions.json");
  const texts: string[] = sidecar.module_spec.texts;
  await writeFile(
    captions,
    JSON.stringify(texts.map((text, i) => ({ id: `c${i}`, text, videos: `clip${i % 3}` }))),
  );
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("sprig retrieve", () => {
  it("works with no arguments (seeded full-size model, synthetic clips, built-in captions)", async () => {
    const run = await sprigTsx(["retrieve", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.videos).toHaveLength(4);
    expect(result.captions).toHaveLength(4);
    expect(result.frames).toBe(8);
    expect(result.sim_i2t).toHaveLength(4);
    expect(result.sim_i2t[0]).toHaveLength(4);
    expect(result.itm_scores_i2t).toHaveLength(4);
    expect(result.itm_scores_t2i).toHaveLength(4);
    expect(result.ranking_i2t[0].slice().sort()).toEqual([0, 1, 2, 3]);
    expect(result.pairs_scored).toBe(16);
    expect(result.recall).toBeNull();
    for (const key of ["videoMsPerClip", "textMsPerCaption", "itmMsPerPair", "totalMs"]) {
      expect(result.timings_ms[key]).toBeGreaterThan(0);
    }
    expect(result.macs.video).toBeGreaterThan(7e10);
  }, 300_000);

  it("ranks real videos against a captions file from a PyTorch checkpoint on onnx, with recall", async () => {
    const run = await sprigTsx([
      "retrieve",
      videos,
      "--captions",
      captions,
      "--weights",
      join(INPUTS, "k1_checkpoint.pth"),
      "--config",
      config,
      "--vocab",
      vocab,
      "--backend",
      "onnx",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const out = lines(run.stdout);
    expect(out[0]).toContain("3 videos x 4 captions on onnx");
    expect(out.some((l) => l.startsWith("  clip0: "))).toBe(true);
    expect(out.some((l) => l.startsWith("recall (ITM): "))).toBe(true);
    expect(out.some((l) => l.startsWith("recall (ITC): "))).toBe(true);
    expect(run.stderr).toContain("156 tensors from");
  }, 120_000);

  it("writes the embeddings with sprig embed", async () => {
    const out = join(tmp, "emb.safetensors");
    const run = await sprigTsx([
      "embed",
      videos,
      "--captions",
      captions,
      "--weights",
      join(INPUTS, "k1_checkpoint.pth"),
      "--config",
      config,
      "--vocab",
      vocab,
      "--out",
      out,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const file = await readSafetensors(out);
    expect(file.tensors.get("video_feat")!.shape).toEqual([3, 32]);
    expect(file.tensors.get("text_feat")!.shape).toEqual([4, 32]);
    expect(JSON.parse(file.metadata.videos!)).toEqual(["clip0", "clip1", "clip2"]);
    // normalised projections
    const v = file.tensors.get("video_feat")!.data;
    const norm = Math.hypot(...Array.from(v.subarray(0, 32)));
    expect(norm).toBeCloseTo(1, 5);
  }, 120_000);
});

describe("bad retrieval input: one message, exit 1", () => {
  const small = () => ["--config", config, "--vocab", vocab, "--backend", "reference"];

  it("an empty captions file", async () => {
    const path = join(tmp, "empty.txt");
    await writeFile(path, "\n\n");
    expectUserError(
      await sprigTsx(["retrieve", "--captions", path, ...small()]),
      "empty.txt",
      "no captions",
    );
  });

  it("a vocab with a duplicate token", async () => {
    const path = join(tmp, "dup-vocab.txt");
    await writeFile(path, "[PAD]\n[UNK]\n[CLS]\ndog\ndog\n");
    expectUserError(
      await sprigTsx(["retrieve", "--config", config, "--vocab", path, "--backend", "reference"]),
      "dup-vocab.txt",
      '"dog"',
    );
  });

  it("a vocab without [CLS]", async () => {
    const path = join(tmp, "no-cls.txt");
    await writeFile(path, "[PAD]\n[UNK]\ndog\n");
    expectUserError(
      await sprigTsx(["retrieve", "--config", config, "--vocab", path, "--backend", "reference"]),
      "no-cls.txt",
      "[CLS]",
    );
  });

  it("a ground-truth file naming an unknown video", async () => {
    const path = join(tmp, "gt.json");
    await writeFile(path, JSON.stringify({ pairs: [["clip9", "c0"]] }));
    expectUserError(
      await sprigTsx(["retrieve", videos, "--captions", captions, "--gt", path, ...small()]),
      "gt.json",
      '"clip9"',
    );
  });

  it("a directory without videos or frames", async () => {
    const dir = join(tmp, "nothing");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "readme.txt"), "no videos here");
    expectUserError(await sprigTsx(["retrieve", dir, ...small()]), "nothing", "no videos");
  });

  it("weights missing from a checkpoint", async () => {
    // a vision-only conversion has none of the text encoder's weights
    const visionConfig = join(tmp, "k1-vision.json");
    await writeFile(visionConfig, JSON.stringify(K1_CONFIG.vision));
    const path = join(tmp, "vision-only.safetensors");
    const run = await sprigTsx([
      "convert",
      join(INPUTS, "k1_checkpoint.pth"),
      "--model",
      "vision",
      "--config",
      visionConfig,
      "--out",
      path,
    ]);
    expect(run.code, run.stderr).toBe(0);
    expectUserError(
      await sprigTsx(["retrieve", "--weights", path, ...small()]),
      "vision-only.safetensors",
      "missing",
    );
  });
});
