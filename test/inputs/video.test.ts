import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PpmStreamReader, type RgbFrame } from "../../src/inputs/ffmpeg.js";
import type { FramesU8 } from "../../src/inputs/resize.js";
import {
  preprocessVideo,
  probeVideo,
  readVideoFrames,
  VideoError,
  type VideoInfo,
} from "../../src/inputs/video.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { ConfigError } from "../../src/ir/errors.js";
import type { HostTensor } from "../../src/ir/tensor.js";

const INPUTS = fileURLToPath(new URL("../../../shared/conformance/inputs/", import.meta.url));
const LOSSLESS = `${INPUTS}clip_lossless.mov`;
const LOSSY = `${INPUTS}clip.mp4`;
const T4 = [7, 22, 37, 52];

interface VideoFacts {
  readonly vlen: number;
  readonly width: number;
  readonly height: number;
  readonly codec: string;
  readonly frame_sha256_rgb24: readonly string[];
}

let tensors: Map<string, HostTensor>;
let videos: Record<string, VideoFacts>;
let tmp: string;
/** Fixtures made from the conformance clips with ffmpeg (test side only). */
let pngFolder: string;
let jpegFolder: string;
let matroska: string;
let longVideo: string;

function ffmpeg(...args: string[]): void {
  execFileSync("ffmpeg", ["-nostdin", "-v", "error", "-y", ...args]);
}

beforeAll(async () => {
  tensors = (await readSafetensors(`${INPUTS}v1_video_preprocess.safetensors`)).tensors;
  videos = JSON.parse(await readFile(`${INPUTS}v1_video_preprocess.json`, "utf8")).videos;
  tmp = await mkdtemp(join(tmpdir(), "sprig-video-"));
  pngFolder = join(tmp, "png");
  jpegFolder = join(tmp, "jpeg");
  await mkdir(pngFolder);
  await mkdir(jpegFolder);
  ffmpeg("-i", LOSSLESS, join(pngFolder, "%04d.png"));
  ffmpeg("-i", LOSSLESS, "-q:v", "2", join(jpegFolder, "%04d.jpg"));
  matroska = join(tmp, "clip.mkv");
  ffmpeg("-i", LOSSLESS, "-c", "copy", matroska);
  longVideo = join(tmp, "long.avi");
  ffmpeg(
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=320x240:rate=25:duration=20",
    "-c:v",
    "mpeg4",
    longVideo,
  );
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function u8(name: string): Uint8Array {
  const found = tensors.get(name);
  if (found === undefined) throw new Error(`conformance tensor ${name} is missing`);
  return Uint8Array.from(found.data);
}

/** Frame t of [T, 3, H, W] uint8 as interleaved rgb24 (how the sidecar hashes frames). */
function rgb24(frames: FramesU8, t: number): Uint8Array {
  const [, , height, width] = frames.shape;
  const pixels = height * width;
  const plane = frames.data.subarray(t * 3 * pixels, (t + 1) * 3 * pixels);
  const out = new Uint8Array(3 * pixels);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) out[3 * p + c] = plane[c * pixels + p]!;
  }
  return out;
}

/** Processes whose parent is this test process (from /proc: Linux only, like CI). */
async function childProcesses(): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    // "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[1]) === process.pid) children.push(Number(entry));
  }
  return children;
}

describe("PpmStreamReader", () => {
  const frameA = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => i);
  const frameB = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => 255 - i);
  const ppm = (width: number, height: number, rgb: Uint8Array) =>
    Buffer.concat([Buffer.from(`P6\n${width} ${height}\n255\n`), rgb]);
  const stream = Buffer.concat([ppm(3, 2, frameA), ppm(3, 2, frameB)]);

  it("splits frames however the pipe cuts the stream", () => {
    for (const chunkSize of [1, 2, 5, 7, stream.length]) {
      const frames: RgbFrame[] = [];
      const sizes: string[] = [];
      const reader = new PpmStreamReader(
        "x.mp4",
        (width, height) => sizes.push(`${width}x${height}`),
        (frame) => frames.push(frame),
      );
      for (let at = 0; at < stream.length; at += chunkSize) {
        reader.push(stream.subarray(at, at + chunkSize));
      }
      expect(sizes).toEqual(["3x2", "3x2"]);
      expect(frames.map((frame) => [...frame.rgb])).toEqual([[...frameA], [...frameB]]);
      expect(reader.atFrameBoundary).toBe(true);
    }
  });

  it("knows a stream cut inside a frame, and refuses what is not PPM", () => {
    const reader = new PpmStreamReader(
      "x.mp4",
      () => undefined,
      () => undefined,
    );
    reader.push(stream.subarray(0, 20));
    expect(reader.atFrameBoundary).toBe(false);
    const other = new PpmStreamReader(
      "x.mp4",
      () => undefined,
      () => undefined,
    );
    expect(() => other.push(Buffer.from("P5\n3 2\n255\n"))).toThrow(
      "x.mp4: ffmpeg wrote something other than a PPM frame",
    );
  });
});

describe("probeVideo", () => {
  it("counts the decoded frames of both conformance clips", async () => {
    for (const [file, codec] of [
      [LOSSLESS, "png"],
      [LOSSY, "h264"],
    ] as const) {
      const facts = videos[file.split("/").at(-1)!]!;
      const info = await probeVideo(file);
      expect(info).toMatchObject({
        path: file,
        kind: "video",
        vlen: facts.vlen,
        width: facts.width,
        height: facts.height,
        codec,
      });
      expect(facts.codec).toBe(codec);
    }
  });
});

describe("readVideoFrames: PyAV's frames, from the system ffmpeg", () => {
  it("every frame of both clips hashes to the sidecar's PyAV rgb24 frame", async () => {
    for (const file of [LOSSLESS, LOSSY]) {
      const facts = videos[file.split("/").at(-1)!]!;
      const info = await probeVideo(file);
      const all = Array.from({ length: info.vlen }, (_, i) => i);
      const frames = await readVideoFrames(info, all);
      expect(frames.shape).toEqual([60, 3, 72, 96]);
      const hashes = all.map((t) => createHash("sha256").update(rgb24(frames, t)).digest("hex"));
      expect(hashes).toEqual(facts.frame_sha256_rgb24);
    }
  });

  it("the t4 frames equal input.frames_u8.t4 (PNG) and input.frames_u8_lossy.t4 (H.264) exactly", async () => {
    // clip.mp4 is H.264 with B-frames, BT.601 limited range: exact because the conversion
    // is swscale's with PyAV's settings (the sidecar's pyav_vs_ffmpeg_cli_rgb24: 0 values differ).
    const lossless = await readVideoFrames(LOSSLESS, T4);
    expect(lossless.shape).toEqual([4, 3, 72, 96]);
    expect(lossless.data).toEqual(u8("input.frames_u8.t4"));
    const lossy = await readVideoFrames(LOSSY, T4);
    expect(lossy.data).toEqual(u8("input.frames_u8_lossy.t4"));
  });

  it("takes indices in any order, repeats included", async () => {
    const info = await probeVideo(LOSSLESS);
    const frames = await readVideoFrames(info, [52, 7, 7]);
    const reference = u8("input.frames_u8.t4");
    const frameBytes = 3 * 72 * 96;
    expect(frames.data.subarray(0, frameBytes)).toEqual(reference.subarray(3 * frameBytes));
    expect(frames.data.subarray(frameBytes, 2 * frameBytes)).toEqual(
      reference.subarray(0, frameBytes),
    );
    expect(frames.data.subarray(2 * frameBytes)).toEqual(reference.subarray(0, frameBytes));
  });

  it("rejects an index outside the video", async () => {
    const info = await probeVideo(LOSSLESS);
    await expect(readVideoFrames(info, [60])).rejects.toThrow(
      `${LOSSLESS}: frame index 60 is outside [0, 59]`,
    );
  });
});

describe("preprocessVideo", () => {
  it("reproduces expected.pixel_values.t4.res64 from clip_lossless.mov", async () => {
    const result = await preprocessVideo(LOSSLESS, { frames: 4, imageSize: 64 });
    expect([...result.frameIndices]).toEqual(T4);
    expect(result.vlen).toBe(60);
    expect(result.padded).toBe(false);
    expect(result.notes).toEqual([]);
    expect(result.pixelValues.shape).toEqual([4, 3, 64, 64]);
    expect(result.pixelValues.data).toEqual(tensors.get("expected.pixel_values.t4.res64")!.data);
  });

  it("pads like the reference when asked for more frames than the video has", async () => {
    const result = await preprocessVideo(LOSSLESS, { frames: 64, imageSize: 8 });
    const expected = [...Array.from({ length: 60 }, (_, i) => i), 59, 59, 59, 59];
    expect([...result.frameIndices]).toEqual(expected);
    expect(result.padded).toBe(true);
    expect(result.notes[0]).toContain("60 frames, fewer than the 64 asked for");
    const frame = 3 * 8 * 8;
    const last = result.pixelValues.data.subarray(59 * frame, 60 * frame);
    for (let t = 60; t < 64; t++) {
      expect(result.pixelValues.data.subarray(t * frame, (t + 1) * frame)).toEqual(last);
    }
  });

  it("reads a folder of PNG frames, sorted by name, exactly", async () => {
    const info: VideoInfo = await probeVideo(pngFolder);
    expect(info).toMatchObject({ kind: "frames", vlen: 60, width: 96, height: 72, codec: "png" });
    expect(info.frameFiles[7]).toBe(join(pngFolder, "0008.png"));
    const result = await preprocessVideo(pngFolder, { frames: 4, imageSize: 64 });
    expect([...result.frameIndices]).toEqual(T4);
    expect(result.pixelValues.data).toEqual(tensors.get("expected.pixel_values.t4.res64")!.data);
  });

  it("reads a folder of JPEG frames (lossy, so close, not equal)", async () => {
    const frames = await readVideoFrames(jpegFolder, T4);
    const reference = u8("input.frames_u8.t4");
    let total = 0;
    let worst = 0;
    for (let i = 0; i < reference.length; i++) {
      const difference = Math.abs(frames.data[i]! - reference[i]!);
      total += difference;
      worst = Math.max(worst, difference);
    }
    // Measured at -q:v 2: mean 1.28, max 21 levels; the neighbouring frames are at mean 6.1, max 255.
    expect(total / reference.length).toBeLessThan(2.5);
    expect(worst).toBeLessThan(64);
  });

  it("decodes Matroska, which the reference cannot read, and says so", async () => {
    const result = await preprocessVideo(matroska, { frames: 4, imageSize: 64 });
    expect(result.source.container).toBe("matroska,webm");
    expect(result.pixelValues.data).toEqual(tensors.get("expected.pixel_values.t4.res64")!.data);
    expect(result.notes).toHaveLength(1);
    expect(result.notes[0]).toContain("Matroska/WebM");
  });

  it("refuses a request over the memory limit before decoding", async () => {
    await expect(preprocessVideo(LOSSY, { frames: 4, maxBytes: 10_000 })).rejects.toThrow(
      `${LOSSY}: 4 frames of pixel values at 224x224 would take 2.3 MiB, over the 10000 bytes limit`,
    );
    await expect(
      preprocessVideo(LOSSY, { frames: 4, imageSize: 16, maxBytes: 80_000 }),
    ).rejects.toThrow("4 decoded frames of 96x72 would take 82944 bytes, over the 80000 bytes");
  });

  it("rejects frame counts and sizes out of range", async () => {
    await expect(preprocessVideo(LOSSY, { frames: 0 })).rejects.toThrow(ConfigError);
    await expect(preprocessVideo(LOSSY, { frames: 4, imageSize: 0 })).rejects.toThrow(
      'config field "imageSize": must be an integer in [1, 4096], got 0',
    );
  });

  it("an abort kills the running ffprobe and rejects", async () => {
    const before = await childProcesses();
    const controller = new AbortController();
    let settled = false;
    const run = preprocessVideo(longVideo, { frames: 4, signal: controller.signal }).finally(() => {
      settled = true;
    });
    run.catch(() => undefined);
    while (!settled && (await childProcesses()).length === before.length) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(settled, "the tool finished before it could be aborted").toBe(false);
    controller.abort();
    await expect(run).rejects.toMatchObject({ name: "AbortError" });
    expect(await childProcesses()).toEqual(before);
  });
});

describe("bad input: a VideoError naming the file, and no child process left", () => {
  let bad: string;
  beforeAll(async () => {
    bad = join(tmp, "bad");
    await mkdir(join(bad, "empty-dir"), { recursive: true });
    await mkdir(join(bad, "text-dir"));
    await writeFile(join(bad, "text-dir", "notes.txt"), "no frames here\n");
    await mkdir(join(bad, "broken-frames"));
    await writeFile(join(bad, "broken-frames", "0001.png"), Buffer.alloc(300, 0x5a));
    await writeFile(join(bad, "empty.mp4"), "");
    // Deterministic garbage: bytes of a linear congruential sequence.
    const garbage = Buffer.alloc(4000);
    for (let i = 0, x = 12345; i < garbage.length; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      garbage[i] = x >>> 24;
    }
    await writeFile(join(bad, "garbage.mp4"), garbage);
    await writeFile(join(bad, "text.mp4"), "hello, I am not a video\n");
    const clip = await readFile(LOSSY);
    await writeFile(join(bad, "truncated.mp4"), clip.subarray(0, 10_000));
  });

  const cases: [string, string][] = [
    ["missing.mp4", "no such file or directory"],
    ["empty-dir", "is a directory without frame images (.png, .jpg, .jpeg)"],
    ["text-dir", "is a directory without frame images"],
    ["empty.mp4", "is empty (0 bytes)"],
    ["garbage.mp4", "ffprobe cannot read it: "],
    ["text.mp4", "ffprobe cannot read it: "],
    // The first 10 kB hold the index and 16 frames; PyAV raises InvalidDataError on it.
    ["truncated.mp4", "is damaged: Invalid NAL unit size"],
  ];
  for (const [name, detail] of cases) {
    it(name, async () => {
      const before = await childProcesses();
      const path = join(bad, name);
      const error = await preprocessVideo(path, { frames: 4 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VideoError);
      expect((error as VideoError).message.startsWith(`${path}: `)).toBe(true);
      expect((error as VideoError).message).toContain(detail);
      expect((error as VideoError).file).toBe(path);
      expect(await childProcesses()).toEqual(before);
    });
  }

  it("a frame folder with an undecodable image names the image", async () => {
    const image = join(bad, "broken-frames", "0001.png");
    await expect(preprocessVideo(join(bad, "broken-frames"), { frames: 2 })).rejects.toThrow(
      `${image}: cannot be decoded: `,
    );
  });

  it("missing ffprobe or ffmpeg: says to install Debian's ffmpeg", async () => {
    const before = await childProcesses();
    await expect(
      preprocessVideo(LOSSY, { frames: 4, ffprobe: "/nonexistent/ffprobe" }),
    ).rejects.toThrow(
      `${LOSSY}: cannot run ffprobe (/nonexistent/ffprobe not found): install Debian's ffmpeg package (apt-get install ffmpeg)`,
    );
    await expect(
      preprocessVideo(LOSSY, { frames: 4, ffmpeg: "/nonexistent/ffmpeg" }),
    ).rejects.toThrow(`${LOSSY}: cannot run ffmpeg (/nonexistent/ffmpeg not found)`);
    expect(await childProcesses()).toEqual(before);
  });
});
