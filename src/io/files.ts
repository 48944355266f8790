import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { SprigError } from "../ir/errors.js";

/** A file could not be read; names the path, what it was meant to be and why. */
export class FileReadError extends SprigError {
  override readonly name = "FileReadError";
}

function reason(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/**
 * Opens `path` for reading only if it is a regular file. The open is non-blocking, so a
 * FIFO never waits for a writer, and the type is checked on the opened handle, so a
 * device (/dev/zero, /dev/urandom), a directory or a socket is refused before one byte
 * is read. `what` names the file's role in messages ("config", "checkpoint").
 */
export async function openRegularFile(
  path: string,
  what: string,
): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new FileReadError(`cannot read ${what} ${path}: ${reason(error)}`);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      const kind = info.isDirectory()
        ? "a directory"
        : info.isFIFO()
          ? "a FIFO"
          : info.isCharacterDevice() || info.isBlockDevice()
            ? "a device"
            : info.isSocket()
              ? "a socket"
              : "not a regular file";
      throw new FileReadError(`${what} ${path} is ${kind}, not a regular file`);
    }
    return { handle, size: info.size };
  } catch (error) {
    await handle.close().catch(() => undefined);
    if (error instanceof FileReadError) throw error;
    throw new FileReadError(`cannot read ${what} ${path}: ${reason(error)}`);
  }
}

/** The whole contents of a regular file, refusing files larger than `maxBytes` before reading. */
export async function readRegularFile(
  path: string,
  what: string,
  maxBytes = Number.MAX_SAFE_INTEGER,
): Promise<Buffer> {
  const { handle, size } = await openRegularFile(path, what);
  try {
    if (size > maxBytes) {
      throw new FileReadError(
        `${what} ${path} is ${size} bytes, more than the ${maxBytes} a ${what} may have`,
      );
    }
    const bytes = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await handle.read(bytes, done, size - done, done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    if (done !== size) throw new FileReadError(`${what} ${path} shrank while it was read`);
    return bytes;
  } catch (error) {
    if (error instanceof FileReadError) throw error;
    throw new FileReadError(`cannot read ${what} ${path}: ${reason(error)}`);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** Text files people write by hand (configs, caption lists, vocabularies): at most 64 MiB of UTF-8. */
export const MAX_TEXT_FILE_BYTES = 64 * 2 ** 20;

export async function readTextFile(
  path: string,
  what: string,
  maxBytes = MAX_TEXT_FILE_BYTES,
): Promise<string> {
  const bytes = await readRegularFile(path, what, maxBytes);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new FileReadError(`${what} ${path} is not valid UTF-8 text`);
  }
}
