import * as tf from "@tensorflow/tfjs-core";
import { beforeAll, describe, expect, it } from "vitest";
import { type TfjsKind, tfjsBackend } from "../../../backends/tfjs/index.js";
import type { Strategy } from "../../../backends/tfjs/types.js";
import { BackendError, InputError, WeightError } from "../../../src/ir/errors.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import { relPosTableRows } from "../../../src/ir/relpos.js";
import { f32Tensor, i32Tensor } from "../../../src/ir/tensor.js";
import { customLayout } from "../../../src/patterns/layouts.js";
import { smallModel } from "./support.js";

/** Errors users can cause, and that a failing run leaks nothing. */

const BACKENDS: readonly [TfjsKind, Strategy][] = [
  ["wasm", "host"],
  ["wasm", "device"],
  ["cpu", "device"],
  ["cpu", "host"],
];

/** Block-sparse attention over q, k, v inputs with a run-time token index (window 1x2x4). */
function attentionWithTokenIndex() {
  const b = new GraphBuilder("sparse_tokenidx");
  const type = { dtype: "f32" as const, shape: [1, 9, 8] };
  const [q, k, v] = ["q", "k", "v"].map((name) => b.input(name, type));
  const window: [number, number, number] = [1, 2, 4];
  const table = b.weight("table", [relPosTableRows(window), 2]);
  const idx = b.input("token_idx", { dtype: "i32", shape: [1, 8] });
  const [context] = b.add("blockSparseAttention", [q!, k!, v!, table, idx], {
    heads: 2,
    pattern: {
      globalTokens: 1,
      blockSize: 4,
      layout: customLayout([[0], [1]], 1),
      origin: { kind: "custom", label: "test" },
    },
    padding: "reference",
    relPosBias: { window },
  });
  b.output("context", context!);
  const graph = b.build();
  const weights = new Map([["table", f32Tensor([relPosTableRows(window), 2])]]);
  const inputs = {
    q: f32Tensor([1, 9, 8]),
    k: f32Tensor([1, 9, 8]),
    v: f32Tensor([1, 9, 8]),
    token_idx: i32Tensor([1, 8], Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7])),
  };
  return { graph, weights, inputs };
}

describe("tfjs errors", () => {
  const model = smallModel();

  for (const [kind, strategy] of BACKENDS) {
    describe(`tfjs-${kind} (${strategy})`, () => {
      const backend = tfjsBackend(kind, { strategy });
      beforeAll(async () => {
        expect((await backend.availability()).ok).toBe(true);
      });

      it("rejects a missing weight with a WeightError naming it", async () => {
        const weights = new Map(model.weights);
        weights.delete("encoder.layer.1.attention.attention.query.weight");
        const before = tf.memory().numTensors;
        await expect(backend.compile(model.graph, weights)).rejects.toThrow(WeightError);
        await expect(backend.compile(model.graph, weights)).rejects.toThrow(
          /encoder\.layer\.1\.attention\.attention\.query\.weight/,
        );
        expect(tf.memory().numTensors).toBe(before);
      });

      it("rejects a mis-shaped weight with a WeightError", async () => {
        const weights = new Map(model.weights);
        weights.set("pooler.layernorm.bias", f32Tensor([3]));
        await expect(backend.compile(model.graph, weights)).rejects.toThrow(WeightError);
      });

      it("rejects wrong inputs with an InputError", async () => {
        const executable = await backend.compile(model.graph, model.weights);
        try {
          const pixels = model.inputs.pixel_values!;
          const before = tf.memory().numTensors;
          await expect(executable.run({})).rejects.toThrow(InputError);
          await expect(
            executable.run({ pixel_values: f32Tensor([1, 2, 3, 32, 16]) }),
          ).rejects.toThrow(InputError);
          await expect(executable.run({ pixel_values: i32Tensor(pixels.shape) })).rejects.toThrow(
            InputError,
          );
          await expect(
            executable.run({ pixel_values: pixels, extra: f32Tensor([1]) }),
          ).rejects.toThrow(InputError);
          expect(tf.memory().numTensors).toBe(before);
        } finally {
          executable.dispose();
        }
      });

      it("refuses to run after dispose", async () => {
        const executable = await backend.compile(model.graph, model.weights);
        executable.dispose();
        await expect(executable.run(model.inputs)).rejects.toThrow(BackendError);
      });

      it("a run that fails part-way (token index outside the window) leaks nothing", async () => {
        const { graph, weights, inputs } = attentionWithTokenIndex();
        const executable = await backend.compile(graph, weights);
        try {
          await executable.run(inputs);
          const before = tf.memory().numTensors;
          const bad = {
            ...inputs,
            token_idx: i32Tensor([1, 8], Int32Array.from([0, 1, 2, 3, 4, 5, 6, 99])),
          };
          await expect(executable.run(bad)).rejects.toThrow();
          expect(tf.memory().numTensors).toBe(before);
          await executable.run(inputs);
          expect(tf.memory().numTensors).toBe(before);
        } finally {
          executable.dispose();
        }
      });
    });
  }

  it("the host strategy is refused on webgpu (it needs synchronous reads)", async () => {
    await expect(
      tfjsBackend("webgpu", { strategy: "host" }).compile(model.graph, model.weights),
    ).rejects.toThrow(BackendError);
  });
});
