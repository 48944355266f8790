import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { registerPreprocess } from "../../src/cli/commands/preprocess.js";
import { VideoError } from "../../src/inputs/video.js";
import { FileWriteError } from "../../src/io/atomic.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { ConfigError, type SprigError } from "../../src/ir/errors.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const INPUTS = fileURLToPath(new URL("../../../shared/conformance/inputs/", import.meta.url));
const LOSSLESS = `${INPUTS}clip_lossless.mov`;

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sprig-preprocess-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Runs `sprig preprocess ...args` in process; returns what it printed. */
async function preprocess(...args: string[]): Promise<string> {
  const program = new Command("sprig").exitOverride();
  registerPreprocess(program);
  let printed = "";
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    printed += String(chunk);
    return true;
  });
  try {
    await program.parseAsync(["preprocess", ...args], { from: "user" });
  } finally {
    write.mockRestore();
  }
  return printed;
}

/** The dtype the file's header gives a tensor (readSafetensors narrows I64 on read). */
async function storedDtype(path: string, name: string): Promise<string> {
  const bytes = await readFile(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8"))[name].dtype;
}

describe("sprig preprocess", () => {
  it("writes pixel_values, frame_indices and metadata that match the conformance case", async () => {
    const out = join(tmp, "clip.safetensors");
    const printed = await preprocess(LOSSLESS, "--frames", "4", "--image-size", "64", "--out", out);
    expect(printed).toBe(
      `wrote ${out}: pixel_values [4,3,64,64] from frames 7,22,37,52 of 60 (96x72 png)\n`,
    );
    const written = await readSafetensors(out);
    const expected = await readSafetensors(`${INPUTS}v1_video_preprocess.safetensors`);
    const pixels = written.tensors.get("pixel_values")!;
    expect(pixels.dtype).toBe("f32");
    expect(pixels.shape).toEqual([4, 3, 64, 64]);
    expect(pixels.data).toEqual(expected.tensors.get("expected.pixel_values.t4.res64")!.data);
    const indices = written.tensors.get("frame_indices")!;
    expect([...indices.data]).toEqual([...expected.tensors.get("expected.frame_indices.t4")!.data]);
    expect(await storedDtype(out, "frame_indices")).toBe("I64");
    expect(written.metadata).toMatchObject({
      source: LOSSLESS,
      kind: "video",
      vlen: "60",
      padded: "false",
      frames: "4",
      image_size: "64",
      sampling: "middle",
      width: "96",
      height: "72",
      codec: "png",
    });
  });

  it("reports padding in the metadata and on stdout", async () => {
    const out = join(tmp, "padded.safetensors");
    const printed = await preprocess(LOSSLESS, "--frames", "62", "--image-size", "4", "--out", out);
    expect(printed).toContain("note: 60 frames, fewer than the 62 asked for");
    const written = await readSafetensors(out);
    expect(written.metadata.padded).toBe("true");
    expect(written.tensors.get("frame_indices")!.data.subarray(58)).toEqual(
      Int32Array.from([58, 59, 59, 59]),
    );
  });

  it("a failing run throws a SprigError and leaves no output file", async () => {
    const failures: [string[], new (...args: never[]) => SprigError][] = [
      [[join(tmp, "missing.mp4"), "--frames", "4"], VideoError],
      [[LOSSLESS, "--frames", "0"], ConfigError],
      [[LOSSLESS, "--frames", "four"], ConfigError],
      [[LOSSLESS, "--frames", "4", "--image-size", "-3"], ConfigError],
    ];
    for (const [args, errorClass] of failures) {
      const out = join(tmp, "never.safetensors");
      await expect(preprocess(...args, "--out", out)).rejects.toThrow(errorClass);
      expect(existsSync(out)).toBe(false);
    }
    const unwritable = join(tmp, "no-such-dir", "x.safetensors");
    await expect(preprocess(LOSSLESS, "--frames", "1", "--out", unwritable)).rejects.toThrow(
      FileWriteError,
    );
    // Neither the output nor writeFileAtomic's temporary file is left behind.
    expect((await readdir(tmp)).filter((name) => name.includes("never"))).toEqual([]);
  });

  it("runs in a child process (node --import tsx) with a registered command", async () => {
    const out = join(tmp, "child.safetensors");
    const script = [
      'import { Command } from "commander";',
      'import { registerPreprocess } from "./src/cli/commands/preprocess.ts";',
      'const program = new Command("sprig");',
      "registerPreprocess(program);",
      "await program.parseAsync(process.argv.slice(1), { from: 'user' });",
    ].join("\n");
    const args = ["preprocess", LOSSLESS, "--frames", "8", "--image-size", "32", "--out", out];
    const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(
          process.execPath,
          ["--import", "tsx", "--input-type=module", "-e", script, "--", ...args],
          { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
        );
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (text: string) => {
          stdout += text;
        });
        child.stderr.setEncoding("utf8").on("data", (text: string) => {
          stderr += text;
        });
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, stdout, stderr }));
      },
    );
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("from frames 3,10,18,25,33,40,48,55 of 60");
    const written = await readSafetensors(out);
    expect(written.tensors.get("pixel_values")!.shape).toEqual([8, 3, 32, 32]);
  });
});
