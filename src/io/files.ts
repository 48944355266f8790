import { constants } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { SprigError } from "../ir/errors.js";

/**
 * Reading the files users name (configs, captions, vocabularies, weights, conformance
 * cases). Only regular files are read: the open does not block, so a FIFO never waits for
 * a writer, and the type is checked on the opened handle (not on the path, which could be
 * swapped in between), so a device (/dev/zero, /dev/urandom), a directory or a socket is
 * refused before one byte is read. The size comes from the same handle, so a reader can
 * check it against a header before it allocates anything.
 */

/** A file could not be read; names the path, what it was meant to be and why. */
export class FileReadError extends SprigError {
  override readonly name = "FileReadError";
  /**
   * `problem` says what is wrong without the path ("is a FIFO, not a regular file",
   * "cannot read file (ENOENT)"), for readers that name the file their own way.
   */
  constructor(
    readonly path: string,
    readonly problem: string,
    message: string,
  ) {
    super(message);
  }
}

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined) return code;
  const message = (error as Error).message;
  return message === "" ? String(error) : message;
}

function kindOf(info: Awaited<ReturnType<FileHandle["stat"]>>): string {
  if (info.isDirectory()) return "a directory";
  if (info.isFIFO()) return "a FIFO";
  if (info.isCharacterDevice() || info.isBlockDevice()) return "a device";
  if (info.isSocket()) return "a socket";
  return "not a regular file";
}

function cannotRead(path: string, what: string, error: unknown): FileReadError {
  const why = reason(error);
  return new FileReadError(
    path,
    `cannot read file (${why})`,
    `cannot read ${what} ${path}: ${why}`,
  );
}

/** Opens `path` for reading only if it is a regular file (see the module comment). */
export async function openRegularFile(
  path: string,
  what: string,
): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw cannotRead(path, what, error);
  }
  try {
    const info = await handle.stat();
    if (!info.isFile()) {
      const problem = `is ${kindOf(info)}, not a regular file`;
      throw new FileReadError(path, problem, `${what} ${path} ${problem}`);
    }
    return { handle, size: info.size };
  } catch (error) {
    await handle.close().catch(() => undefined);
    if (error instanceof FileReadError) throw error;
    throw cannotRead(path, what, error);
  }
}

/**
 * Reads exactly `length` bytes at `position` of an open file into `target` (from its
 * start). A file that ends early (it shrank after its size was taken) is a FileReadError.
 */
export async function readExactly(
  handle: FileHandle,
  target: Uint8Array,
  position: number,
  path: string,
  what: string,
): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    let bytesRead: number;
    try {
      // at most 1 GiB per call: larger reads are refused by some platforms
      const chunk = Math.min(target.byteLength - done, 2 ** 30);
      ({ bytesRead } = await handle.read(target, done, chunk, position + done));
    } catch (error) {
      throw cannotRead(path, what, error);
    }
    if (bytesRead === 0) {
      const problem = `shrank to ${position + done} bytes while it was read`;
      throw new FileReadError(path, problem, `${what} ${path} ${problem}`);
    }
    done += bytesRead;
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
      const problem = `is ${size} bytes, more than the ${maxBytes} a ${what} may have`;
      throw new FileReadError(path, problem, `${what} ${path} ${problem}`);
    }
    const bytes = Buffer.alloc(size);
    await readExactly(handle, bytes, 0, path, what);
    return bytes;
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
    const problem = "is not valid UTF-8 text";
    throw new FileReadError(path, problem, `${what} ${path} ${problem}`);
  }
}
