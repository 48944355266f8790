import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import type { Backend, Executable } from "../../../backends/backend.js";
import { compileGpujs } from "../../../backends/gpujs/index.js";
import { type GpujsMode, probeHeadlessGl } from "../../../backends/gpujs/mode.js";
import { runReference } from "../../../backends/reference/index.js";
import type { Graph } from "../../../src/ir/graph.js";
import type { PaddingMode } from "../../../src/ir/pattern.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import type { VisionModelSpec } from "../../../src/models/config.js";
import { SMALL_BEIT } from "../../support/small-beit.js";

export const CONFORMANCE_DIR = fileURLToPath(
  new URL("../../../../shared/conformance/", import.meta.url),
);

/** Whether gpu mode can run here (headless-gl built and an X display, e.g. xvfb-run -a). */
export const GL = await probeHeadlessGl();

/**
 * Engines every numeric test runs on: cpu (float64 arithmetic) and webasm (float32, no GPU
 * needed) always, gpu where headless-gl works.
 */
export const MODES: readonly GpujsMode[] = GL.ok ? ["cpu", "webasm", "gpu"] : ["cpu", "webasm"];

/** The gpujs backend pinned to one engine. */
export function gpujsIn(mode: GpujsMode): Backend {
  return {
    name: "gpujs",
    cores: "device",
    description: `gpujs (${mode})`,
    availability: async () => ({ ok: true, detail: mode }),
    compile: (graph, weights, options) => compileGpujs(graph, weights, { ...options, mode }),
  };
}

/** Runs `graph` on gpujs in `mode` and disposes the executable. */
export async function runGpujs(
  graph: Graph,
  weights: ReadonlyMap<string, HostTensor>,
  inputs: Readonly<Record<string, HostTensor>>,
  mode: GpujsMode,
): Promise<{ outputs: Record<string, HostTensor>; detail: string }> {
  const executable: Executable = await compileGpujs(graph, weights, { mode });
  try {
    const outputs = await executable.run(inputs);
    return { outputs, detail: executable.detail };
  } finally {
    executable.dispose();
  }
}

/**
 * The small SViTT encoder of the parity tests: hidden 64, 4 heads, 2 layers, 2 frames of
 * 32x32 in 8x8 patches (32 local tokens), block 8, local 1 + random 1, keep 0.7 after layer 0.
 */
export function smallSpec(
  padding: PaddingMode,
  perHead: boolean,
  options: { batch?: number; blockSize?: number; imageSize?: number } = {},
): VisionModelSpec {
  return {
    model: { ...SMALL_BEIT, imageSize: options.imageSize ?? 32 },
    frames: 2,
    batch: options.batch ?? 1,
    sparsity: {
      attention: {
        blockSize: options.blockSize ?? 8,
        local: 1,
        random: 1,
        seed: 0,
        perHead,
        padding,
      },
      tokens: { keepRate: 0.7, dropAfter: [0] },
      tokenOrder: "none",
    },
  };
}

/** |got - want| <= atol + rtol·|want| everywhere; i32 tensors must match exactly. */
export function expectTensorClose(
  name: string,
  got: HostTensor | undefined,
  want: HostTensor | undefined,
  atol: number,
  rtol: number,
): void {
  expect(got, `output ${name}`).toBeDefined();
  expect(want, `reference output ${name}`).toBeDefined();
  expect(got!.dtype, name).toBe(want!.dtype);
  expect(got!.shape, name).toEqual(want!.shape);
  if (want!.dtype === "i32") {
    expect(Array.from(got!.data), name).toEqual(Array.from(want!.data));
    return;
  }
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want!.data.length; i++) {
    const g = got!.data[i]!;
    const w = want!.data[i]!;
    const excess = Math.abs(g - w) - (atol + rtol * Math.abs(w));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `${name}[${worst}]: got ${got!.data[worst]}, want ${want!.data[worst]} (atol ${atol}, rtol ${rtol})`,
    );
  }
}

/** Runs `graph` on the reference and on gpujs in `mode`, and compares every output. */
export async function expectParity(
  graph: Graph,
  weights: ReadonlyMap<string, HostTensor>,
  inputs: Readonly<Record<string, HostTensor>>,
  mode: GpujsMode,
  tolerance: { atol: number; rtol: number },
): Promise<void> {
  const want = runReference(graph, weights, inputs);
  const { outputs } = await runGpujs(graph, weights, inputs, mode);
  expect(Object.keys(outputs).sort()).toEqual(Object.keys(want).sort());
  for (const name of Object.keys(want)) {
    expectTensorClose(name, outputs[name], want[name], tolerance.atol, tolerance.rtol);
  }
}

/**
 * Tolerances for comparing with the reference. cpu mode computes in float64 and rounds to
 * float32 between kernels, a little more often than the reference; webasm and gpu compute in
 * float32 throughout.
 */
export function toleranceFor(mode: GpujsMode): { atol: number; rtol: number } {
  return mode === "cpu" ? { atol: 1e-5, rtol: 1e-5 } : { atol: 1e-4, rtol: 1e-4 };
}
