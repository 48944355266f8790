import { execFileSync } from "node:child_process";
import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileReadError, readRegularFile, readTextFile } from "../../src/io/files.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sprig-files-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("reading user files: regular files only", () => {
  it("refuses a FIFO without waiting for a writer", async () => {
    const fifo = join(dir, "pipe");
    execFileSync("mkfifo", [fifo]);
    const failure = readTextFile(fifo, "config");
    await expect(failure).rejects.toBeInstanceOf(FileReadError);
    await expect(failure).rejects.toThrow(`config ${fifo} is a FIFO, not a regular file`);
  });

  it("refuses endless devices and directories before reading a byte", async () => {
    await expect(readRegularFile("/dev/zero", "weights file")).rejects.toThrow(
      "weights file /dev/zero is a device, not a regular file",
    );
    await expect(readRegularFile("/dev/urandom", "vocabulary")).rejects.toThrow(/is a device/);
    await expect(readTextFile(dir, "captions file")).rejects.toThrow(/is a directory/);
  });

  it("refuses a file larger than allowed from its size, without reading it", async () => {
    const big = join(dir, "big.json");
    await writeFile(big, "");
    await truncate(big, 65 * 2 ** 20); // sparse: no data is ever written
    const failure = readTextFile(big, "config");
    await expect(failure).rejects.toThrow(/is 68157440 bytes, more than the 67108864/);
  });

  it("names the system's reason for a missing file and keeps it as the problem", async () => {
    const missing = join(dir, "missing.txt");
    const error = await readTextFile(missing, "captions file").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileReadError);
    expect((error as FileReadError).message).toBe(`cannot read captions file ${missing}: ENOENT`);
    expect((error as FileReadError).problem).toBe("cannot read file (ENOENT)");
  });

  it("reads text as strict UTF-8", async () => {
    const path = join(dir, "bad.txt");
    await writeFile(path, Uint8Array.of(0x61, 0xff));
    await expect(readTextFile(path, "vocabulary")).rejects.toThrow(/is not valid UTF-8/);
    await writeFile(path, "caf\u00e9\n");
    expect(await readTextFile(path, "vocabulary")).toBe("caf\u00e9\n");
  });
});
