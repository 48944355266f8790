import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { nodesOf } from "../../src/ir/graph.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { buildVisionModel } from "../../src/models/beit.js";
import type { BeitConfig } from "../../src/models/config.js";
import { NO_SPARSITY, smallSpec } from "./support.js";

const H1 = new URL("../../../shared/conformance/h1_model_pixels_sparse.json", import.meta.url);

interface Sidecar {
  module_spec: { config: Record<string, unknown>; num_frames: number };
  tensors: Record<string, { role: string; shape: number[] }>;
}

/** h1's BeitConfig, transcribed by hand from its sidecar (checked against it below). */
const H1_MODEL: BeitConfig = {
  hiddenSize: 64,
  numHeads: 4,
  numLayers: 4,
  intermediateSize: 128,
  layerNormEps: 1e-12,
  layerScale: true,
  relPosBias: true,
  numClsTokens: 1,
  imageSize: 32,
  patchSize: 8,
  channels: 3,
};

describe("buildVisionModel weight names", () => {
  const sidecar = JSON.parse(readFileSync(H1, "utf8")) as Sidecar;

  it("uses h1's configuration", () => {
    const c = sidecar.module_spec.config;
    expect([
      c.hidden_size,
      c.num_attention_heads,
      c.num_hidden_layers,
      c.intermediate_size,
      c.layer_norm_eps,
      c.image_size,
      c.patch_size,
      c.num_channels,
      c.num_cls_tokens,
      c.use_relative_position_bias,
      (c.layer_scale_init_value as number) > 0,
    ]).toEqual([64, 4, 4, 128, 1e-12, 32, 8, 3, 1, true, true]);
    expect(sidecar.module_spec.num_frames).toBe(2);
  });

  it("has exactly the reference state_dict's parameters, with their shapes", () => {
    const batch = sidecar.tensors["input.pixel_values"]!.shape[0]!;
    const graph = buildVisionModel({ model: H1_MODEL, frames: 2, batch, sparsity: NO_SPARSITY });
    const ours = Object.fromEntries(
      nodesOf(graph, "weight").map((n) => [n.attrs.name, [...n.attrs.type.shape]]),
    );
    const reference = Object.fromEntries(
      Object.entries(sidecar.tensors)
        .filter(([, t]) => t.role === "weight")
        .map(([name, t]) => [name, t.shape]),
    );
    const missing = Object.keys(reference).filter((k) => !(k in ours));
    const extra = Object.keys(ours).filter((k) => !(k in reference));
    expect({ missing, extra }).toEqual({ missing: [], extra: [] });
    expect(ours).toEqual(reference);
    // cls token, patch projection weight and bias; per layer: 2 layer scales, q (w, b), k (w),
    // v (w, b), bias table, output dense (w, b), intermediate (w, b), output (w, b), two
    // LayerNorms (w, b each) = 18; pooler LayerNorm (w, b)
    expect(Object.keys(ours)).toHaveLength(3 + 4 * 18 + 2);
  });

  it("leaves the buffers (relative_position_index) out: they are derived, not weights", () => {
    const buffers = Object.entries(sidecar.tensors).filter(([, t]) => t.role === "buffer");
    expect(buffers.length).toBe(4);
    const graph = buildVisionModel({ model: H1_MODEL, frames: 2, batch: 2, sparsity: NO_SPARSITY });
    const names = new Set(nodesOf(graph, "weight").map((n) => n.attrs.name));
    for (const [name] of buffers) expect(names.has(name)).toBe(false);
  });

  it("drops lambda_1/2 without layer scale and the bias tables without relative position bias", () => {
    const graph = buildVisionModel(
      smallSpec({ model: { layerScale: false, relPosBias: false, numLayers: 1 } }),
    );
    const names = nodesOf(graph, "weight").map((n) => n.attrs.name);
    expect(names.some((n) => /lambda/.test(n))).toBe(false);
    expect(names.some((n) => /relative_position/.test(n))).toBe(false);
    expect(names).toContain("encoder.layer.0.attention.attention.query.weight");
  });
});

describe("buildVisionModel structure", () => {
  it("tags roles, names outputs and has the small model's shapes", () => {
    const graph = verifyGraph(buildVisionModel(smallSpec({ batch: 2 }), { diagnostics: true }));
    const entry = graph.nodes.filter((n) => n.role === "encoderInput");
    expect(entry.map((n) => [n.op, n.outputs[0]!.shape])).toEqual([["prependTokens", [2, 33, 32]]]);
    const index = graph.nodes.filter((n) => n.role === "tokenIndex");
    expect(index.map((n) => [n.op, n.outputs[0]])).toEqual([
      ["constant", { dtype: "i32", shape: [1, 32] }],
    ]);
    const outputs = graph.nodes.filter((n) => n.role === "layerOutput").map((n) => n.layer);
    expect(outputs).toEqual([0, 1, 2]);
    expect(graph.outputs.map((o) => o.name)).toEqual([
      "hidden_states.0",
      "cls_attention_probs.layer0",
      "hidden_states.1",
      "cls_attention_probs.layer1",
      "hidden_states.2",
      "cls_attention_probs.layer2",
      "last_hidden_state",
      "pooler_output",
    ]);
    const attn = nodesOf(graph, "attention");
    expect(attn.map((n) => n.attrs)).toEqual(
      [0, 1, 2].map(() => ({
        heads: 4,
        numCls: 1,
        probs: "cls",
        mask: false,
        relPosBias: { window: [2, 4, 4] },
      })),
    );
    expect(attn.map((n) => n.name)).toEqual([
      "encoder.layer.0.attention.attention",
      "encoder.layer.1.attention.attention",
      "encoder.layer.2.attention.attention",
    ]);
  });
});
