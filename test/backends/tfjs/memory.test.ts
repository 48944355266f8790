import * as tf from "@tensorflow/tfjs-core";
import { describe, expect, it } from "vitest";
import { type TfjsKind, tfjsBackend } from "../../../backends/tfjs/index.js";
import type { Strategy } from "../../../backends/tfjs/types.js";
import { smallModel } from "./support.js";

/**
 * No tensor leaks: tf.memory().numTensors is identical before and after every one of 100
 * runs, and back to its starting value once the executable is disposed.
 */

const BACKENDS: readonly [TfjsKind, Strategy][] = [
  ["wasm", "host"],
  ["wasm", "device"],
  ["cpu", "device"],
  ["cpu", "host"],
];

describe("tfjs memory", () => {
  const model = smallModel({ padding: "masked" });

  for (const [kind, strategy] of BACKENDS) {
    it(`tfjs-${kind} (${strategy}): 100 runs leave tf.memory().numTensors unchanged`, async () => {
      const backend = tfjsBackend(kind, { strategy });
      await backend.availability();
      const start = tf.memory().numTensors;
      const executable = await backend.compile(model.graph, model.weights);
      const resident = tf.memory().numTensors;
      expect(resident).toBeGreaterThan(start);
      const counts: number[] = [];
      for (let i = 0; i < 100; i++) {
        const before = tf.memory().numTensors;
        await executable.run(model.inputs);
        counts.push(tf.memory().numTensors - before);
      }
      expect(counts.filter((c) => c !== 0)).toEqual([]);
      expect(tf.memory().numTensors).toBe(resident);
      executable.dispose();
      expect(tf.memory().numTensors).toBe(start);
    });
  }

  it("keeps linear weights only as their transposes (no second copy on the device)", async () => {
    // Without sprig's kernel, which keeps the bias tables on the host: every weight is uploaded.
    const backend = tfjsBackend("wasm", { sprigKernel: false });
    await backend.availability();
    const weightBytes = [...model.weights.values()].reduce((n, t) => n + t.data.byteLength, 0);
    const before = tf.memory().numBytes;
    const executable = await backend.compile(model.graph, model.weights);
    const added = tf.memory().numBytes - before;
    executable.dispose();
    // Weights once, plus small precomputed bias tables and index tensors.
    expect(added).toBeGreaterThanOrEqual(weightBytes);
    expect(added).toBeLessThan(1.2 * weightBytes);
  });

  it("executables on tfjs-wasm and tfjs-cpu take turns in one process", async () => {
    const wasm = await tfjsBackend("wasm").compile(model.graph, model.weights);
    const cpu = await tfjsBackend("cpu").compile(model.graph, model.weights);
    try {
      const first = await wasm.run(model.inputs);
      const before = tf.memory().numTensors;
      // Interleaved and concurrent: runs are queued and each activates its own backend.
      const results = await Promise.all([
        cpu.run(model.inputs),
        wasm.run(model.inputs),
        cpu.run(model.inputs),
        wasm.run(model.inputs),
      ]);
      expect(tf.getBackend()).toBe("wasm");
      for (const outputs of results) {
        for (const [name, t] of Object.entries(first)) {
          const got = outputs[name]!;
          let worst = 0;
          for (let i = 0; i < t.data.length; i++) {
            worst = Math.max(worst, Math.abs(got.data[i]! - t.data[i]!));
          }
          expect(worst, name).toBeLessThan(1e-4);
        }
      }
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      wasm.dispose();
      cpu.dispose();
    }
  });
});
