import { afterEach, describe, expect, it } from "vitest";
import { compileGpujs, gpujsBackend } from "../../../backends/gpujs/index.js";
import { erfStmts } from "../../../backends/gpujs/codegen/dense.js";
import { stmtsText } from "../../../backends/gpujs/codegen/kernel.js";
import {
  packedLayout,
  TEXTURE_SIDE,
  textureSize,
  type View,
} from "../../../backends/gpujs/codegen/views.js";
import { LOWERINGS } from "../../../backends/gpujs/lowering.js";
import { parseMode } from "../../../backends/gpujs/mode.js";
import { buildProgram } from "../../../backends/gpujs/program.js";
import { erf, erfc } from "../../../backends/reference/kernels/math.js";
import { loadBackend } from "../../../backends/registry.js";
import { compileVision } from "../../../src/api/compile.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import { BackendError } from "../../../src/ir/errors.js";
import { OP_KINDS } from "../../../src/ir/ops/index.js";
import { i32Tensor } from "../../../src/ir/tensor.js";
import { initWeights } from "../../../src/models/init.js";
import { visionPreset } from "../../../src/models/presets.js";
import { GL, smallSpec } from "./helpers.js";

/** The code generator, the program builder and mode selection, without running kernels. */

describe("lowering table", () => {
  it("covers every op kind", () => {
    expect(Object.keys(LOWERINGS).sort()).toEqual([...OP_KINDS].sort());
  });
});

describe("erf inside GELU kernels", () => {
  // The generated statements are plain JavaScript: evaluate them in float64.
  const evaluate = new Function("u", `${stmtsText(erfStmts("u"))}\nreturn [erfU, erfcU];`) as (
    u: number,
  ) => [number, number];

  it("is within 1e-10 of erf and erfc on [0, 9] (series below 1, continued fraction above)", () => {
    let worstErf = 0;
    let worstErfc = 0;
    for (let i = 0; i <= 90_000; i++) {
      const u = i / 10_000;
      const [e, c] = evaluate(u);
      worstErf = Math.max(worstErf, Math.abs(e - erf(u)));
      worstErfc = Math.max(worstErfc, Math.abs(c - erfc(u)));
    }
    expect(worstErf).toBeLessThan(1e-10);
    expect(worstErfc).toBeLessThan(1e-10);
  });

  it("keeps erfc's relative accuracy in the tail (no cancellation)", () => {
    for (const u of [2, 3, 4, 5, 6]) {
      const [, c] = evaluate(u);
      expect(Math.abs(c - erfc(u)) / erfc(u)).toBeLessThan(1e-9);
    }
  });
});

describe("buildProgram", () => {
  const { graph } = compileVision(smallSpec("reference", true));
  const program = buildProgram(graph);

  it("shares identical kernels between nodes and names each once", () => {
    const launches = program.steps.filter((s) => s.kind === "launch");
    expect(program.kernels.length).toBeLessThan(launches.length);
    expect(new Set(program.kernels.map((k) => k.name)).size).toBe(program.kernels.length);
    // Both layers' value projections (same shapes) run one kernel.
    const linears = launches.filter((s) => graph.nodes[s.node]!.op === "linear");
    expect(new Set(linears.map((s) => s.kernel)).size).toBeLessThan(linears.length);
  });

  it("frees every intermediate exactly once, after its last reader", () => {
    const freed = program.freeAfter.flat();
    expect(new Set(freed).size).toBe(freed.length);
    const kept = new Set([
      ...program.prologue.map((s) => s.value),
      ...program.outputs.map((o) => o.value),
    ]);
    const produced = program.steps.map((s) => (s.kind === "launch" ? s.result : s.value));
    for (const value of produced) expect(kept.has(value) || freed.includes(value)).toBe(true);
    program.steps.forEach((step, i) => {
      if (step.kind !== "launch") return;
      for (const arg of step.args) {
        const freedAt = program.freeAfter.findIndex((list) => list.includes(arg));
        if (freedAt >= 0) expect(freedAt).toBeGreaterThanOrEqual(i);
      }
    });
  });

  it("folds the block layout into the attention kernels as a constant table", () => {
    const local = program.kernels.find((k) => /LocalLogits$/.test(k.name))!;
    expect(local.constants?.layout?.length).toBeGreaterThan(0);
    expect(local.source).toMatch(/this\.constants\.layout\[\(h \* \d+ \+ m\) \* 2 \+ j\]/);
  });

  it("rejects what float32 index arithmetic cannot address, naming the node", () => {
    const b = new GraphBuilder("huge");
    const x = b.input("x", { dtype: "f32", shape: [2, 1, 1, 1 << 20] });
    b.output("y", b.add1("reshape", [x], { shape: [2, 1 << 20] }));
    expect(() => buildProgram(b.build())).toThrow(BackendError);
    expect(() => buildProgram(b.build())).toThrow(/%1 reshape: reshaping 2097152 elements/);
  });

  it("rejects i32 constants that float32 cannot hold exactly", () => {
    const b = new GraphBuilder("big-int");
    const x = b.input("x", { dtype: "f32", shape: [1, 3, 2] });
    const idx = b.constant("idx", i32Tensor([1, 1], Int32Array.from([1 << 25])));
    b.output("y", b.add1("gather", [x, idx], { axis: 1, keepPrefix: 0 }));
    expect(() => buildProgram(b.build())).toThrow(
      /constant "idx": value 33554432 at 0 outside \[0, 3\)/,
    );
  });
});

describe("mode selection", () => {
  const saved = process.env.SPRIG_GPUJS_MODE;
  afterEach(() => {
    if (saved === undefined) delete process.env.SPRIG_GPUJS_MODE;
    else process.env.SPRIG_GPUJS_MODE = saved;
  });

  it("parses auto, gpu, cpu and webasm, and rejects anything else", () => {
    expect(parseMode(undefined, "x")).toBe("auto");
    expect(parseMode("cpu", "x")).toBe("cpu");
    expect(() => parseMode("vulkan", "SPRIG_GPUJS_MODE")).toThrow(
      /SPRIG_GPUJS_MODE must be one of auto, gpu, cpu, webasm, got "vulkan"/,
    );
  });

  it("is registered as gpujs and reports its mode", async () => {
    process.env.SPRIG_GPUJS_MODE = "cpu";
    const backend = await loadBackend("gpujs");
    expect(backend.name).toBe("gpujs");
    expect(await backend.availability()).toEqual({
      ok: true,
      detail: "gpu.js cpu mode (requested)",
    });
    delete process.env.SPRIG_GPUJS_MODE;
    const auto = await gpujsBackend.availability();
    expect(auto).toEqual({
      ok: true,
      detail: GL.ok
        ? "gpu.js gpu mode (auto: headless-gl available)"
        : `gpu.js cpu mode (auto: ${GL.detail})`,
    });
    process.env.SPRIG_GPUJS_MODE = "bogus";
    expect(await gpujsBackend.availability()).toMatchObject({ ok: false });
  });

  it("honours SPRIG_GPUJS_MODE, and CompileOptions.mode over it", async () => {
    const { graph } = compileVision(smallSpec("reference", true));
    const weights = initWeights(graph, 0);
    process.env.SPRIG_GPUJS_MODE = "webasm";
    const fromEnv = await gpujsBackend.compile(graph, weights);
    expect(fromEnv.detail).toMatch(/^gpu\.js webasm mode/);
    fromEnv.dispose();
    const explicit = await compileGpujs(graph, weights, { mode: "cpu" });
    expect(explicit.detail).toMatch(/^gpu\.js cpu mode \(JavaScript kernels.*; requested\)/);
    explicit.dispose();
  });

  it.skipIf(GL.ok)("refuses gpu mode where headless-gl cannot run", async () => {
    const { graph } = compileVision(smallSpec("reference", true));
    await expect(compileGpujs(graph, initWeights(graph, 0), { mode: "gpu" })).rejects.toThrow(
      /gpujs: gpu mode requested but headless-gl/,
    );
  });

  it("prints every generated kernel at debug level 3", async () => {
    const { graph } = compileVision(smallSpec("reference", true));
    const lines: string[] = [];
    const executable = await compileGpujs(graph, initWeights(graph, 0), {
      mode: "cpu",
      debug: 3,
      debugSink: (line) => lines.push(line),
    });
    executable.dispose();
    expect(lines.length).toBe(buildProgram(graph).kernels.length);
    expect(
      lines.some((line) =>
        /^gpujs kernel linear\d+ \(output \[1\]\[33\]\[64\]\):\n\/\*\*/.test(line),
      ),
    ).toBe(true);
  });
});

describe("texture layout", () => {
  const fits = (view: View) => {
    const [w, h] = textureSize(view);
    return w <= TEXTURE_SIDE && h <= TEXTURE_SIDE;
  };

  it("keeps values that fit a plain texture in it, as gpu.js lays them out", () => {
    // A 2-D view (z = 1, y > 1) is an x-by-y texture; anything else near-square.
    expect(packedLayout({ z: 1, y: 1569, x: 768 })).toBe(false);
    expect(textureSize({ z: 1, y: 1569, x: 768 })).toEqual([768, 1569]);
    expect(packedLayout({ z: 12, y: 1569, x: 1569 })).toBe(false);
    expect(packedLayout({ z: 1, y: 1, x: 27003 })).toBe(false);
    const [w, h] = textureSize({ z: 1, y: 1, x: 27003 });
    expect(w * h).toBeGreaterThanOrEqual(27003);
    expect(Math.abs(w - h)).toBeLessThanOrEqual(2);
  });

  it("packs four floats per texel what would not fit an 8192 x 8192 texture", () => {
    for (const view of [
      { z: 1, y: 10938, x: 12 }, // 8-frame relative-position table
      { z: 1, y: 22602, x: 12 }, // 16 frames
      { z: 12, y: 3137, x: 3137 }, // dense 16-frame logits
    ]) {
      expect(packedLayout(view)).toBe(true);
      expect(fits(view)).toBe(true);
      const [w, h] = textureSize(view);
      expect(w * h).toBeGreaterThanOrEqual(Math.ceil((view.x * view.y * view.z) / 4));
    }
  });

  it("marks the kernels of the 8-frame encoder whose outputs are packed", () => {
    const { graph } = compileVision(visionPreset(8, "svitt"));
    const program = buildProgram(graph);
    const packed = program.kernels.filter((k) => k.packed).map((k) => k.output);
    expect(packed).toContainEqual({ z: 1, y: 10938, x: 12 });
    expect(program.values.every((v) => fits(v.view))).toBe(true);
  });
});
