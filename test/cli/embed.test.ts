import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readSafetensors } from "../../src/io/safetensors.js";
import { expectUserError, lines, SHARED, sprigTsx } from "../support/cli.js";
import { K1_CONFIG } from "../support/k1.js";
import { makeTestClips } from "../support/videos.js";

/**
 * `sprig embed` over a folder of videos decodes them ahead of the video encoder on a worker
 * thread (--prefetch, default one video batch): the file it writes is the one that decoding
 * one clip at a time (--prefetch 0) writes, and it says how fast and where the time went.
 */
const K1_SIDECAR = join(SHARED, "conformance/video-text/k1_retrieval_pixels.json");

let tmp: string;
let config: string;
let vocab: string;
let videos: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sprig-embed-"));
  config = join(tmp, "k1.json");
  await writeFile(
    config,
    JSON.stringify({ ...K1_CONFIG, vision: { ...K1_CONFIG.vision, batch: 2 } }),
  );
  const sidecar = JSON.parse(await readFile(K1_SIDECAR, "utf8"));
  vocab = join(tmp, "vocab.txt");
  await writeFile(vocab, `${sidecar.module_spec.vocab.join("\n")}\n`);
  videos = join(tmp, "videos");
  await mkdir(videos);
  makeTestClips(videos, 5, { step: 0.3, hue: 60 });
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const embed = (out: string, ...extra: string[]) =>
  sprigTsx(["embed", videos, "--config", config, "--vocab", vocab, "--out", out, ...extra]);

describe("sprig embed over many videos", () => {
  it("writes the same embeddings decoding ahead as one clip at a time, and reports clips/s", async () => {
    const ahead = join(tmp, "ahead.safetensors");
    const serial = join(tmp, "serial.safetensors");
    const [a, s] = [await embed(ahead), await embed(serial, "--prefetch", "0")];
    expect(a.code, a.stderr).toBe(0);
    expect(s.code, s.stderr).toBe(0);
    const [fa, fs] = [await readSafetensors(ahead), await readSafetensors(serial)];
    expect(fa.tensors.get("video_feat")!.shape).toEqual([5, 32]);
    expect(fa.tensors.get("video_feat")!.data).toEqual(fs.tensors.get("video_feat")!.data);
    expect(fa.tensors.get("text_feat")!.data).toEqual(fs.tensors.get("text_feat")!.data);
    const phase = (stdout: string) => lines(stdout).find((l) => l.startsWith("videos: "))!;
    expect(phase(a.stdout)).toMatch(/^videos: [\d.]+ clips\/s \(5 in \d+ ms: encoder \d+ ms/);
    expect(phase(a.stdout)).toContain("on a worker thread, 2 clips ahead");
    expect(phase(s.stdout)).toContain("on the main thread (prefetch 0: one clip at a time)");
  }, 120_000);

  it("writes the same embeddings with two video encoders on worker threads as with one", async () => {
    const two = join(tmp, "two.safetensors");
    const one = join(tmp, "one.safetensors");
    const backend = ["--backend", "tfjs-wasm"];
    const [a, b] = [
      await embed(two, ...backend, "--workers", "2"),
      await embed(one, ...backend, "--workers", "1"),
    ];
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const [fa, fb] = [await readSafetensors(two), await readSafetensors(one)];
    expect(fa.tensors.get("video_feat")!.data).toEqual(fb.tensors.get("video_feat")!.data);
    for (const bad of ["0", "65", "two"]) {
      const run = await embed(join(tmp, "never.safetensors"), "--workers", bad);
      expectUserError(run, '"workers"', "--workers");
    }
  }, 120_000);

  it("refuses a --prefetch that is not a decimal integer in [0, 4096]", async () => {
    for (const bad of ["-1", "1.5", "0x2", "5000"]) {
      const run = await embed(join(tmp, "never.safetensors"), "--prefetch", bad);
      expectUserError(run, '"prefetch"', "--prefetch", "[0, 4096]");
    }
  }, 120_000);
});
