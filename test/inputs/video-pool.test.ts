import { execFileSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { preprocessVideo, VideoError } from "../../src/inputs/video.js";
import {
  errorOf,
  failureOf,
  openVideoPreprocessor,
  type VideoPreprocessor,
} from "../../src/inputs/video-pool.js";
import { ConfigError } from "../../src/ir/errors.js";

/**
 * Preprocessing on a worker thread (src/inputs/video-pool.ts) is preprocessVideo run
 * elsewhere: the same result bit for bit, the same errors (class and message), and
 * cancelling or closing leaves no ffmpeg behind.
 */
const INPUTS = fileURLToPath(new URL("../../../shared/conformance/inputs/", import.meta.url));
const LOSSY = `${INPUTS}clip.mp4`;

let tmp: string;
let longVideo: string;
let pool: VideoPreprocessor;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sprig-pool-"));
  longVideo = join(tmp, "long.avi");
  execFileSync("ffmpeg", [
    "-nostdin",
    "-v",
    "error",
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=320x240:rate=25:duration=20",
    "-c:v",
    "mpeg4",
    longVideo,
  ]);
  pool = openVideoPreprocessor();
});
afterAll(async () => {
  await pool?.close();
  await rm(tmp, { recursive: true, force: true });
});

/** Child processes of this process (ffmpeg and ffprobe, whichever thread spawned them). */
async function childProcesses(): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === process.pid) children.push(Number(entry));
  }
  return children;
}

/** The rejection of `promise` (fails the test when it resolves). */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}

describe("openVideoPreprocessor", () => {
  it("runs on a worker thread, also from the TypeScript sources", () => {
    expect(pool.where).toBe("a worker thread");
  });

  it("gives exactly preprocessVideo's result", async () => {
    const options = { frames: 4, imageSize: 64 };
    const [inWorker, here] = await Promise.all([
      pool.preprocess(LOSSY, options),
      preprocessVideo(LOSSY, options),
    ]);
    expect(inWorker.pixelValues.shape).toEqual([4, 3, 64, 64]);
    expect(inWorker.pixelValues.data).toEqual(here.pixelValues.data);
    expect(inWorker.frameIndices).toEqual(here.frameIndices);
    expect({ ...inWorker, pixelValues: null, frameIndices: null, timings: null }).toEqual({
      ...here,
      pixelValues: null,
      frameIndices: null,
      timings: null,
    });
    for (const step of ["probeMs", "decodeMs", "resizeMs"] as const) {
      expect(inWorker.timings[step]).toBeGreaterThan(0);
    }
  });

  it("runs several requests at once, each answered with its own result", async () => {
    const sizes = [16, 24, 32];
    const results = await Promise.all(
      sizes.map((imageSize) => pool.preprocess(LOSSY, { frames: 2, imageSize })),
    );
    expect(results.map((r) => r.pixelValues.shape)).toEqual(sizes.map((s) => [2, 3, s, s]));
  });

  it("rejects with the same error class and message as preprocessVideo", async () => {
    const missing = join(tmp, "missing.mp4");
    const truncated = join(tmp, "truncated.mp4");
    await writeFile(truncated, (await readFile(LOSSY)).subarray(0, 2000));
    for (const [path, options, type] of [
      [missing, { frames: 4 }, VideoError],
      [truncated, { frames: 4 }, VideoError],
      [LOSSY, { frames: 0 }, ConfigError],
      [LOSSY, { frames: 4, imageSize: 16, maxBytes: 80_000 }, VideoError],
    ] as const) {
      const expected = await rejectionOf(preprocessVideo(path, options));
      const got = await rejectionOf(pool.preprocess(path, options));
      expect(expected).toBeInstanceOf(type);
      expect(got).toBeInstanceOf(type);
      expect(got.message).toBe(expected.message);
    }
  });

  it("an abort kills the worker's ffprobe and rejects with an AbortError", async () => {
    const before = await childProcesses();
    const controller = new AbortController();
    let settled = false;
    const run = pool.preprocess(longVideo, { frames: 4, signal: controller.signal }).finally(() => {
      settled = true;
    });
    run.catch(() => undefined);
    while (!settled && (await childProcesses()).length === before.length) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(settled, "the tool finished before it could be aborted").toBe(false);
    controller.abort();
    expect((await rejectionOf(run)).name).toBe("AbortError");
    expect(await childProcesses()).toEqual(before);
  });

  it("close() cancels what runs, waits for its ffmpeg to go, and refuses new work", async () => {
    const own = openVideoPreprocessor();
    const before = await childProcesses();
    const run = own.preprocess(longVideo, { frames: 4 });
    run.catch(() => undefined);
    while ((await childProcesses()).length === before.length) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await own.close();
    expect(await childProcesses()).toEqual(before);
    expect((await rejectionOf(run)).name).toBe("AbortError");
    await expect(own.preprocess(LOSSY, { frames: 2 })).rejects.toThrow("closed");
  });
});

describe("failures as data", () => {
  it("round-trips the user errors with their class, fields and message", () => {
    const video = new VideoError("/x/clip.mp4", "is damaged: something");
    const back = errorOf(failureOf(video));
    expect(back).toBeInstanceOf(VideoError);
    expect(back.message).toBe(video.message);
    expect((back as VideoError).file).toBe("/x/clip.mp4");
    const config = new ConfigError("frames", "must be an integer in [1, 1024], got 0");
    const again = errorOf(failureOf(config));
    expect(again).toBeInstanceOf(ConfigError);
    expect((again as ConfigError).field).toBe("frames");
    expect(again.message).toBe(config.message);
  });

  it("keeps a bug a bug: not a user error, with the worker's stack", () => {
    const bug = new TypeError("x is undefined");
    const back = errorOf(failureOf(bug));
    expect(back).not.toBeInstanceOf(VideoError);
    expect(back.message).toBe("video worker: x is undefined");
    expect(back.stack).toContain("TypeError");
  });
});
