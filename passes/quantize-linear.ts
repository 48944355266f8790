/**
 * quantize-linear: int8 linear layers (the `int8` precision of a vision spec).
 *
 * Rewrites y = linear(x, W, b) inside the transformer layers of the chosen stacks into
 *   s = weightScales(W)                        per-channel scales, f32 [out], in the graph
 *   y = quantizedLinear(x, W, s, b)            int8 weights, uint8 activations per tensor
 * (formulas in src/ir/ops/types.ts). The pass sees no weight values: the scales are a node
 * of the graph, and the int8 codes of W against them are formed by each backend once, when
 * the executable is created (onnx writes them as an int8 initializer and drops the float
 * weight). Each weightScales node sits right before its one reader, so a backend that cuts
 * the graph into stages (onnx around host attention) always finds both in one stage.
 *
 * Matches: linear nodes with a layer (q, k, v, the attention output projection, the FFN)
 * in one of `stacks` (null: the vision model's own single-stack graph; "vision": the
 * retrieval model's vision encoder) whose weight is a weight node.
 * Declines: attention and softmax (kept fp32: the token selection reads their
 * probabilities), the patch embedding, LayerNorms and GELU (not linears), linears outside
 * layers (pooler, retrieval projections and heads: small, and what the scores read
 * directly), other stacks (the text encoder), and linears whose weight is computed at run
 * time (nothing to quantise ahead of time).
 *
 * Contract: not exact. Every output differs from fp32 by quantisation error; the
 * accuracy against fp32 (pooled-embedding cosine, max deviation, token-selection flips,
 * retrieval ranking overlap) is measured, never assumed: bench/precision.bench.ts. Within
 * int8, every backend matches the reference kernels (the oracle), which emulate
 * onnxruntime's integer kernels exactly. Run it after sink-token-selection: a quantised
 * linear is not per-token (its activation scale spans every row), so it would stop the
 * selection from sinking.
 */
import { metaOf } from "../src/ir/builder.js";
import { type AnyNode, type Graph, isOp } from "../src/ir/graph.js";
import { rewriteGraph } from "../src/ir/rewrite.js";
import type { Pass } from "../src/pass-manager.js";

export interface QuantizeLinearOptions {
  /** Layer stacks whose layers are quantised; null stands for a single-stack graph. */
  readonly stacks: readonly (string | null)[];
}

function quantisable(graph: Graph, node: AnyNode, stacks: readonly (string | null)[]): boolean {
  if (!isOp(node, "linear") || node.layer === null || !stacks.includes(node.stack)) return false;
  return graph.nodes[node.inputs[1]!.node]!.op === "weight";
}

export function quantizeLinear(options: QuantizeLinearOptions): Pass {
  return {
    name: "quantize-linear",
    description: "int8 linear layers: per-channel int8 weights, dynamically quantised activations",
    run(graph) {
      if (!graph.nodes.some((n) => quantisable(graph, n, options.stacks))) return graph;
      return rewriteGraph(graph, (node, { builder, inputs }) => {
        if (!quantisable(graph, node, options.stacks)) return undefined;
        const [x, w, bias] = inputs;
        const meta = metaOf(node);
        const scales = builder.add1(
          "weightScales",
          [w!],
          {},
          {
            ...meta,
            name: `${node.name}.weight_scales`,
            role: null,
          },
        );
        const operands = bias === undefined ? [x!, w!, scales] : [x!, w!, scales, bias];
        return [builder.add1("quantizedLinear", operands, {}, meta)];
      });
    },
  };
}
