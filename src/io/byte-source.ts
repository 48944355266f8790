/**
 * Positional reads from a file or from bytes in memory, so that the checkpoint reader
 * can pick records out of a large file without holding all of it (Node's readFile stops
 * at 2 GiB, and a checkpoint with optimizer state can be larger).
 *
 * Callers bounds-check every range against `byteLength` before reading; `read` checks
 * again and throws a RangeError, which would mean a bug in sprig, not a bad file.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { CheckpointError } from "./checkpoint-error.js";

export interface ByteSource {
  readonly byteLength: number;
  /** A fresh copy (byteOffset 0, so typed views of it are aligned) of [offset, offset + length). */
  read(offset: number, length: number): Uint8Array;
}

function checkRange(source: ByteSource, offset: number, length: number): void {
  if (
    !Number.isSafeInteger(offset) ||
    !Number.isSafeInteger(length) ||
    offset < 0 ||
    length < 0 ||
    offset + length > source.byteLength
  ) {
    throw new RangeError(
      `read of ${length} bytes at ${offset} outside a ${source.byteLength}-byte source`,
    );
  }
}

/** A source over bytes already in memory. */
export function bytesSource(bytes: Uint8Array): ByteSource {
  const source: ByteSource = {
    byteLength: bytes.byteLength,
    read(offset, length) {
      checkRange(source, offset, length);
      // A copy into a plain Uint8Array: Buffer's slice() would return a view instead.
      return new Uint8Array(bytes.subarray(offset, offset + length));
    },
  };
  return source;
}

/** readSync takes at most 2^31 - 1 bytes per call; larger reads go in chunks. */
const MAX_READ_CHUNK = 1 << 30;

/** An open file read with positional reads; `close` releases the descriptor. */
export interface FileSource extends ByteSource {
  close(): void;
}

/**
 * Opens `path` for positional reads. Only a regular file is read: the open does not
 * block (so a FIFO never waits for a writer) and the type is checked on the opened
 * descriptor, so a directory or device (/dev/zero) is refused before a byte is read.
 * A failure is a CheckpointError naming the path and the system's reason.
 */
export function openFileSource(path: string): FileSource {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new CheckpointError(path, undefined, `cannot read file (${systemReason(error)})`);
  }
  let byteLength: number;
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) {
      const kind = info.isDirectory()
        ? "a directory"
        : info.isFIFO()
          ? "a FIFO"
          : info.isCharacterDevice() || info.isBlockDevice()
            ? "a device"
            : "not a regular file";
      throw new CheckpointError(path, undefined, `is ${kind}, not a regular file`);
    }
    byteLength = info.size;
  } catch (error) {
    closeSync(fd);
    if (error instanceof CheckpointError) throw error;
    throw new CheckpointError(path, undefined, `cannot read file (${systemReason(error)})`);
  }
  const source: FileSource = {
    byteLength,
    read(offset, length) {
      checkRange(source, offset, length);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const chunk = Math.min(MAX_READ_CHUNK, length - done);
        const got = readSync(fd, out, done, chunk, offset + done);
        if (got === 0) {
          throw new CheckpointError(
            path,
            undefined,
            `file shrank to ${offset + done} bytes while being read`,
          );
        }
        done += got;
      }
      return out;
    },
    close() {
      closeSync(fd);
    },
  };
  return source;
}

function systemReason(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
