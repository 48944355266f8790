/**
 * The worker thread of executable-pool.ts: lowers the graph it is given (workerData) on its
 * backend once, says "ready", then runs each request in turn and sends back the outputs, or
 * the failure as data.
 */
import { parentPort, workerData } from "node:worker_threads";
import { loadBackend } from "../../backends/registry.js";
import {
  type ExecutableWorkerReply,
  type ExecutableWorkerRequest,
  type ExecutableWorkerSetup,
  workerErrorOf,
} from "./executable-pool.js";

const port = parentPort;
if (port === null)
  throw new Error("executable-worker runs as a worker thread (executable-pool.ts)");

const setup = workerData as ExecutableWorkerSetup;
const reply = (message: ExecutableWorkerReply) => port.postMessage(message);

try {
  const backend = await loadBackend(setup.backend, setup.choices);
  const executable = await backend.compile(setup.graph, setup.weights, setup.compile);
  // Runs one at a time, in the order they arrive: a backend run is not reentrant.
  let queue: Promise<void> = Promise.resolve();
  port.on("message", (request: ExecutableWorkerRequest) => {
    queue = queue.then(async () => {
      try {
        const outputs = await executable.run(request.inputs);
        // Copied, not transferred: a backend may keep an output's buffer (a constant output).
        reply({ type: "done", id: request.id, outputs });
      } catch (error) {
        reply({ type: "failed", id: request.id, error: workerErrorOf(error) });
      }
    });
  });
  reply({ type: "ready", detail: executable.detail });
} catch (error) {
  reply({ type: "setup-failed", error: workerErrorOf(error) });
}
