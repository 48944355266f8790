import { randomBytes } from "node:crypto";
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { SprigError } from "../ir/errors.js";

/** A file could not be written; names the path and the system's reason. */
export class FileWriteError extends SprigError {
  override readonly name = "FileWriteError";
}

/**
 * Writes a file atomically: the bytes go to a temporary file in the same directory (so
 * the rename cannot cross file systems), are flushed, and the temporary file is renamed
 * over `path`. Readers see either the old file or the complete new one; on any failure
 * the temporary file is removed, `path` is left untouched, and a FileWriteError names it.
 */
export async function writeFileAtomic(path: string, contents: Uint8Array | string): Promise<void> {
  const tempPath = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`,
  );
  let handle: FileHandle | undefined;
  try {
    // "wx": never clobber an existing file that happens to have the temporary name.
    handle = await open(tempPath, "wx");
    await handle.writeFile(contents);
    await handle.sync();
    const opened = handle;
    handle = undefined;
    await opened.close();
    await rename(tempPath, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await rm(tempPath, { force: true }).catch(() => undefined);
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new FileWriteError(`cannot write ${path}: ${reason}`);
  }
}
