/**
 * The worker thread of video-pool.ts: runs preprocessVideo for each request it receives,
 * concurrently, and sends back the result with its buffers transferred (no copy), or the
 * failure as data. A "cancel" aborts a request's ffprobe / ffmpeg (killed and awaited by
 * ffmpeg.ts), so that the request ends with nothing left running.
 */
import { parentPort } from "node:worker_threads";
import { failureOf, type WorkerReply, type WorkerRequest } from "./video-pool.js";
import { preprocessVideo } from "./video.js";

const port = parentPort;
if (port === null) throw new Error("video-worker runs as a worker thread (video-pool.ts)");

const running = new Map<number, AbortController>();

async function serve(request: WorkerRequest & { type: "preprocess" }): Promise<void> {
  const { id } = request;
  const controller = new AbortController();
  running.set(id, controller);
  let reply: WorkerReply;
  let transfer: ArrayBuffer[] = [];
  try {
    const result = await preprocessVideo(request.path, {
      ...request.options,
      signal: controller.signal,
    });
    reply = { type: "done", id, result };
    transfer = [result.pixelValues.data.buffer, result.frameIndices.buffer].filter(
      (buffer): buffer is ArrayBuffer => buffer instanceof ArrayBuffer,
    );
  } catch (error) {
    reply = { type: "failed", id, failure: failureOf(error) };
  } finally {
    running.delete(id);
  }
  port!.postMessage(reply, transfer);
}

port.on("message", (request: WorkerRequest) => {
  if (request.type === "cancel") running.get(request.id)?.abort();
  else void serve(request);
});
