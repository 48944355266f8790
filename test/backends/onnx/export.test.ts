import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { exportOnnx, onnxBackend } from "../../../backends/onnx/index.js";
import { compileVision } from "../../../src/api/compile.js";
import { registerExport } from "../../../src/cli/commands/export.js";
import { FileWriteError } from "../../../src/io/atomic.js";
import type { Graph } from "../../../src/ir/graph.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import { BEIT_BASE } from "../../../src/models/config.js";
import { initWeights, syntheticClip } from "../../../src/models/init.js";
import { svittSparsity } from "../../../src/models/presets.js";
import { maxAbsDiff } from "./helpers.js";

/** The model file: written atomically, loadable by a fresh session, same outputs. */

const SMALL_MODEL = {
  hiddenSize: 64,
  numHeads: 4,
  intermediateSize: 128,
  imageSize: 32,
  patchSize: 8,
};

function smallEncoder(): Graph {
  const sparsity = svittSparsity(2);
  return compileVision({
    model: { ...BEIT_BASE, ...SMALL_MODEL, numLayers: 2 },
    frames: 2,
    batch: 1,
    sparsity: {
      ...sparsity,
      attention: { ...sparsity.attention!, blockSize: 8, random: 1 },
      tokens: { keepRate: 0.7, dropAfter: [0] },
    },
  }).graph;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sprig-onnx-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs a model file in a fresh onnxruntime session. */
async function runFile(path: string, inputs: Record<string, HostTensor>) {
  const session = await ort.InferenceSession.create(path, { executionProviders: ["cpu"] });
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) {
    feeds[name] = new ort.Tensor(t.dtype === "f32" ? "float32" : "int32", t.data, [...t.shape]);
  }
  const out = await session.run(feeds);
  await session.release();
  return out;
}

describe("onnx export", () => {
  it("writes a model that a fresh session runs to the same outputs", async () => {
    const graph = smallEncoder();
    const weights = initWeights(graph, 1);
    const inputs = syntheticClip(graph, 2);
    const path = join(dir, "encoder.onnx");
    const size = await exportOnnx(graph, weights, path);
    expect((await readFile(path)).byteLength).toBe(size);
    const fromFile = await runFile(path, inputs);
    const exe = await onnxBackend.compile(graph, weights);
    const direct = await exe.run(inputs);
    exe.dispose();
    expect(Object.keys(fromFile).sort()).toEqual(Object.keys(direct).sort());
    for (const [name, want] of Object.entries(direct)) {
      const got = fromFile[name]!;
      expect(got.dims, name).toEqual(want.shape);
      if (want.dtype === "i32") {
        expect(got.type, name).toBe("int32");
        expect(Array.from(got.data as Int32Array), name).toEqual(Array.from(want.data));
      } else {
        const gotTensor: HostTensor = {
          dtype: "f32",
          shape: [...got.dims],
          data: got.data as Float32Array,
        };
        expect(maxAbsDiff(gotTensor, want), name).toBeLessThanOrEqual(1e-6);
      }
    }
  });

  it("leaves no file behind when the directory does not exist", async () => {
    const graph = smallEncoder();
    const path = join(dir, "missing", "encoder.onnx");
    await expect(exportOnnx(graph, initWeights(graph), path)).rejects.toThrow(FileWriteError);
    expect(await readdir(dir)).not.toContain("missing");
  });
});

describe("sprig export", () => {
  async function run(args: string[]): Promise<string> {
    const program = new Command("sprig").exitOverride();
    registerExport(program);
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      await program.parseAsync(args, { from: "user" });
    } finally {
      spy.mockRestore();
    }
    return lines.join("");
  }

  async function configFile(): Promise<string> {
    const path = join(dir, "small.json");
    const config = { model: SMALL_MODEL, sparsity: { attention: { blockSize: 8, random: 1 } } };
    await writeFile(path, JSON.stringify(config));
    return path;
  }

  const modelFlags = async (): Promise<string[]> => [
    "--frames",
    "2",
    "--layers",
    "2",
    "--drop-after",
    "0",
    "--keep-rate",
    "0.7",
    "--config",
    await configFile(),
  ];

  it("prints where it wrote and the size, and the file loads", async () => {
    const path = join(dir, "cli.onnx");
    const text = await run(["export", "--onnx", path, ...(await modelFlags())]);
    const size = (await readFile(path)).byteLength;
    expect(text).toContain(`wrote ${path}`);
    expect(text).toContain(`${size} bytes`);
    expect(text).toContain("pixel_values f32[1,2,3,32,32]");
    const session = await ort.InferenceSession.create(path);
    expect([...session.inputNames]).toEqual(["pixel_values"]);
    await session.release();
  });

  it("fails with a FileWriteError for a bad path and leaves no file", async () => {
    const before = (await readdir(dir)).sort();
    const missing = join(dir, "no-such-dir", "cli.onnx");
    await expect(run(["export", "--onnx", missing, ...(await modelFlags())])).rejects.toThrow(
      /cannot write .*no-such-dir/,
    );
    // A directory is not a file to write.
    await expect(run(["export", "--onnx", dir, ...(await modelFlags())])).rejects.toThrow(
      FileWriteError,
    );
    expect((await readdir(dir)).sort()).toEqual(before);
  });

  it("rejects a bad weight seed", async () => {
    await expect(
      run([
        "export",
        "--onnx",
        join(dir, "x.onnx"),
        "--weight-seed",
        "-1",
        ...(await modelFlags()),
      ]),
    ).rejects.toThrow(/weight-seed/);
  });
});
