import { beforeAll, describe, expect, it } from "vitest";
import { runReference } from "../../backends/reference/index.js";
import { f32Tensor, type HostTensor, i32Tensor } from "../../src/ir/tensor.js";
import { BACKEND_VARIANTS, type BackendVariant, runOn } from "../support/backends.js";
import { PARITY_GRAPHS, type ParityGraph, type SeededGraph } from "./graphs.js";
import { knownFailure } from "./known-failures.js";

/**
 * Every backend variant against the reference backend (the float64-accumulating oracle) on
 * the same seeded graphs (graphs.ts): the small SViTT vision encoders that the per-backend
 * parity files checked (the union of their graphs), and small text, fusion (with
 * cross-modal pruning) and retrieval models. Every output must be there with the
 * reference's dtype and shape; i32 outputs (kept token indices) must be equal, f32 outputs
 * within the variant's tolerance. The reference itself is the oracle, so it is not a
 * variant here.
 */

interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

/**
 * |got - want| <= atol + rtol·|want| per element, the tolerances of the per-backend parity
 * files, none loosened:
 * - float64 arithmetic (gpu.js cpu mode: float64 in a kernel, float32 storage between
 *   kernels, a little more rounding than the reference): atol 1e-5, rtol 1e-5, as
 *   gpujs/helpers.ts toleranceFor;
 * - float32 arithmetic (onnx, tfjs, gpu.js webasm and gpu): atol 1e-4, as the onnx and tfjs
 *   parity files. gpu.js's float32 engines had rtol 1e-4 on top; they no longer need it:
 *   measured here (2026-12-03), their worst error on every vision graph is 9.6e-7, like
 *   onnx's and tfjs's (at most 1.2e-6), so they get the tighter onnx/tfjs tolerance.
 * The video-text graphs take the same ones: like the vision encoders they are a few
 * post-LayerNorm layers of seeded N(0, 0.02²) weights with O(1) outputs (largest |value| 31
 * in both), and their measured worst errors (float32: 2.4e-6, tfjs on the retrieval model's
 * video_embeds; float64: 9.5e-7, gpu.js cpu mode on the retrieval model) sit as far below
 * these tolerances as the vision graphs' do (float64 there: 2.4e-7).
 */
function toleranceOf(variant: BackendVariant): Tolerance {
  return variant.arithmetic === "float64" ? { atol: 1e-5, rtol: 1e-5 } : { atol: 1e-4, rtol: 0 };
}

/** The first failing element of `got` against `want`, or null. */
function firstMismatch(got: HostTensor, want: HostTensor, tolerance: Tolerance): string | null {
  if (got.dtype !== want.dtype) return `dtype ${got.dtype}, want ${want.dtype}`;
  if (got.shape.join() !== want.shape.join()) return `shape [${got.shape}], want [${want.shape}]`;
  const arrayType = want.dtype === "i32" ? Int32Array : Float32Array;
  if (!(got.data instanceof arrayType)) return `data is not a ${arrayType.name}`;
  const { atol, rtol } = want.dtype === "i32" ? { atol: 0, rtol: 0 } : tolerance;
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.data.length; i++) {
    const excess = Math.abs(got.data[i]! - want.data[i]!) - (atol + rtol * Math.abs(want.data[i]!));
    // NaN fails: !(NaN <= 0).
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst < 0) return null;
  return `[${worst}]: got ${got.data[worst]}, want ${want.data[worst]} (atol ${atol}, rtol ${rtol})`;
}

function expectOutputsMatch(
  got: Record<string, HostTensor>,
  want: Record<string, HostTensor>,
  tolerance: Tolerance,
): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  const mismatches: string[] = [];
  for (const [name, w] of Object.entries(want)) {
    const problem = firstMismatch(got[name]!, w, tolerance);
    if (problem !== null) mismatches.push(`${name}${problem}`);
  }
  expect(mismatches).toEqual([]);
}

/** Each graph built and run on the reference once, on first use. */
const built = new Map<ParityGraph, { seeded: SeededGraph; want: Record<string, HostTensor> }>();

function referenceOf(entry: ParityGraph): {
  seeded: SeededGraph;
  want: Record<string, HostTensor>;
} {
  let value = built.get(entry);
  if (value === undefined) {
    const seeded = entry.build();
    value = { seeded, want: runReference(seeded.graph, seeded.weights, seeded.inputs) };
    built.set(entry, value);
  }
  return value;
}

const VARIANTS = BACKEND_VARIANTS.filter((variant) => variant.name !== "reference");

describe("the comparison", () => {
  const want = {
    y: f32Tensor([2], new Float32Array([1, -2])),
    k: i32Tensor([1], new Int32Array([3])),
  };
  const tolerance = { atol: 1e-4, rtol: 0 };
  const fails = (got: Record<string, HostTensor>) =>
    expect(() => expectOutputsMatch(got, want, tolerance)).toThrow();

  it("passes within the tolerance", () => {
    expectOutputsMatch(
      { y: f32Tensor([2], new Float32Array([1 + 5e-5, -2])), k: want.k },
      want,
      tolerance,
    );
  });

  it("fails past it, on NaN, on a changed shape or dtype, an i32 off by one, a missing output", () => {
    fails({ y: f32Tensor([2], new Float32Array([1 + 2e-4, -2])), k: want.k });
    fails({ y: f32Tensor([2], new Float32Array([Number.NaN, -2])), k: want.k });
    fails({ y: f32Tensor([1, 2], new Float32Array([1, -2])), k: want.k });
    fails({ y: want.y, k: f32Tensor([1], new Float32Array([3])) });
    fails({ y: want.y, k: i32Tensor([1], new Int32Array([4])) });
    fails({ y: want.y });
    fails({ ...want, extra: want.k });
  });
});

describe("the parity graphs are what their names say", () => {
  beforeAll(() => {
    for (const entry of PARITY_GRAPHS) referenceOf(entry);
  });

  it("every variant but the reference is compared", () => {
    expect(BACKEND_VARIANTS.map((v) => v.name)).toContain("reference");
    expect(VARIANTS.length).toBe(BACKEND_VARIANTS.length - 1);
  });

  it("block-sparse graphs have block-sparse attention, pruned ones token selection", () => {
    for (const entry of PARITY_GRAPHS) {
      const ops = new Set(referenceOf(entry).seeded.graph.nodes.map((n) => n.op));
      expect(ops.has("blockSparseAttention"), entry.name).toBe(entry.blockSparse);
      expect(ops.has("topK"), entry.name).toBe(entry.tokenSelection);
    }
  });

  it("the small encoder's layouts are sparse and its second layer has a padded block", () => {
    // 33 tokens (CLS + 32) into layer 0, then CLS + ceil(0.7 · 32) = 24: 23 local tokens in
    // blocks of 8, the last one padded.
    const entry = PARITY_GRAPHS.find((g) => g.name === "vision: sparse, padding reference")!;
    const { graph } = referenceOf(entry).seeded;
    const sparse = graph.nodes.filter((n) => n.op === "blockSparseAttention");
    expect(sparse.map((n) => n.outputs[0]!.shape[1])).toEqual([33, 24]);
  });

  it("cross-modal pruning halves the visual tokens after fusion layers 1 and 2", () => {
    const entry = PARITY_GRAPHS.find((g) => g.name.startsWith("fusion"))!;
    const { want } = referenceOf(entry);
    // keep ceil(0.5 · 32) = 16 of the 32 non-CLS visual tokens, then ceil(0.5 · 16) = 8.
    expect(want["visual_keep_idx.layer1"]?.shape).toEqual([2, 16]);
    expect(want["visual_keep_idx.layer2"]?.shape).toEqual([2, 8]);
  });

  it("the retrieval model scores every (video, caption) pair", () => {
    const entry = PARITY_GRAPHS.find((g) => g.name === "retrieval model")!;
    const { want } = referenceOf(entry);
    expect(want.sim_i2t?.shape).toEqual([2, 3]);
    expect(want.itm_scores_i2t?.shape).toEqual([2, 3]);
    expect(want.itm_scores_t2i?.shape).toEqual([3, 2]);
  });
});

describe.each(VARIANTS.map((variant) => [variant.name, variant] as const))(
  "%s matches the reference backend",
  (_name, variant) => {
    const tolerance = toleranceOf(variant);
    for (const entry of PARITY_GRAPHS) {
      const bug = knownFailure(variant.name, entry.name);
      const test = bug === undefined ? it : it.fails;
      test(bug === undefined ? entry.name : `${entry.name} (fails: ${bug})`, async () => {
        const { seeded, want } = referenceOf(entry);
        const got = await runOn(variant, seeded.graph, seeded.weights, seeded.inputs);
        expectOutputsMatch(got, want, tolerance);
      });
    }
  },
);
