import { BackendError } from "../../src/ir/errors.js";
import type { Graph } from "../../src/ir/graph.js";
import { checkInputs } from "../../src/runtime/inputs.js";
import { bindWeights, type WeightStore } from "../../src/runtime/weights.js";
import type { Availability, Backend, Executable } from "../backend.js";
import { STATIC_BIAS_LIMIT } from "./ops/attention-common.js";
import { DENSE_LOGITS_LIMIT } from "./ops/attention-device.js";
import { compileProgram, disposeProgram, execute, type Program } from "./executor.js";
import {
  activate,
  exclusive,
  initialise,
  loadSprigKernel,
  type PlatformOptions,
  type TfjsKind,
} from "./platform.js";
import type { Strategy } from "./types.js";

/**
 * sprig on TensorFlow.js: one implementation for the tfjs backends cpu, wasm, webgl and
 * webgpu (webgl and webgpu load only in browsers, where their packages must be importable).
 *
 * tfjs has one active backend per process. Each Executable makes its own backend active
 * (tf.setBackend) before every run, and runs of all tfjs executables are queued one after
 * another, so executables on different tfjs backends can coexist in one process; switching
 * costs little, but tensors created outside sprig on another backend will be moved by tfjs
 * when next used. `availability()` initialises the backend and leaves it active.
 */

export interface TfjsBackendOptions extends PlatformOptions {
  /**
   * Attention and token-selection lowering (see Strategy in types.ts). Default: "host" on
   * wasm (measured fastest there), "device" elsewhere.
   */
  readonly strategy?: Strategy;
  /**
   * Largest relative-position bias (floats per attention node) precomputed at compile time
   * when table and token index are constants; default STATIC_BIAS_LIMIT (16 Mi floats).
   */
  readonly staticBiasLimit?: number;
  /**
   * Most logits (floats) one dense attention step holds at once, heads grouped to fit;
   * default DENSE_LOGITS_LIMIT (32 Mi floats, what a WebGL texture holds on most devices).
   */
  readonly denseLogitsLimit?: number;
  /**
   * On wasm: run block-sparse attention in sprig's own WebAssembly SIMD kernel
   * (backends/native) when it is built (default true). It keeps each block's keys in cache
   * and fuses products, bias and softmax, where tfjs needs one 2-D matMul per block.
   */
  readonly sprigKernel?: boolean;
}

export function defaultStrategy(kind: TfjsKind): Strategy {
  return kind === "wasm" ? "host" : "device";
}

const DESCRIPTIONS: Readonly<Record<TfjsKind, string>> = {
  cpu: "TensorFlow.js cpu backend (plain JavaScript kernels)",
  wasm: "TensorFlow.js wasm backend (XNNPACK, SIMD where available)",
  webgl: "TensorFlow.js webgl backend (browsers only)",
  webgpu: "TensorFlow.js webgpu backend (browsers only)",
};

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function tfjsBackend(kind: TfjsKind, options: TfjsBackendOptions = {}): Backend {
  const name = `tfjs-${kind}`;
  const strategy = options.strategy ?? defaultStrategy(kind);
  return {
    name,
    // tfjs-cpu is JavaScript on one thread; tfjs-wasm's threaded build does not start in
    // Node (platform-facts.md); webgl and webgpu run on the GPU.
    cores: kind === "cpu" || kind === "wasm" ? "one" : "device",
    description: DESCRIPTIONS[kind],
    availability: async (): Promise<Availability> => {
      try {
        return { ok: true, detail: await exclusive(() => initialise(kind, options)) };
      } catch (error) {
        return { ok: false, reason: `${name}: ${reasonOf(error)}` };
      }
    },
    compile: async (graph: Graph, store: WeightStore): Promise<Executable> => {
      if (strategy === "host" && kind === "webgpu") {
        throw new BackendError(
          `${name}: the "host" strategy needs synchronous reads; use "device"`,
        );
      }
      // Weights are checked before tfjs is touched: a WeightError needs no backend.
      const weights = bindWeights(graph, store);
      const { program, detail, usesKernel } = await exclusive(async () => {
        let platform: string;
        try {
          platform = await initialise(kind, options);
          await activate(kind, options);
        } catch (error) {
          throw new BackendError(`${name} is not available: ${reasonOf(error)}`);
        }
        const kernel =
          kind === "wasm" && options.sprigKernel !== false ? await loadSprigKernel() : null;
        const limits = {
          staticBiasLimit: options.staticBiasLimit ?? STATIC_BIAS_LIMIT,
          denseLogitsLimit: options.denseLogitsLimit ?? DENSE_LOGITS_LIMIT,
          sparseKernel: typeof kernel === "string" ? null : kernel,
        };
        const usesKernel =
          limits.sparseKernel !== null && graph.nodes.some((n) => n.op === "blockSparseAttention");
        return {
          program: compileProgram(graph, weights, kind, strategy, limits),
          detail: platform,
          usesKernel,
        };
      });
      let live: Program | null = program;
      return {
        backend: name,
        graph,
        detail: `${detail}; ${usesKernel ? "block-sparse attention: sprig's WebAssembly SIMD kernel; other attention" : "attention"}: ${strategy === "host" ? "2-D matMuls per (batch, head, block) on host-assembled operands" : "batched matMuls"}${graph.nodes.some((n) => n.op === "quantizedLinear") ? "; int8 linears emulated (integer codes in float32 matMuls)" : ""}`,
        run: async (inputs) => {
          checkInputs(graph, inputs);
          return exclusive(async () => {
            if (live === null)
              throw new BackendError(`${name}: executable for graph ${graph.name} was disposed`);
            await activate(kind, options);
            return execute(live, inputs);
          });
        },
        dispose: () => {
          if (live !== null) disposeProgram(live);
          live = null;
        },
      };
    },
  };
}
