/**
 * Patterns of the language in the vision pipeline (passes/pipelines.ts, sparsify-attention):
 * - `sparsity.attention.pattern: "svitt"` compiles to the very layouts SViTT's own source
 *   does, at every layer (so conformance-exact), saturated rows included;
 * - a t, y, x pattern at layer 0 follows the graph's token order (z-curve), and after a
 *   token drop uses the spread coordinates, which its label says;
 * - layers of one token count share one compiled pattern unless it draws random blocks;
 * - the pattern reaches the spec from `--pattern` and a config file, validated there.
 */
import { describe, expect, it } from "vitest";
import { pruneTokens } from "../../passes/prune-tokens.js";
import { sparsifyAttention } from "../../passes/sparsify-attention.js";
import { compileVision } from "../../src/api/compile.js";
import { specFromFlags } from "../../src/cli/spec-options.js";
import { ConfigError } from "../../src/ir/errors.js";
import { type AnyNode, type Graph, isOp, type Node } from "../../src/ir/graph.js";
import { buildVisionModel } from "../../src/models/beit.js";
import type { VisionModelSpec } from "../../src/models/config.js";
import { MODELS } from "../../src/models/index.js";
import { visionPreset } from "../../src/models/presets.js";
import { tokenOrder } from "../../src/models/token-order.js";
import { runPasses } from "../../src/pass-manager.js";
import { parsePattern } from "../../src/patterns/library/index.js";
import { window3dReads } from "../../src/patterns/window3d.js";
import { planReads } from "./support.js";

function withPattern(spec: VisionModelSpec, pattern: string | undefined): VisionModelSpec {
  const attention = spec.sparsity.attention!;
  return {
    ...spec,
    sparsity: {
      ...spec.sparsity,
      attention: pattern === undefined ? attention : { ...attention, pattern },
    },
  };
}

function sparseNodes(graph: Graph): Node<"blockSparseAttention">[] {
  return graph.nodes.filter((n: AnyNode): n is Node<"blockSparseAttention"> =>
    isOp(n, "blockSparseAttention"),
  );
}

describe("library patterns in the vision pipeline", () => {
  it('pattern "svitt" compiles to the layouts of SViTT\'s own source at every layer', () => {
    for (const frames of [1, 2, 8]) {
      for (const padding of ["reference", "masked"] as const) {
        const preset = visionPreset(frames);
        const base: VisionModelSpec = {
          ...preset,
          sparsity: {
            ...preset.sparsity,
            // At 2 frames the last layers keep 136 tokens, 3 blocks for 1 local + 3 random:
            // saturated rows, which read a block twice under "reference" (masked: random 1).
            attention: {
              ...preset.sparsity.attention!,
              padding,
              perHead: frames === 2,
              ...(padding === "masked" ? { random: 1 } : {}),
            },
          },
        };
        const own = sparseNodes(compileVision(base).graph);
        const viaLibrary = sparseNodes(compileVision(withPattern(base, "svitt")).graph);
        expect(viaLibrary.length).toBe(12);
        viaLibrary.forEach((node, i) => {
          expect(node.attrs.pattern.layout).toEqual(own[i]!.attrs.pattern.layout);
        });
      }
    }
  });

  it("reads t, y, x in the graph's token order at layer 0, and spread ones after a drop", () => {
    const preset = visionPreset(2);
    const spec: VisionModelSpec = withPattern(
      { ...preset, sparsity: { ...preset.sparsity, tokenOrder: "zcurve" } },
      "window3d:1x3x3",
    );
    const nodes = sparseNodes(compileVision(spec).graph);
    const order = tokenOrder("zcurve", [2, 14, 14])!;
    const first = nodes[0]!.attrs.pattern;
    const reads = planReads(first.layout, 56, 392, 12);
    const window = window3dReads({ grid: [2, 14, 14], kernel: [1, 3, 3] });
    for (let q = 0; q < 392; q++) {
      for (let k = 0; k < 392; k++) {
        if (reads(0, q, k) !== window(order[q]!, order[k]!)) {
          expect({ q, k, read: reads(0, q, k) }).toEqual({ q, k, read: !reads(0, q, k) });
        }
      }
    }
    expect(first.origin).toEqual({ kind: "custom", label: "window3d 1x3x3" });
    // After the drop at layer 3 the pattern says its coordinates are spread.
    expect(nodes[4]!.attrs.pattern.origin).toEqual({
      kind: "custom",
      label: "window3d 1x3x3; t, y, x spread over the kept tokens",
    });
  });

  it("refuses t, y, x after a drop when asked for exact coordinates only", () => {
    const preset = visionPreset(2);
    const graph = buildVisionModel(preset);
    const sparsify = (pattern: string) =>
      runPasses(graph, [
        pruneTokens({
          keepRate: preset.sparsity.tokens!.keepRate,
          afterLayers: preset.sparsity.tokens!.dropAfter,
        }),
        sparsifyAttention({
          pattern: {
            kind: "pattern",
            blockSize: 56,
            pattern: parsePattern(pattern),
            seed: 0,
            perHead: false,
            grid: [2, 14, 14],
            exactCoordinatesOnly: true,
          },
          padding: "masked",
        }),
      ]);
    expect(() => sparsify("divided")).toThrow(ConfigError);
    expect(() => sparsify("divided")).toThrow(/layer 4 \(275 local tokens\).*run-time data/);
    expect(() => sparsify("window:w=30")).not.toThrow();
  });

  it("shares one compiled pattern per token count, unless it draws random blocks", () => {
    const nodes = sparseNodes(compileVision(withPattern(visionPreset(2), "divided")).graph);
    expect(nodes[0]!.attrs.pattern).toBe(nodes[3]!.attrs.pattern);
    expect(nodes[3]!.attrs.pattern).not.toBe(nodes[4]!.attrs.pattern);
    const seeded = sparseNodes(compileVision(withPattern(visionPreset(8), "bigbird")).graph);
    expect(seeded[0]!.attrs.pattern).not.toBe(seeded[1]!.attrs.pattern);
    expect(seeded[0]!.attrs.pattern.layout).not.toEqual(seeded[1]!.attrs.pattern.layout);
  });

  it("reaches the spec from --pattern and from a config file, checked there", async () => {
    const spec = (await specFromFlags(MODELS.vision, {
      frames: "2",
      pattern: "divided + causal:frames=1",
    })) as VisionModelSpec;
    expect(spec.sparsity.attention?.pattern).toBe("divided + causal:frames=1");
    const label = sparseNodes(compileVision(spec).graph)[0]!.attrs.pattern.origin;
    expect(label).toEqual({
      kind: "custom",
      label: "divided space-time + causal in time, 1 frame",
    });
    await expect(specFromFlags(MODELS.vision, { pattern: "windw" })).rejects.toThrow(
      /config field "sparsity\.attention\.pattern": pattern "windw" names no library pattern/,
    );
    await expect(
      specFromFlags(MODELS.retrieval, { model: "retrieval", pattern: "divided" }),
    ).resolves.toMatchObject({ vision: { sparsity: { attention: { pattern: "divided" } } } });
  });
});
