/**
 * The onnx backend's staged execution: the graph cut at block-sparse attention nodes
 * (backends/onnx/segments.ts), and the "auto" choice between staged and one model.
 * Numerical agreement of staged runs with the reference is in parity.test.ts and
 * conformance.test.ts (the "native attention" variant).
 */
import { describe, expect, it } from "vitest";
import { nativeStatus } from "../../../backends/native/index.js";
import { createOnnxBackend } from "../../../backends/onnx/index.js";
import { crossingName, splitGraph } from "../../../backends/onnx/segments.js";
import { loadBackend } from "../../../backends/registry.js";
import { attentionGraphs } from "../../../src/api/attention-bench.js";
import { compileVision } from "../../../src/api/compile.js";
import { refKey } from "../../../src/ir/graph.js";
import { initWeights } from "../../../src/models/init.js";
import { svittSparsity } from "../../../src/models/presets.js";
import { SMALL_BEIT } from "../../support/small-beit.js";

const graph = compileVision({
  model: { ...SMALL_BEIT, numLayers: 3 },
  frames: 2,
  batch: 1,
  sparsity: {
    ...svittSparsity(2),
    attention: { ...svittSparsity(2).attention!, blockSize: 8, random: 1 },
    tokens: { keepRate: 0.7, dropAfter: [0] },
  },
}).graph;
const isAttention = (node: { op: string }) => node.op === "blockSparseAttention";

describe("splitGraph", () => {
  const stages = splitGraph(graph, isAttention);

  it("puts each block-sparse attention node in a host stage, between ONNX segments", () => {
    const attention = graph.nodes.filter(isAttention).map((node) => node.id);
    expect(attention).toHaveLength(3);
    expect(
      stages.filter((s) => s.kind === "host").map((s) => s.kind === "host" && s.node.id),
    ).toEqual(attention);
    expect(stages.map((s) => s.kind)).toEqual([
      "onnx",
      "host",
      "onnx",
      "host",
      "onnx",
      "host",
      "onnx",
    ]);
  });

  it("feeds every stage only from graph sources and earlier stages", () => {
    const produced = new Set<string>();
    for (const node of graph.nodes) {
      if (node.op === "input" || node.op === "weight" || node.op === "constant") {
        produced.add(refKey({ node: node.id, output: 0 }));
      }
    }
    for (const stage of stages) {
      const reads = stage.kind === "onnx" ? stage.inputs.map((x) => x.ref) : stage.node.inputs;
      for (const ref of reads) expect(produced.has(refKey(ref)), refKey(ref)).toBe(true);
      const writes =
        stage.kind === "onnx"
          ? stage.outputs.map((x) => x.ref)
          : stage.node.outputs.map((_, output) => ({ node: stage.node.id, output }));
      for (const ref of writes) produced.add(refKey(ref));
    }
    for (const { ref } of graph.outputs) expect(produced.has(refKey(ref))).toBe(true);
  });

  it("names crossing tensors after the node and output they come from", () => {
    const names = stages.flatMap((s) => (s.kind === "onnx" ? s.outputs : []));
    for (const { name, ref } of names) expect(name).toBe(crossingName(ref));
    expect(crossingName({ node: 12, output: 0 })).toBe("sprig.12");
    expect(crossingName({ node: 12, output: 1 })).toBe("sprig.12.1");
  });

  it("keeps graph inputs under their names in the segments that read them", () => {
    const first = stages[0]!;
    expect(first.kind).toBe("onnx");
    if (first.kind === "onnx") expect(first.inputs.map((x) => x.name)).toContain("pixel_values");
  });
});

describe.runIf(nativeStatus().ok)("onnx backend: when attention runs in the native kernel", () => {
  it('"auto" stages attention-dominated graphs only', async () => {
    const { sparse } = attentionGraphs(1, { tokenIndex: "input" });
    const backend = createOnnxBackend();
    const attention = await backend.compile(sparse, initWeights(sparse, 0));
    const encoder = await backend.compile(graph, initWeights(graph, 0));
    try {
      expect(attention.detail).toMatch(/block-sparse attention in sprig's native kernel/);
      expect(encoder.detail).not.toMatch(/native kernel/);
    } finally {
      attention.dispose();
      encoder.dispose();
    }
  });

  it("the registry's kernels choice maps to hostAttention (on, off, auto)", async () => {
    const { sparse } = attentionGraphs(1, { tokenIndex: "input" });
    const details: string[] = [];
    for (const [kernels, g] of [
      ["on", graph],
      ["off", sparse],
      ["auto", sparse],
    ] as const) {
      const executable = await (await loadBackend("onnx", { kernels })).compile(
        g,
        initWeights(g, 0),
      );
      details.push(executable.detail);
      executable.dispose();
    }
    expect(details[0]).toMatch(/native kernel/);
    expect(details[1]).not.toMatch(/native kernel/);
    expect(details[2]).toMatch(/native kernel/);
  });

  it("hostAttention true stages the encoder; false never stages", async () => {
    const staged = await createOnnxBackend({ hostAttention: true }).compile(
      graph,
      initWeights(graph, 0),
    );
    const { sparse } = attentionGraphs(1, { tokenIndex: "input" });
    const single = await createOnnxBackend({ hostAttention: false }).compile(
      sparse,
      initWeights(sparse, 0),
    );
    try {
      expect(staged.detail).toMatch(/native kernel \(4 ONNX segments\)/);
      expect(single.detail).not.toMatch(/native kernel/);
    } finally {
      staged.dispose();
      single.dispose();
    }
  });
});
