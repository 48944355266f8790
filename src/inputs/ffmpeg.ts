/**
 * Running the system's ffmpeg and ffprobe (Debian's `ffmpeg` package) as child processes,
 * and reading the PPM frames ffmpeg writes to a pipe.
 *
 * The tools are spawned directly, never through a shell, with every argument passed as
 * its own string. Each run is awaited until the process has exited and its pipes have
 * closed; on any failure (our own, or an abort) the process is killed first and then
 * awaited, so no child outlives the call. Nothing is written to disk: frames come back on
 * stdout.
 */

import { spawn } from "node:child_process";
import { SprigError } from "../ir/errors.js";

/** A video or frame folder that cannot be read; the message names the file. */
export class VideoError extends SprigError {
  override readonly name = "VideoError";
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

/** Which executables to run; defaults are looked up on PATH. */
export interface VideoTools {
  readonly ffmpeg?: string;
  readonly ffprobe?: string;
  /** Aborting kills the running tool and rejects with the signal's AbortError. */
  readonly signal?: AbortSignal;
}

export interface ToolRun {
  readonly exitCode: number | null;
  readonly exitSignal: NodeJS.Signals | null;
  /** The last lines ffmpeg printed on stderr (at most STDERR_TAIL_BYTES of them). */
  readonly stderr: string;
}

/** How much of a tool's stderr is kept: enough for its last few messages. */
const STDERR_TAIL_BYTES = 8192;

/** Debian's package name, for the message when a tool is missing. */
const INSTALL_HINT =
  "install Debian's ffmpeg package (apt-get install ffmpeg), or put ffmpeg and ffprobe on PATH";

/**
 * Runs `command args`, feeding each stdout chunk to `onStdout`. Resolves once the process
 * has exited and its pipes are closed. If `onStdout` throws, the process is killed and the
 * call rejects with that error once the process is gone. `file` is the video the run is
 * about, named in errors.
 */
export function runTool(
  tool: "ffmpeg" | "ffprobe",
  command: string,
  args: readonly string[],
  file: string,
  onStdout: (chunk: Buffer) => void,
  signal?: AbortSignal,
): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ["ignore", "pipe", "pipe"],
      windowsHide: true,
      ...(signal === undefined ? {} : { signal, killSignal: "SIGKILL" as const }),
    });
    let failure: unknown;
    let stderr = "";
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) {
        // Nothing was started (not found, not executable), so there is nothing to wait for.
        const why = error.code === "ENOENT" ? "not found" : (error.code ?? error.message);
        reject(new VideoError(file, `cannot run ${tool} (${command} ${why}): ${INSTALL_HINT}`));
        return;
      }
      failure ??= error;
    });
    child.stdout.on("data", (chunk: Buffer) => {
      if (failure !== undefined) return;
      try {
        onStdout(chunk);
      } catch (error) {
        failure = error;
        child.kill("SIGKILL");
      }
    });
    child.stderr.setEncoding("utf8").on("data", (text: string) => {
      stderr = (stderr + text).slice(-STDERR_TAIL_BYTES);
    });
    child.on("close", (exitCode, exitSignal) => {
      if (child.pid === undefined) return; // spawn failed: already rejected above
      if (failure !== undefined) reject(failure);
      else resolve({ exitCode, exitSignal, stderr });
    });
  });
}

/**
 * The error lines a tool printed (it runs with `-v error`), cleaned for a one-line
 * message: without the "[h264 @ 0x55...] " context prefix and without the
 * "file:/abs/path: " prefix ffmpeg puts before messages about its input (the error names
 * the file already).
 */
export function stderrLines(run: ToolRun, inputUrl: string): string[] {
  const prefix = `${inputUrl}: `;
  return run.stderr
    .split(/\r?\n/)
    .map((line) => line.trim().replace(/^\[[^\]]* @ 0x[0-9a-f]+\] /, ""))
    .map((line) => (line.startsWith(prefix) ? line.slice(prefix.length) : line))
    .filter((line) => line.length > 0);
}

/**
 * Why a run failed, in one line: the tool's last message, preceded by its first when they
 * differ (ffmpeg often ends with a generic line after the one that says what was wrong).
 */
export function failureDetail(run: ToolRun, inputUrl: string): string {
  const lines = stderrLines(run, inputUrl);
  const first = lines[0];
  const last = lines.at(-1);
  if (first === undefined || last === undefined) {
    return run.exitSignal !== null ? `killed by ${run.exitSignal}` : `exit code ${run.exitCode}`;
  }
  return first === last ? last : `${first} (last message: ${last})`;
}

/** One decoded frame from a PPM stream: interleaved RGB, height x width x 3. */
export interface RgbFrame {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

/** A P6 header never needs more than this (magic, two sizes, maxval, separators). */
const MAX_PPM_HEADER_BYTES = 64;

/**
 * Splits ffmpeg's `-f image2pipe -c:v ppm -pix_fmt rgb24` output into frames. Each frame is
 * a binary PPM: "P6", whitespace, width, whitespace, height, whitespace, maxval 255, one
 * whitespace byte, then width * height * 3 bytes of RGB. PPM carries its size, so a frame
 * whose size differs from what was probed is caught instead of misread. `checkSize` is
 * called with each header before any pixel is buffered and may throw to stop the run;
 * `file` is the video, named in errors.
 */
export class PpmStreamReader {
  private pending: Buffer = Buffer.alloc(0);
  private frame: { width: number; height: number; rgb: Uint8Array; filled: number } | undefined;

  constructor(
    private readonly file: string,
    private readonly checkSize: (width: number, height: number) => void,
    private readonly onFrame: (frame: RgbFrame) => void,
  ) {}

  /** True when the stream ended between frames (no partial header or pixels left). */
  get atFrameBoundary(): boolean {
    return this.frame === undefined && this.pending.length === 0;
  }

  push(chunk: Buffer): void {
    let data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (data.length > 0) {
      if (this.frame === undefined) {
        const header = parsePpmHeader(data, this.file);
        if (header === undefined) {
          this.pending = Buffer.from(data);
          return;
        }
        this.checkSize(header.width, header.height);
        const rgb = new Uint8Array(header.width * header.height * 3);
        this.frame = { width: header.width, height: header.height, rgb, filled: 0 };
        data = data.subarray(header.length);
        continue;
      }
      const frame = this.frame;
      const take = Math.min(frame.rgb.length - frame.filled, data.length);
      frame.rgb.set(data.subarray(0, take), frame.filled);
      frame.filled += take;
      data = data.subarray(take);
      if (frame.filled === frame.rgb.length) {
        this.frame = undefined;
        this.onFrame({ width: frame.width, height: frame.height, rgb: frame.rgb });
      }
    }
  }
}

/**
 * Parses a P6 header at the start of `data`: its size and byte length, or undefined when
 * more bytes are needed. Throws on anything that is not an 8-bit P6 header.
 */
function parsePpmHeader(
  data: Buffer,
  file: string,
): { width: number; height: number; length: number } | undefined {
  const text = data.subarray(0, MAX_PPM_HEADER_BYTES).toString("latin1");
  const match = /^P6\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(text);
  if (match === null) {
    if (data.length >= MAX_PPM_HEADER_BYTES || !/^(P(6(\s+\d*){0,3})?)?$/.test(text)) {
      throw new VideoError(
        file,
        `ffmpeg wrote something other than a PPM frame: ${JSON.stringify(text)}`,
      );
    }
    return undefined;
  }
  const [, width, height, maxval] = match;
  if (maxval !== "255") {
    throw new VideoError(file, `ffmpeg wrote a PPM frame with maxval ${maxval}, not 255`);
  }
  return { width: Number(width), height: Number(height), length: match[0].length };
}
