import {
  GPU,
  type IKernelRunShortcut,
  Input,
  type KernelFunction,
  type KernelOutput,
  type OutputDimensions,
} from "gpu.js";
import { BackendError } from "../../src/ir/errors.js";
import { type AnyNode, nodeLabel } from "../../src/ir/graph.js";
import { type HostTensor, numElements } from "../../src/ir/tensor.js";
import type { GeneratedKernel } from "./codegen/kernel.js";
import { textureSize } from "./codegen/views.js";
import { GPUJS_SETTING, type GpujsMode } from "./mode.js";
import { checkIntValues, type Program, type Source, type Step } from "./program.js";

/**
 * Runs a Program with gpu.js. Every kernel is created with `pipeline: true` and
 * `immutable: true`: in gpu mode each call returns a fresh texture that the next kernels
 * read directly (no readback), and the runner deletes it after its last reader; in cpu and
 * webasm modes gpu.js has no device memory and "textures" are the nested arrays it returns.
 * Host data crosses only at the uploads (weights and constants once, inputs per run) and
 * when the outputs are read at the end.
 */

/** gpu.js's names (Kernel.mode) for the engines each mode may run on. */
const ENGINES: Readonly<Record<GpujsMode, readonly string[]>> = {
  gpu: ["gpu", "headlessgl"],
  cpu: ["cpu"],
  webasm: ["webasm"],
};

/** A device tensor: a gpu.js texture (gpu mode) or nested Float32Arrays [z][y][x]. */
type DeviceValue = KernelOutput;

interface Deletable {
  delete(): void;
}

function isTexture(value: unknown): value is Deletable & { toArray(): unknown } {
  return typeof value === "object" && value !== null && "toArray" in value && "delete" in value;
}

/** The kernel function object for gpu.createKernel, built from its generated JavaScript. */
export function kernelFunction(kernel: GeneratedKernel): KernelFunction {
  try {
    return new Function(`return (${kernel.js});`)() as KernelFunction;
  } catch (error) {
    throw new BackendError(
      `gpujs: generated kernel ${kernel.name} is not valid JavaScript: ${(error as Error).message}`,
    );
  }
}

/** Host data as the float32 values the device holds (i32 values are exact below 2^24). */
function asFloat32(tensor: HostTensor): Float32Array {
  return tensor.dtype === "f32" ? tensor.data : Float32Array.from(tensor.data);
}

/** Flattens nested [z][y][x] arrays (or a texture's toArray()) into one Float32Array. */
export function flatten(value: DeviceValue, count: number): Float32Array {
  const nested = (isTexture(value) ? value.toArray() : value) as ArrayLike<unknown>;
  const out = new Float32Array(count);
  let offset = 0;
  const walk = (part: ArrayLike<unknown>): void => {
    if (part instanceof Float32Array) {
      out.set(part, offset);
      offset += part.length;
      return;
    }
    for (let i = 0; i < part.length; i++) walk(part[i] as ArrayLike<unknown>);
  };
  walk(nested);
  if (offset !== count) throw new BackendError(`gpujs: read ${offset} values, expected ${count}`);
  return out;
}

/**
 * In gpu mode every value is one float32 texture (gpu.js's "single" precision; layout in
 * views.ts, textureSize): it must fit the context's maximum texture size.
 */
function checkTextureSizes(program: Program, gpu: GPU): void {
  const features = (gpu.Kernel as unknown as { features?: { maxTextureSize?: number } }).features;
  const side = features?.maxTextureSize;
  if (side === undefined) return;
  for (const value of program.values) {
    const [w, h] = textureSize(value.view);
    if (w > side || h > side) {
      const { x, y, z } = value.view;
      throw new BackendError(
        `gpujs: ${nodeLabel(program.graph.nodes[value.node]!)}: ${value.label} (${x * y * z} values) needs a ${w}x${h} texture; this GPU allows ${side}x${side}`,
      );
    }
  }
}

/** One kernel launch, as a LaunchObserver sees it right after gpu.js returned. */
export interface KernelLaunch {
  /** The generated kernel's name. */
  readonly kernel: string;
  /** The graph node it ran for; null for the uploads of weights, constants and inputs. */
  readonly node: AnyNode | null;
  /**
   * What gpu.js returned: in gpu mode a texture the GPU may still be writing (reading one
   * texel of it waits for the kernel), else nested Float32Arrays.
   */
  readonly result: unknown;
  /** performance.now() just before the launch. */
  readonly startMs: number;
}

/** Called after every kernel launch (e.g. to time kernels); see GpujsCompileOptions. */
export type LaunchObserver = (launch: KernelLaunch) => void;

export class ProgramRunner {
  private readonly gpu: GPU;
  private readonly kernels = new Map<string, IKernelRunShortcut>();
  private readonly resident = new Map<number, DeviceValue>();
  /** Kernels gpu.js moved to a different engine than requested (e.g. its cpu fallback). */
  readonly degraded = new Map<string, string>();
  private disposed = false;

  constructor(
    readonly program: Program,
    readonly mode: GpujsMode,
    weights: ReadonlyMap<string, HostTensor>,
    private readonly observer: LaunchObserver | null = null,
  ) {
    this.gpu = new GPU({ mode: GPUJS_SETTING[mode] });
    if (mode === "gpu") checkTextureSizes(program, this.gpu);
    for (const kernel of program.kernels) {
      const settings = {
        output: [kernel.output.x, kernel.output.y, kernel.output.z],
        pipeline: true,
        immutable: true,
        precision: "single" as const,
        tactic: "precision" as const,
        optimizeFloatMemory: kernel.packed,
        ...(kernel.constants === null ? {} : { constants: kernel.constants }),
      };
      this.kernels.set(kernel.name, this.gpu.createKernel(kernelFunction(kernel), settings));
    }
    for (const step of program.prologue) {
      this.resident.set(step.value, this.upload(step.kernel, step.value, step.source, weights));
    }
  }

  private kernel(name: string): IKernelRunShortcut {
    const kernel = this.kernels.get(name);
    if (kernel === undefined) throw new BackendError(`gpujs: no kernel ${name}`);
    return kernel;
  }

  private upload(
    kernelName: string,
    value: number,
    source: Source,
    bound: ReadonlyMap<string, HostTensor> | Readonly<Record<string, HostTensor>>,
  ): DeviceValue {
    let tensor: HostTensor | undefined;
    if (source.kind === "constant") tensor = source.tensor;
    else
      tensor =
        bound instanceof Map
          ? bound.get(source.name)
          : (bound as Record<string, HostTensor>)[source.name];
    if (tensor === undefined)
      throw new BackendError(`gpujs: ${source.kind} "${source.name}" is not bound`);
    const { view } = this.program.values[value]!;
    const size: OutputDimensions = [view.x, view.y, view.z];
    return this.call(kernelName, [new Input(asFloat32(tensor) as unknown as number[], size)], null);
  }

  private call(name: string, args: unknown[], node: number | null): DeviceValue {
    const kernel = this.kernel(name);
    const startMs = this.observer === null ? 0 : performance.now();
    let result: DeviceValue;
    try {
      result = kernel(...(args as Parameters<IKernelRunShortcut>));
    } catch (error) {
      const where =
        node === null ? name : `${name} (${nodeLabel(this.program.graph.nodes[node]!)})`;
      throw new BackendError(`gpujs: kernel ${where} failed: ${(error as Error).message}`);
    }
    const engine = (kernel.kernel.constructor as { mode?: string }).mode;
    if (engine !== undefined && !ENGINES[this.mode].includes(engine) && !this.degraded.has(name)) {
      this.degraded.set(name, kernel.kernel.fallbackReason ?? `ran on ${engine}`);
    }
    if (this.observer !== null) {
      const graphNode = node === null ? null : (this.program.graph.nodes[node] ?? null);
      this.observer({ kernel: name, node: graphNode, result, startMs });
    }
    return result;
  }

  /** Uploads the inputs, runs every launch, frees values after their last reader, reads outputs. */
  run(inputs: Readonly<Record<string, HostTensor>>): Record<string, HostTensor> {
    if (this.disposed) throw new BackendError("gpujs: executable was disposed");
    for (const check of this.program.inputChecks) {
      const tensor = inputs[check.input];
      if (tensor === undefined || tensor.dtype !== "i32") continue;
      const { min, limit, why } = check.range;
      const problem = checkIntValues(`input "${check.input}"`, tensor.data, min, limit, why);
      if (problem !== null) throw new BackendError(`gpujs: ${problem}`);
    }
    const live = new Map<number, DeviceValue>(this.resident);
    const release = (id: number) => {
      const value = live.get(id);
      live.delete(id);
      if (isTexture(value)) value.delete();
    };
    try {
      this.program.steps.forEach((step: Step, i) => {
        if (step.kind === "upload") {
          live.set(step.value, this.upload(step.kernel, step.value, step.source, inputs));
        } else {
          const args = step.args.map((id) => {
            const value = live.get(id);
            if (value === undefined) throw new BackendError(`gpujs: value ${id} is not live`);
            return value;
          });
          live.set(step.result, this.call(step.kernel, args, step.node));
        }
        for (const id of this.program.freeAfter[i]!) release(id);
      });
      const result: Record<string, HostTensor> = {};
      for (const output of this.program.outputs) {
        const value = live.get(output.value);
        if (value === undefined)
          throw new BackendError(`gpujs: output "${output.name}" has no value`);
        const count = numElements(output.type.shape);
        const data = flatten(value, count);
        const shape = [...output.type.shape];
        result[output.name] =
          output.type.dtype === "f32"
            ? { dtype: "f32", shape, data }
            : { dtype: "i32", shape, data: Int32Array.from(data, Math.round) };
      }
      return result;
    } finally {
      for (const id of [...live.keys()]) if (!this.resident.has(id)) release(id);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const value of this.resident.values()) if (isTexture(value)) value.delete();
    this.resident.clear();
    this.gpu.destroy().catch(() => undefined);
  }
}
