import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { SprigError } from "../ir/errors.js";
import { onInterrupt } from "./cleanup.js";

/** A file could not be written; names the path and the system's reason. */
export class FileWriteError extends SprigError {
  override readonly name = "FileWriteError";
}

/**
 * Test hook: with SPRIG_TEST_PAUSE_BEFORE_RENAME="<ms>" (or "<ms>:<n>" for the n-th atomic
 * write of the process, default the first), that write stops for <ms> after its temporary
 * file is complete and before the rename, and says so on stderr ("sprig: test hook: paused
 * before renaming <temp>"), so that a test can interrupt a command at the moment an
 * incomplete output exists. Never set outside tests.
 */
const PAUSE_VARIABLE = "SPRIG_TEST_PAUSE_BEFORE_RENAME";
let atomicWrites = 0;

async function testPause(tempPath: string): Promise<void> {
  atomicWrites += 1;
  const setting = process.env[PAUSE_VARIABLE];
  if (setting === undefined) return;
  const [ms, nth] = setting.split(":").map(Number);
  if (!(ms! > 0) || atomicWrites !== (nth ?? 1)) return;
  process.stderr.write(`sprig: test hook: paused before renaming ${tempPath}\n`);
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Writes a file atomically: the bytes go to a temporary file in the same directory (so
 * the rename cannot cross file systems), are flushed, and the temporary file is renamed
 * over `path`. Readers see either the old file or the complete new one; on any failure
 * the temporary file is removed, `path` is left untouched, and a FileWriteError names it.
 * While the temporary file exists its removal is registered with the interrupt cleanup
 * (src/io/cleanup.ts), so SIGINT or SIGTERM in between leaves nothing behind either.
 */
export async function writeFileAtomic(path: string, contents: Uint8Array | string): Promise<void> {
  const tempPath = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`,
  );
  const removeTemp = () => rm(tempPath, { force: true }).catch(() => undefined);
  const unregister = onInterrupt(`temporary file ${tempPath}`, removeTemp);
  let handle: FileHandle | undefined;
  let created = false;
  try {
    // "wx": never clobber an existing file that happens to have the temporary name.
    handle = await open(tempPath, "wx");
    created = true;
    await handle.writeFile(contents);
    await handle.sync();
    const opened = handle;
    handle = undefined;
    await opened.close();
    await testPause(tempPath);
    await rename(tempPath, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    if (created) await removeTemp();
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new FileWriteError(`cannot write ${path}: ${reason}`);
  } finally {
    unregister();
  }
}
