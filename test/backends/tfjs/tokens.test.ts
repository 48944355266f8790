import { describe, expect, it } from "vitest";
import { runReference } from "../../../backends/reference/index.js";
import { type TfjsKind, tfjsBackend } from "../../../backends/tfjs/index.js";
import { topKRow } from "../../../backends/tfjs/ops/tokens.js";
import type { Strategy } from "../../../backends/tfjs/types.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import { f32Tensor, type HostTensor, i32Tensor } from "../../../src/ir/tensor.js";

/** Token selection ops against the reference kernels, ties and batch broadcasting included. */

function topKGraph(batch: number, len: number, k: number) {
  const b = new GraphBuilder("topk");
  const scores = b.input("scores", { dtype: "f32", shape: [batch, len] });
  b.output("idx", b.add1("topK", [scores], { k }));
  return b.build();
}

/** gather with keepPrefix 1 of x [xb, 5, 3] by idx [ib, 2] along axis 1, and of an i32 index. */
function gatherGraph(xb: number, ib: number) {
  const b = new GraphBuilder("gather");
  const x = b.input("x", { dtype: "f32", shape: [xb, 5, 3] });
  const idx = b.input("idx", { dtype: "i32", shape: [ib, 2] });
  const tokens = b.input("tokens", { dtype: "i32", shape: [1, 4] });
  b.output("kept", b.add1("gather", [x, idx], { axis: 1, keepPrefix: 1 }));
  b.output("tokens", b.add1("gather", [tokens, idx], { axis: 1, keepPrefix: 0 }));
  return b.build();
}

const CONFIGS: readonly [TfjsKind, Strategy][] = [
  ["wasm", "host"],
  ["wasm", "device"],
  ["cpu", "device"],
  ["cpu", "host"],
];

async function run(
  kind: TfjsKind,
  strategy: Strategy,
  graph: ReturnType<typeof topKGraph>,
  inputs: Record<string, HostTensor>,
) {
  const executable = await tfjsBackend(kind, { strategy }).compile(graph, new Map());
  try {
    return await executable.run(inputs);
  } finally {
    executable.dispose();
  }
}

describe("topKRow", () => {
  it("ranks larger first, exact ties to the lower index, NaN first; returns ascending", () => {
    const row = Float32Array.from([0.5, 0.9, 0.5, Number.NaN, 0.1, 0.9]);
    expect(Array.from(topKRow(row, 1))).toEqual([3]);
    expect(Array.from(topKRow(row, 3))).toEqual([1, 3, 5]);
    expect(Array.from(topKRow(row, 4))).toEqual([0, 1, 3, 5]);
  });
});

describe("tfjs token ops", () => {
  for (const [kind, strategy] of CONFIGS) {
    it(`tfjs-${kind} (${strategy}): topK matches the reference, ties included`, async () => {
      const graph = topKGraph(2, 6, 3);
      const scores = f32Tensor([2, 6], Float32Array.from([3, 1, 4, 1, 5, 9, 2, 7, 2, 7, 2, 1]));
      const want = runReference(graph, new Map(), { scores });
      expect(Array.from(want.idx!.data)).toEqual([2, 4, 5, 0, 1, 3]);
      const got = await run(kind, strategy, graph, { scores });
      expect(Array.from(got.idx!.data)).toEqual(Array.from(want.idx!.data));
    });

    it(`tfjs-${kind} (${strategy}): gather broadcasts x and idx batches`, async () => {
      for (const [xb, ib] of [
        [2, 2],
        [1, 2],
        [2, 1],
      ] as const) {
        const graph = gatherGraph(xb, ib);
        const x = f32Tensor(
          [xb, 5, 3],
          Float32Array.from({ length: xb * 15 }, (_, i) => i),
        );
        const idx = i32Tensor([ib, 2], Int32Array.from([3, 0, 1, 2].slice(0, ib * 2)));
        const tokens = i32Tensor([1, 4], Int32Array.from([10, 11, 12, 13]));
        const inputs = { x, idx, tokens };
        const want = runReference(graph, new Map(), inputs);
        const got = await run(kind, strategy, graph, inputs);
        for (const name of ["kept", "tokens"]) {
          expect(got[name]!.shape).toEqual(want[name]!.shape);
          expect(Array.from(got[name]!.data)).toEqual(Array.from(want[name]!.data));
        }
      }
    });
  }
});
