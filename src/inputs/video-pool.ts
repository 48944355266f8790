/**
 * Video preprocessing off the main thread, so that decoding overlaps with the encoder.
 *
 * Both CPU backends run a forward pass synchronously on the main JavaScript thread
 * (onnxruntime-node's session.run blocks it until the pass ends; tfjs-wasm runs its kernels
 * on it). While it is blocked, nobody reads ffmpeg's pipe, so ffmpeg stalls once the pipe's
 * 64 KiB are full, and the resize (resize.ts, plain JavaScript) cannot run at all. A worker
 * thread has its own event loop: it reads the pipes, copies the frames and resizes them
 * while the main thread computes, and hands back the pixel values without a copy
 * (the buffer is transferred). The result is the same preprocessVideo result, bit for bit:
 * the worker runs that same function.
 *
 * The worker script is video-worker next to this module (src/runtime/worker-thread.ts).
 * Where it cannot start (sprig bundled into one file by a bundler), preprocessing runs on
 * the main thread instead and `where` says so; results are identical, only the overlap is
 * lost.
 */
import { ConfigError } from "../ir/errors.js";
import { startModuleWorker } from "../runtime/worker-thread.js";
import { VideoError } from "./ffmpeg.js";
import { type PreprocessedVideo, type PreprocessOptions, preprocessVideo } from "./video.js";

/** Where videos are preprocessed, and how to stop. */
export interface VideoPreprocessor {
  /** "a worker thread", or "the main thread (why)". */
  readonly where: string;
  /** preprocessVideo(path, options); `options.signal` aborts it (and kills its ffmpeg). */
  preprocess(path: string, options: PreprocessOptions): Promise<PreprocessedVideo>;
  /** Cancels what is still running, waits for it, and stops the worker. */
  close(): Promise<void>;
}

/** The options a worker receives: PreprocessOptions without the signal (not cloneable). */
export type WorkerPreprocessOptions = Omit<PreprocessOptions, "signal">;

export type WorkerRequest =
  | {
      readonly type: "preprocess";
      readonly id: number;
      readonly path: string;
      readonly options: WorkerPreprocessOptions;
    }
  | { readonly type: "cancel"; readonly id: number };

/** A failure, as data: the error classes a user can cause keep their class and fields. */
export type WorkerFailure =
  | { readonly kind: "video"; readonly file: string; readonly message: string }
  | { readonly kind: "config"; readonly field: string; readonly detail: string }
  | { readonly kind: "abort"; readonly message: string }
  | { readonly kind: "other"; readonly message: string; readonly stack: string };

export type WorkerReply =
  | { readonly type: "done"; readonly id: number; readonly result: PreprocessedVideo }
  | { readonly type: "failed"; readonly id: number; readonly failure: WorkerFailure };

/** The error as data (the worker side of the protocol). */
export function failureOf(error: unknown): WorkerFailure {
  if (error instanceof VideoError) {
    return { kind: "video", file: error.file, message: error.message };
  }
  if (error instanceof ConfigError) {
    return { kind: "config", field: error.field, detail: error.detail };
  }
  if (error instanceof Error && error.name === "AbortError") {
    return { kind: "abort", message: error.message };
  }
  const e = error instanceof Error ? error : new Error(String(error));
  return { kind: "other", message: e.message, stack: e.stack ?? e.message };
}

/** The error again, of the same class with the same message (the main side). */
export function errorOf(failure: WorkerFailure): Error {
  switch (failure.kind) {
    case "video": {
      // VideoError's message is "<file>: <detail>".
      const prefix = `${failure.file}: `;
      const detail = failure.message.startsWith(prefix)
        ? failure.message.slice(prefix.length)
        : failure.message;
      return new VideoError(failure.file, detail);
    }
    case "config":
      return new ConfigError(failure.field, failure.detail);
    case "abort": {
      const error = new Error(failure.message);
      error.name = "AbortError";
      return error;
    }
    case "other": {
      const error = new Error(`video worker: ${failure.message}`);
      error.stack = `video worker: ${failure.stack}`;
      return error;
    }
    default:
      return failure satisfies never;
  }
}

/** Preprocessing on the calling thread: no overlap with a forward pass on this thread. */
export function mainThreadPreprocessor(why: string): VideoPreprocessor {
  return {
    where: `the main thread (${why})`,
    preprocess: (path, options) => preprocessVideo(path, options),
    close: async () => undefined,
  };
}

/**
 * A preprocessor on one worker thread (see the file comment), or on the main thread where
 * the worker cannot start. Requests run concurrently in the worker (each one's ffprobe and
 * ffmpeg are child processes; the resizes take turns on the worker's thread).
 */
export function openVideoPreprocessor(): VideoPreprocessor {
  const launch = startModuleWorker(import.meta.url, "video-worker");
  if ("why" in launch) return mainThreadPreprocessor(`no worker thread: ${launch.why}`);
  const { worker } = launch;
  // The worker keeps the process alive only while a request is pending.
  worker.unref();
  const pending = new Map<
    number,
    { resolve: (value: PreprocessedVideo) => void; reject: (error: unknown) => void }
  >();
  let nextId = 0;
  let broken: Error | null = null;
  const settle = (id: number) => {
    const entry = pending.get(id);
    pending.delete(id);
    if (pending.size === 0) worker.unref();
    return entry;
  };
  const failAll = (error: Error) => {
    broken ??= error;
    for (const id of [...pending.keys()]) settle(id)?.reject(error);
  };
  worker.on("message", (reply: WorkerReply) => {
    if (reply.type === "done") settle(reply.id)?.resolve(reply.result);
    else settle(reply.id)?.reject(errorOf(reply.failure));
  });
  worker.on("error", (error) => failAll(new Error(`video worker failed: ${error.message}`)));
  worker.on("exit", (code) => failAll(new Error(`video worker exited (code ${code})`)));

  /** Every request's outcome, settled or not: what close() waits for. */
  const outcomes = new Set<Promise<unknown>>();

  return {
    where: "a worker thread",
    preprocess: (path, options) => {
      if (broken !== null) return Promise.reject(broken);
      const { signal, ...rest } = options;
      if (signal?.aborted) return Promise.reject(signal.reason);
      const id = nextId++;
      const result = new Promise<PreprocessedVideo>((resolve, reject) => {
        if (pending.size === 0) worker.ref();
        pending.set(id, { resolve, reject });
        worker.postMessage({ type: "preprocess", id, path, options: rest } satisfies WorkerRequest);
      });
      const cancel = () => {
        if (pending.has(id)) worker.postMessage({ type: "cancel", id } satisfies WorkerRequest);
      };
      signal?.addEventListener("abort", cancel, { once: true });
      const outcome = result.then(
        () => undefined,
        () => undefined,
      );
      outcomes.add(outcome);
      void outcome.then(() => {
        outcomes.delete(outcome);
        signal?.removeEventListener("abort", cancel);
      });
      return result;
    },
    close: async () => {
      for (const id of pending.keys()) {
        worker.postMessage({ type: "cancel", id } satisfies WorkerRequest);
      }
      // A cancelled request ends once its ffmpeg is gone (the worker kills and awaits it).
      await Promise.allSettled([...outcomes]);
      broken ??= new Error("the video preprocessor is closed");
      await worker.terminate();
    },
  };
}
