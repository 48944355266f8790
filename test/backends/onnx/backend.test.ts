import { describe, expect, it } from "vitest";
import { buildOnnxModel, LOWERINGS, onnxBackend } from "../../../backends/onnx/index.js";
import { loadBackend } from "../../../backends/registry.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import { BackendError, InputError, WeightError } from "../../../src/ir/errors.js";
import type { AnyNode, Graph } from "../../../src/ir/graph.js";
import { OP_KINDS } from "../../../src/ir/ops/index.js";
import { f32Tensor } from "../../../src/ir/tensor.js";
import { initWeights, syntheticClip } from "../../../src/models/init.js";

/** Interface behaviour: availability, registry, errors, disposal, the lowering table. */

function smallGraph(): Graph {
  const b = new GraphBuilder("small");
  const x = b.input("x", { dtype: "f32", shape: [2, 5, 8] });
  const y = b.add1("linear", [x, b.weight("w", [4, 8]), b.weight("b", [4])], {});
  b.output("y", b.add1("gelu", [y], {}));
  return b.build();
}

describe("onnx backend: interface", () => {
  it("is available, reports onnxruntime-node's version and the CPU", async () => {
    const availability = await onnxBackend.availability();
    expect(availability.ok).toBe(true);
    if (availability.ok)
      expect(availability.detail).toMatch(/^onnxruntime-node \d+\.\d+\.\d+, cpu$/);
  });

  it('is registered as "onnx"', async () => {
    const backend = await loadBackend("onnx");
    expect(backend.name).toBe("onnx");
  });

  it("has a lowering for every op kind", () => {
    expect(Object.keys(LOWERINGS).sort()).toEqual([...OP_KINDS].sort());
  });

  it("rejects a missing or mis-shaped weight with a WeightError", async () => {
    const graph = smallGraph();
    const weights = initWeights(graph);
    weights.delete("w");
    await expect(onnxBackend.compile(graph, weights)).rejects.toThrow(WeightError);
    expect(() => buildOnnxModel(graph, weights)).toThrow(/missing weight "w"/);
    weights.set("w", f32Tensor([8, 4]));
    await expect(onnxBackend.compile(graph, weights)).rejects.toThrow(WeightError);
  });

  it("rejects wrong, missing and unknown inputs with an InputError", async () => {
    const graph = smallGraph();
    const exe = await onnxBackend.compile(graph, initWeights(graph));
    await expect(exe.run({ x: f32Tensor([2, 5, 7]) })).rejects.toThrow(InputError);
    await expect(exe.run({})).rejects.toThrow(InputError);
    await expect(exe.run({ x: f32Tensor([2, 5, 8]), z: f32Tensor([1]) })).rejects.toThrow(
      InputError,
    );
    exe.dispose();
  });

  it("fails with a BackendError after dispose", async () => {
    const graph = smallGraph();
    const exe = await onnxBackend.compile(graph, initWeights(graph));
    const inputs = syntheticClip(graph);
    expect((await exe.run(inputs)).y!.shape).toEqual([2, 5, 4]);
    exe.dispose();
    await expect(exe.run(inputs)).rejects.toThrow(BackendError);
  });

  it("names the node it cannot lower", () => {
    const graph = smallGraph();
    // A node reading an output its producer does not have.
    const nodes = graph.nodes.map((n) =>
      n.op === "gelu" ? ({ ...n, inputs: [{ node: n.inputs[0]!.node, output: 3 }] } as AnyNode) : n,
    );
    const broken: Graph = { ...graph, nodes };
    expect(() => buildOnnxModel(broken, initWeights(graph))).toThrow(BackendError);
    expect(() => buildOnnxModel(broken, initWeights(graph))).toThrow(/%4 gelu/);
  });

  it("rejects an output named like another input", () => {
    const b = new GraphBuilder("clash");
    const x = b.input("x", { dtype: "f32", shape: [2] });
    b.input("y", { dtype: "f32", shape: [2] });
    b.output("y", b.add1("gelu", [x], {}));
    expect(() => buildOnnxModel(b.build(), new Map())).toThrow(/clashes/);
  });

  it("passes an input straight through to an output of the same name", async () => {
    const b = new GraphBuilder("through");
    const x = b.input("x", { dtype: "f32", shape: [3] });
    b.output("x", x);
    b.output("x2", x);
    const exe = await onnxBackend.compile(b.build(), new Map());
    const value = f32Tensor([3], Float32Array.from([1, 2, 3]));
    const out = await exe.run({ x: value });
    expect(Array.from(out.x!.data)).toEqual([1, 2, 3]);
    expect(Array.from(out.x2!.data)).toEqual([1, 2, 3]);
    exe.dispose();
  });
});
