/**
 * sprig on TensorFlow.js: the backends tfjs-cpu, tfjs-wasm, tfjs-webgl and tfjs-webgpu, one
 * implementation parameterised by the tfjs backend name.
 *
 * - Lowering (lowering.ts): a table over every op kind; each entry precomputes what it can
 *   at compile time (transposed weights, relative-position bias, index tensors) and returns
 *   a step of tfjs ops. Attention and token selection come in two strategies (types.ts):
 *   "device" (batched tfjs ops only; cpu, webgl, webgpu) and "host" (per-block 2-D matMuls
 *   on operands assembled in JS; the fast path on wasm, see ops/attention-host.ts).
 * - Memory (executor.ts): weights are uploaded once per executable (linear and conv
 *   weights only in their transposed form), steps run inside tf.tidy, intermediate values
 *   are disposed after their last reader, outputs after read-back; tf.memory().numTensors
 *   is the same before and after every run, and dispose() frees the rest.
 * - One tfjs backend is active per process (tf.setBackend is global): every run first
 *   activates its executable's backend, and runs of all tfjs executables are queued, so
 *   executables on different tfjs backends can be used in one process (platform.ts).
 * - Browser-safe: nothing reachable from here imports a Node builtin. In Node the wasm
 *   binaries are found by node-wasm.ts, loaded through a non-literal import(); in browsers
 *   pass `wasmPaths` (the URL folder holding the .wasm files) unless they sit next to the
 *   bundle, and import @tensorflow/tfjs-backend-webgl or -webgpu before using those kinds.
 */
export { defaultStrategy, type TfjsBackendOptions, tfjsBackend } from "./backend.js";
export { LOWERINGS } from "./lowering.js";
export { TFJS_KINDS, type TfjsKind } from "./platform.js";
export type { Lowering, LowerContext, Step, Strategy } from "./types.js";
