/**
 * Real video input, prepared exactly as the authors' evaluation prepares it
 * (dataset/video_utils.py read_frames_av with sample="middle", then test_transform):
 *
 *   1. decode every frame of the first video stream (vlen = how many decode);
 *   2. pick T indices with the 'middle' rule (frames.ts);
 *   3. convert those frames to RGB uint8 [T, 3, H, W];
 *   4. Resize((S, S), bicubic) on the uint8 tensor, /255, Normalize(0.5, 0.5) (resize.ts).
 *
 * Decoding is FFmpeg's, through the system's ffmpeg and ffprobe (Debian's `ffmpeg`
 * package, FFmpeg 5.1): the same libraries PyAV 10 wraps, so the frames are the ones the
 * reference sees. Two passes where PyAV makes one (it holds every decoded frame in
 * memory): ffprobe -count_frames decodes the stream to count vlen, then ffmpeg decodes
 * again and keeps only the selected frames (`select` on the decoded frame number, in
 * presentation order, as PyAV yields them), so memory holds T frames, not vlen. Frames
 * come back as a PPM stream on a pipe: no temporary files. A file whose decoding reports
 * any error is refused, as PyAV refuses it (see probeVideoFile).
 *
 * RGB conversion matches PyAV's `frame.to_rgb()`: PyAV 10 calls swscale with SWS_BILINEAR
 * and never passes the stream's colour tags, so swscale's defaults apply: the BT.601 matrix
 * whatever the tag says, and the range implied by the pixel format (full for yuvj*, else
 * limited). ffmpeg's command line would instead honour the tags (BT.709, full-range
 * flags) and scale with bicubic chroma filtering. `setparams=range=unknown:colorspace=unknown`
 * and `-sws_flags bilinear` undo both. Checked against PyAV 10.0.0 (Debian, same FFmpeg):
 * identical RGB, every value, on H.264 (BT.601 and BT.709 tagged, full range, 10-bit,
 * 4:2:2, 4:4:4, RGB), HEVC, VP9 (full-range tag), FFV1 (odd sizes, full-range BT.709 tags,
 * gray, GBR), MPEG-4, MJPEG, GIF and PNG-in-QuickTime. Without the two options, files
 * tagged BT.709 or full range were off by up to 53 levels, and odd-sized and 10-bit ones
 * (where the chroma filter matters) by up to 120 and 188.
 * `-noautorotate`: PyAV ignores rotation metadata, so sprig does too.
 *
 * Matroska / WebM: PyAV reports `stream.duration = None` for them, so the reference's
 * read_frames_av raises a TypeError (on the fps it computes, which 'middle' sampling never
 * uses) and the authors' dataset quietly substitutes a random other video. sprig decodes
 * them like any other container, which is what a user means, and says so in `notes`.
 *
 * A folder of frames (PNG or JPEG files, sorted by name) is a video too: vlen is the
 * number of images, sampled by the same rule; each chosen image is decoded by ffmpeg with
 * the same conversion (pngjs would do for PNG, but ffmpeg is already required and also
 * reads JPEG, 16-bit, palette and gray images). JPEG colour is then ffmpeg's, not PIL's
 * (whose libjpeg upsamples chroma differently); PNG is exact either way.
 */

import { readdir, stat } from "node:fs/promises";
import { extname, join, resolve } from "node:path";
import { ConfigError } from "../ir/errors.js";
import type { HostTensor } from "../ir/tensor.js";
import {
  failureDetail,
  PpmStreamReader,
  type RgbFrame,
  runTool,
  stderrLines,
  type ToolRun,
  VideoError,
  type VideoTools,
} from "./ffmpeg.js";
import { middleFrameSample } from "./frames.js";
import { type FramesU8, resizeBicubicU8, toPixelValues } from "./resize.js";

export { VideoError, type VideoTools } from "./ffmpeg.js";

/** What probing found. */
export interface VideoInfo {
  /** The path as the caller gave it (used in messages). */
  readonly path: string;
  readonly kind: "video" | "frames";
  /** Number of frames: decoded frames of a video, image files of a folder. */
  readonly vlen: number;
  readonly width: number;
  readonly height: number;
  /** ffprobe's codec name (of the first image, for a folder). */
  readonly codec: string;
  readonly pixelFormat: string;
  /** ffprobe's format name ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", ...) or "frames". */
  readonly container: string;
  /** For a folder: the image files in sampling order, absolute paths. */
  readonly frameFiles: readonly string[];
}

export interface ReadOptions extends VideoTools {
  /**
   * Refuse a request whose decoded frames (T x 3 x H x W bytes) or pixel values
   * (T x 3 x S x S float32) would exceed this many bytes. Default 1 GiB.
   */
  readonly maxBytes?: number;
}

export interface PreprocessOptions extends ReadOptions {
  /** T, the number of frames sampled. */
  readonly frames: number;
  /** S, the side of the square frames the model sees. Default 224. */
  readonly imageSize?: number;
}

export interface PreprocessedVideo {
  /** f32 [T, 3, S, S], the model's pixel_values. */
  readonly pixelValues: HostTensor & { dtype: "f32" };
  /** The T decoded-frame indices sampled. */
  readonly frameIndices: Int32Array;
  readonly vlen: number;
  /** True when vlen < T and the last frame was repeated to make up T. */
  readonly padded: boolean;
  /** Things the user should know about this input (padding, reference differences). */
  readonly notes: readonly string[];
  readonly source: VideoInfo;
  /** Where the time went (wall-clock ms; ffmpeg and ffprobe run as child processes). */
  readonly timings: PreprocessTimings;
}

/** One preprocessVideo call's time per step, in wall-clock milliseconds. */
export interface PreprocessTimings {
  /** ffprobe: size, format and frame count (counting decodes the whole stream once). */
  readonly probeMs: number;
  /** ffmpeg: decoding the sampled frames to RGB, and their HWC -> CHW copy. */
  readonly decodeMs: number;
  /** Bicubic resize on uint8, then scaling and normalising to float32 (resize.ts). */
  readonly resizeMs: number;
}

export const DEFAULT_IMAGE_SIZE = 224;
export const MAX_FRAMES = 1024;
export const MAX_IMAGE_SIZE = 4096;
export const DEFAULT_MAX_BYTES = 1 << 30;

/** Image files a frame folder may hold, by extension (case-insensitive). */
const FRAME_EXTENSIONS = new Set([".png", ".jpg", ".jpeg"]);

/** ffprobe's JSON is small; anything bigger is not what was asked for. */
const MAX_PROBE_OUTPUT_BYTES = 1 << 20;

/**
 * Options after `-i` for every decode: the first video stream, PyAV's RGB conversion (see
 * the file comment), every decoded frame passed through once (`-fps_mode passthrough`,
 * FFmpeg >= 5.1; the default would duplicate frames to a constant rate), as PPM on stdout.
 */
function decodeArgs(filters: readonly string[], frameCount: number): string[] {
  return [
    "-map",
    "0:v:0",
    "-vf",
    [...filters, "setparams=range=unknown:colorspace=unknown"].join(","),
    "-sws_flags",
    "bilinear",
    "-fps_mode",
    "passthrough",
    "-frames:v",
    String(frameCount),
    "-f",
    "image2pipe",
    "-c:v",
    "ppm",
    "-pix_fmt",
    "rgb24",
    "pipe:1",
  ];
}

const QUIET = ["-nostdin", "-hide_banner", "-loglevel", "error"];

/**
 * ffmpeg reads its input as a URL; "file:" keeps a name such as "concat:..." or
 * "pipe:0" a plain file. Frame images also get `-pattern_type none`, so that a "%d" in a
 * file name is not taken for an image sequence.
 */
function fileUrl(path: string): string {
  return `file:${resolve(path)}`;
}

/** Demuxer options for one frame image. */
const IMAGE_FORMAT = ["-f", "image2", "-pattern_type", "none"];

function videoInputArgs(path: string): string[] {
  return ["-noautorotate", "-i", fileUrl(path)];
}

function imageInputArgs(path: string): string[] {
  return [...IMAGE_FORMAT, "-i", fileUrl(path)];
}

// ---------------------------------------------------------------------------------------
// Probing
// ---------------------------------------------------------------------------------------

/** Frame count, size and format of a video file or a folder of frames. */
export async function probeVideo(path: string, options: VideoTools = {}): Promise<VideoInfo> {
  let kind: "file" | "directory";
  try {
    const stats = await stat(path);
    if (stats.isDirectory()) kind = "directory";
    else if (stats.isFile()) kind = "file";
    else throw new VideoError(path, "is neither a file nor a directory");
    if (kind === "file" && stats.size === 0) throw new VideoError(path, "is empty (0 bytes)");
  } catch (error) {
    if (error instanceof VideoError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new VideoError(
      path,
      code === "ENOENT" ? "no such file or directory" : `cannot read (${code ?? String(error)})`,
    );
  }
  return kind === "directory" ? probeFrameFolder(path, options) : probeVideoFile(path, options);
}

interface ProbeStream {
  readonly codec_name?: unknown;
  readonly width?: unknown;
  readonly height?: unknown;
  readonly pix_fmt?: unknown;
  readonly nb_read_frames?: unknown;
}

interface ProbeResult {
  readonly streams?: readonly ProbeStream[];
  readonly format?: { readonly format_name?: unknown };
}

/**
 * Runs ffprobe on the first video stream of `url` (after the demuxer options
 * `formatArgs`) and returns its parsed JSON.
 */
async function runProbe(
  path: string,
  url: string,
  formatArgs: readonly string[],
  entries: string,
  options: VideoTools,
): Promise<{ probe: ProbeResult; run: ToolRun }> {
  const countFrames = entries.includes("nb_read_frames") ? ["-count_frames"] : [];
  const args = ["-v", "error", ...formatArgs, "-select_streams", "v:0", ...countFrames];
  args.push("-show_entries", entries, "-of", "json", url);
  const chunks: Buffer[] = [];
  let size = 0;
  const run = await runTool(
    "ffprobe",
    options.ffprobe ?? "ffprobe",
    args,
    path,
    (chunk) => {
      size += chunk.length;
      if (size > MAX_PROBE_OUTPUT_BYTES) throw new VideoError(path, "ffprobe printed too much");
      chunks.push(chunk);
    },
    options.signal,
  );
  if (run.exitCode !== 0) {
    throw new VideoError(path, `ffprobe cannot read it: ${failureDetail(run, url)}`);
  }
  try {
    return { probe: JSON.parse(Buffer.concat(chunks).toString("utf8")) as ProbeResult, run };
  } catch {
    throw new VideoError(path, "ffprobe's output is not JSON");
  }
}

function positiveInteger(value: unknown): number | undefined {
  const number = typeof value === "string" ? Number(value) : value;
  return typeof number === "number" && Number.isSafeInteger(number) && number > 0
    ? number
    : undefined;
}

/** The stream's size, codec and pixel format, checked. */
function streamFacts(path: string, stream: ProbeStream | undefined, run: ToolRun, url: string) {
  if (stream === undefined) throw new VideoError(path, "has no video stream");
  const width = positiveInteger(stream.width);
  const height = positiveInteger(stream.height);
  if (width === undefined || height === undefined) {
    const why = stderrLines(run, url)[0];
    throw new VideoError(path, `cannot be decoded${why === undefined ? "" : `: ${why}`}`);
  }
  const codec = typeof stream.codec_name === "string" ? stream.codec_name : "unknown";
  const pixelFormat = typeof stream.pix_fmt === "string" ? stream.pix_fmt : "unknown";
  return { width, height, codec, pixelFormat };
}

/**
 * Counting decodes the whole stream, so damage anywhere shows up here: any error ffprobe
 * reports while decoding makes the file unreadable, as it is for the reference (PyAV
 * raises InvalidDataError on a truncated H.264 packet, and the authors' dataset then
 * substitutes another video). ffprobe itself would count the frames before the damage.
 */
async function probeVideoFile(path: string, options: VideoTools): Promise<VideoInfo> {
  const url = fileUrl(path);
  const { probe, run } = await runProbe(
    path,
    url,
    [],
    "stream=codec_name,width,height,pix_fmt,nb_read_frames:format=format_name",
    options,
  );
  const facts = streamFacts(path, probe.streams?.[0], run, url);
  const vlen = positiveInteger(probe.streams?.[0]?.nb_read_frames);
  if (vlen === undefined) throw new VideoError(path, "has a video stream but no frame decodes");
  const damage = stderrLines(run, url)[0];
  if (damage !== undefined) {
    throw new VideoError(
      path,
      `is damaged: ${damage} (ffprobe decoded ${vlen} frames before or around it)`,
    );
  }
  const formatName = probe.format?.format_name;
  const container = typeof formatName === "string" ? formatName : "unknown";
  return { path, kind: "video", vlen, ...facts, container, frameFiles: [] };
}

/** Python's sorted() order on names: by code point. */
function compareCodePoints(a: string, b: string): number {
  const left = [...a];
  const right = [...b];
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const difference = left[i]!.codePointAt(0)! - right[i]!.codePointAt(0)!;
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

/**
 * The image files of a frame folder, sorted by name (so name them with zero-padded
 * numbers: "10.png" sorts before "2.png"). Hidden files (".name") are skipped.
 */
async function listFrameFiles(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (error) {
    throw new VideoError(dir, `cannot list (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  const names = entries.filter(
    (name) => !name.startsWith(".") && FRAME_EXTENSIONS.has(extname(name).toLowerCase()),
  );
  const files: string[] = [];
  for (const name of names.sort(compareCodePoints)) {
    const file = join(resolve(dir), name);
    if ((await stat(file).catch(() => undefined))?.isFile()) files.push(file);
  }
  return files;
}

async function probeFrameFolder(path: string, options: VideoTools): Promise<VideoInfo> {
  const frameFiles = await listFrameFiles(path);
  const first = frameFiles[0];
  if (first === undefined) {
    throw new VideoError(path, "is a directory without frame images (.png, .jpg, .jpeg)");
  }
  const url = fileUrl(first);
  const { probe, run } = await runProbe(
    first,
    url,
    IMAGE_FORMAT,
    "stream=codec_name,width,height,pix_fmt",
    options,
  );
  const facts = streamFacts(first, probe.streams?.[0], run, url);
  return {
    path,
    kind: "frames",
    vlen: frameFiles.length,
    ...facts,
    container: "frames",
    frameFiles,
  };
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

function formatBytes(bytes: number): string {
  return bytes < 2 ** 20 ? `${bytes} bytes` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Refuses a request for more than `maxBytes` before anything is decoded. */
function checkBudget(path: string, what: string, bytes: number, maxBytes: number): void {
  if (bytes > maxBytes) {
    throw new VideoError(
      path,
      `${what} would take ${formatBytes(bytes)}, over the ${formatBytes(maxBytes)} limit`,
    );
  }
}

/**
 * Decodes the frames at `indices` (in any order, repeats allowed) as uint8 RGB
 * [T, 3, H, W]. Pass the VideoInfo from probeVideo to skip probing again.
 */
export async function readVideoFrames(
  video: string | VideoInfo,
  indices: ArrayLike<number>,
  options: ReadOptions = {},
): Promise<FramesU8> {
  const info = typeof video === "string" ? await probeVideo(video, options) : video;
  const { width, height, vlen } = info;
  const wanted = Array.from(indices);
  for (const index of wanted) {
    if (!Number.isSafeInteger(index) || index < 0 || index >= vlen) {
      throw new VideoError(info.path, `frame index ${index} is outside [0, ${vlen - 1}]`);
    }
  }
  const frameBytes = 3 * width * height;
  checkBudget(
    info.path,
    `${wanted.length} decoded frames of ${width}x${height}`,
    wanted.length * frameBytes,
    options.maxBytes ?? DEFAULT_MAX_BYTES,
  );

  // Each distinct frame is decoded once and scattered into every slot that asks for it.
  const distinct = [...new Set(wanted)].sort((a, b) => a - b);
  const output = new Uint8Array(wanted.length * frameBytes);
  const place = (position: number, frame: RgbFrame) => {
    const index = distinct[position]!;
    wanted.forEach((wantedIndex, slot) => {
      if (wantedIndex === index) interleavedToPlanar(frame.rgb, output, slot * frameBytes);
    });
  };
  if (info.kind === "video") await decodeVideoFrames(info, distinct, place, options);
  else await decodeFrameFiles(info, distinct, place, options);
  return { shape: [wanted.length, 3, height, width], data: output };
}

/** HWC (RGBRGB...) into CHW planes starting at `offset`. */
function interleavedToPlanar(rgb: Uint8Array, output: Uint8Array, offset: number): void {
  const pixels = rgb.length / 3;
  for (let p = 0; p < pixels; p++) {
    output[offset + p] = rgb[3 * p]!;
    output[offset + pixels + p] = rgb[3 * p + 1]!;
    output[offset + 2 * pixels + p] = rgb[3 * p + 2]!;
  }
}

/**
 * Runs one ffmpeg decode of `inputArgs`, expecting exactly `count` frames of the probed
 * size, each handed to `onFrame` with its position in the stream.
 */
async function decodeWithFfmpeg(
  file: string,
  info: VideoInfo,
  inputArgs: readonly string[],
  filters: readonly string[],
  count: number,
  onFrame: (position: number, frame: RgbFrame) => void,
  options: VideoTools,
): Promise<void> {
  let received = 0;
  const reader = new PpmStreamReader(
    file,
    (width, height) => {
      if (width !== info.width || height !== info.height) {
        throw new VideoError(
          file,
          `a frame decodes at ${width}x${height}, not ${info.width}x${info.height} ` +
            "(frames of different sizes cannot be stacked)",
        );
      }
      if (received >= count)
        throw new VideoError(file, `ffmpeg returned more than ${count} frames`);
    },
    (frame) => {
      onFrame(received, frame);
      received += 1;
    },
  );
  const url = inputArgs.at(-1)!;
  const args = [...QUIET, ...inputArgs, ...decodeArgs(filters, count)];
  const run = await runTool(
    "ffmpeg",
    options.ffmpeg ?? "ffmpeg",
    args,
    file,
    (chunk) => reader.push(chunk),
    options.signal,
  );
  if (run.exitCode !== 0) {
    throw new VideoError(file, `ffmpeg cannot decode it: ${failureDetail(run, url)}`);
  }
  if (received !== count || !reader.atFrameBoundary) {
    throw new VideoError(
      file,
      `ffmpeg returned ${received} of the ${count} frames asked for ` +
        `(ffprobe counted ${info.vlen}; the file may be damaged)`,
    );
  }
}

/**
 * One pass over the video keeping the frames whose decoded-frame number `n` is in
 * `distinct` (ascending); `-frames:v` stops decoding after the last one.
 */
function decodeVideoFrames(
  info: VideoInfo,
  distinct: readonly number[],
  onFrame: (position: number, frame: RgbFrame) => void,
  options: VideoTools,
): Promise<void> {
  // Commas inside a filter's arguments are escaped for the filtergraph parser.
  const select = `select=${distinct.map((index) => `eq(n\\,${index})`).join("+")}`;
  return decodeWithFfmpeg(
    info.path,
    info,
    videoInputArgs(info.path),
    [select],
    distinct.length,
    onFrame,
    options,
  );
}

/** One ffmpeg run per chosen image, one after the other. */
async function decodeFrameFiles(
  info: VideoInfo,
  distinct: readonly number[],
  onFrame: (position: number, frame: RgbFrame) => void,
  options: VideoTools,
): Promise<void> {
  for (const [position, index] of distinct.entries()) {
    const file = info.frameFiles[index]!;
    await decodeWithFfmpeg(
      file,
      info,
      imageInputArgs(file),
      [],
      1,
      (_, frame) => onFrame(position, frame),
      options,
    );
  }
}

// ---------------------------------------------------------------------------------------
// The whole evaluation preprocessing
// ---------------------------------------------------------------------------------------

function checkRange(field: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new ConfigError(field, `must be an integer in [1, ${max}], got ${value}`);
  }
}

/** Decode, sample, resize and normalise a video (or frame folder) as the reference does. */
export async function preprocessVideo(
  path: string,
  options: PreprocessOptions,
): Promise<PreprocessedVideo> {
  const { frames } = options;
  const imageSize = options.imageSize ?? DEFAULT_IMAGE_SIZE;
  checkRange("frames", frames, MAX_FRAMES);
  checkRange("imageSize", imageSize, MAX_IMAGE_SIZE);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  checkBudget(
    path,
    `${frames} frames of pixel values at ${imageSize}x${imageSize}`,
    frames * 3 * imageSize * imageSize * 4,
    maxBytes,
  );

  const started = performance.now();
  const source = await probeVideo(path, options);
  const probed = performance.now();
  const { indices, padded } = middleFrameSample(frames, source.vlen);
  const decoded = await readVideoFrames(source, indices, options);
  const decodedAt = performance.now();
  const pixelValues = toPixelValues(resizeBicubicU8(decoded, imageSize, imageSize));
  return {
    pixelValues,
    frameIndices: indices,
    vlen: source.vlen,
    padded,
    notes: notesFor(source, frames, padded),
    source,
    timings: {
      probeMs: probed - started,
      decodeMs: decodedAt - probed,
      resizeMs: performance.now() - decodedAt,
    },
  };
}

function notesFor(source: VideoInfo, frames: number, padded: boolean): string[] {
  const notes: string[] = [];
  if (padded) {
    notes.push(
      `${source.vlen} frames, fewer than the ${frames} asked for: the last one is repeated, as the reference's get_frame_indices does`,
    );
  }
  if (source.container.split(",").some((name) => name === "matroska" || name === "webm")) {
    notes.push(
      "Matroska/WebM: the reference's read_frames_av cannot read these (PyAV gives no stream duration) and its dataset substitutes another video; sprig decodes them",
    );
  }
  return notes;
}
