import * as tf from "@tensorflow/tfjs-core";
import {
  type Backend,
  type Executable,
  type HostTensor,
  type KernelLaunch,
  loadBrowserBackend,
  nodeLabel,
} from "../src/browser.js";
import type { BrowserBackend } from "./protocol.js";

/**
 * The page's backends, from sprig's browser entry like any page would load them: gpujs in
 * gpu mode (gpu.js's WebGL2 engine) and tfjs on its webgl backend. Each is wrapped so that a
 * case run also reports its compile and run times and, on request, per-kernel times from
 * one extra profiled run:
 * - gpujs: the backend's onLaunch hook sees every kernel launch; in a profiled run each
 *   launch is followed by a one-texel read of its result, and the time from launch to read
 *   is charged to the kernel and the graph node it ran for;
 * - tfjs: tf.profile, which reports every tfjs kernel with its time (GPU timer queries where
 *   the context has EXT_disjoint_timer_query_webgl2, else wall time with a read-back).
 * gpujs's profiled run waits for every kernel, so it takes longer than a normal run.
 */

export interface KernelTime {
  readonly kernel: string;
  readonly nodes: readonly string[];
  readonly calls: number;
  readonly ms: number;
}

/** What one compile + run of a case measured. */
export interface RunRecord {
  compileMs: number | null;
  runMs: number | null;
  profiledRunMs: number | null;
  detail: string | null;
  kernels: KernelTime[] | null;
}

class KernelTally {
  private readonly byKernel = new Map<string, { nodes: Set<string>; calls: number; ms: number }>();

  add(kernel: string, node: string | null, ms: number): void {
    let entry = this.byKernel.get(kernel);
    if (entry === undefined) {
      entry = { nodes: new Set(), calls: 0, ms: 0 };
      this.byKernel.set(kernel, entry);
    }
    if (node !== null) entry.nodes.add(node);
    entry.calls += 1;
    entry.ms += ms;
  }

  rows(): KernelTime[] {
    return [...this.byKernel]
      .map(([kernel, e]) => ({ kernel, nodes: [...e.nodes], calls: e.calls, ms: e.ms }))
      .sort((a, b) => b.ms - a.ms);
  }
}

// ---------------------------------------------------------------------------------------
// gpujs: per-kernel times from the backend's launch hook
// ---------------------------------------------------------------------------------------

/** What a gpu.js WebGL texture (a pipelined kernel's result) offers for reading it back. */
interface GlTexture {
  readonly context: WebGL2RenderingContext;
  readonly texture: WebGLTexture;
  framebuffer(): WebGLFramebuffer;
}

function isGlTexture(value: unknown): value is GlTexture {
  return (
    typeof value === "object" &&
    value !== null &&
    "context" in value &&
    "texture" in value &&
    "framebuffer" in value &&
    typeof value.framebuffer === "function" &&
    typeof WebGL2RenderingContext !== "undefined" &&
    value.context instanceof WebGL2RenderingContext
  );
}

const pixel = new Float32Array(4);

/**
 * Waits until the GPU has written `result`: reads back one texel of it (as gpu.js's own
 * toArray does for all of them). gl.finish() would not do: Chrome does not block on it.
 */
function waitForTexture(result: unknown): void {
  if (!isGlTexture(result)) return;
  const gl = result.context;
  gl.bindFramebuffer(gl.FRAMEBUFFER, result.framebuffer());
  gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, result.texture, 0);
  gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.FLOAT, pixel);
}

/** The tally of the profiled run in progress; null outside one (the hook only returns). */
let gpujsTally: KernelTally | null = null;

function timeLaunch(launch: KernelLaunch): void {
  const tally = gpujsTally;
  if (tally === null) return;
  waitForTexture(launch.result);
  const node = launch.node === null ? "upload" : nodeLabel(launch.node);
  tally.add(launch.kernel, node, performance.now() - launch.startMs);
}

async function profileGpujs(
  executable: Executable,
  inputs: Readonly<Record<string, HostTensor>>,
): Promise<KernelTime[]> {
  gpujsTally = new KernelTally();
  try {
    await executable.run(inputs);
    return gpujsTally.rows();
  } finally {
    gpujsTally = null;
  }
}

// ---------------------------------------------------------------------------------------
// tfjs: tf.profile
// ---------------------------------------------------------------------------------------

async function profileTfjs(
  executable: Executable,
  inputs: Readonly<Record<string, HostTensor>>,
): Promise<KernelTime[]> {
  const info = await tf.profile(async () => {
    await executable.run(inputs);
    return [];
  });
  const tally = new KernelTally();
  for (const kernel of info.kernels) {
    const ms = typeof kernel.kernelTimeMs === "number" ? kernel.kernelTimeMs : Number.NaN;
    tally.add(kernel.name, null, ms);
  }
  return tally.rows();
}

/** How each backend's per-kernel times are taken (shown on the page). */
export function profileMethod(backend: BrowserBackend): string {
  if (backend === "gpujs") {
    return "each generated kernel timed from launch until one texel of its result reads back (the gpujs backend's onLaunch hook)";
  }
  const timers = tf.env().getNumber("WEBGL_DISJOINT_QUERY_TIMER_EXTENSION_VERSION") > 0;
  return timers
    ? "tf.profile with WebGL timer queries (GPU time per tfjs kernel)"
    : "tf.profile without timer queries (wall time per tfjs kernel, each followed by a read-back)";
}

// ---------------------------------------------------------------------------------------
// The wrapped backends
// ---------------------------------------------------------------------------------------

const loaded = new Map<BrowserBackend, Promise<Backend>>();

/** The page's backend `name`, loaded once from the browser entry. */
function innerBackend(name: BrowserBackend): Promise<Backend> {
  let backend = loaded.get(name);
  if (backend === undefined) {
    backend =
      name === "gpujs"
        ? loadBrowserBackend("gpujs", { gpujsMode: "gpu", onLaunch: timeLaunch })
        : loadBrowserBackend("tfjs-webgl");
    loaded.set(name, backend);
  }
  return backend;
}

const PROFILERS: Readonly<
  Record<
    BrowserBackend,
    (e: Executable, inputs: Readonly<Record<string, HostTensor>>) => Promise<KernelTime[]>
  >
> = { gpujs: profileGpujs, "tfjs-webgl": profileTfjs };

/**
 * The backend `name`, wrapped to fill `record` on compile and run; with `profile`, each run
 * is followed by a profiled run whose per-kernel times land in record.kernels.
 */
export async function recordingBackend(
  name: BrowserBackend,
  record: RunRecord,
  profile: boolean,
): Promise<Backend> {
  const inner = await innerBackend(name);
  return {
    name: inner.name,
    cores: inner.cores,
    description: inner.description,
    availability: () => inner.availability(),
    compile: async (graph, weights, options) => {
      const start = performance.now();
      const executable = await inner.compile(graph, weights, options);
      record.compileMs = performance.now() - start;
      record.detail = executable.detail;
      return {
        backend: executable.backend,
        graph: executable.graph,
        get detail() {
          return executable.detail;
        },
        run: async (inputs) => {
          const runStart = performance.now();
          const outputs = await executable.run(inputs);
          record.runMs = performance.now() - runStart;
          record.detail = executable.detail;
          if (profile) {
            const profileStart = performance.now();
            record.kernels = await PROFILERS[name](executable, inputs);
            record.profiledRunMs = performance.now() - profileStart;
          }
          return outputs;
        },
        dispose: () => executable.dispose(),
      };
    },
  };
}

/** A plain (unrecorded) backend, for the benchmark. */
export function browserBackend(name: BrowserBackend): Promise<Backend> {
  return innerBackend(name);
}
