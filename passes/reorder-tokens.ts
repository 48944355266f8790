/**
 * reorder-tokens: lay the video tokens out along a space-filling curve (SViTT's
 * token_3d_order), so that blocks of consecutive tokens are compact in (t, h, w) and
 * block-local attention sees spatio-temporal neighbours.
 *
 * Rewrites: the encoder input [CLS, tokens] becomes [CLS, tokens[order]] (a gather), and
 * the encoder's token index becomes `order`, so relative position bias and kept-token
 * outputs still speak in original positions.
 *
 * Declines: kind "none". Requires the graph's token index to be the encoder's own
 * (a constant), not a run-time input.
 */
import { ConfigError } from "../src/ir/errors.js";
import type { TensorRef } from "../src/ir/graph.js";
import { rewriteGraph } from "../src/ir/rewrite.js";
import { i32Tensor } from "../src/ir/tensor.js";
import { type TokenOrderKind, tokenOrder } from "../src/models/token-order.js";
import type { Pass } from "../src/pass-manager.js";

export interface ReorderTokensOptions {
  readonly kind: TokenOrderKind;
  readonly window: readonly [number, number, number];
  readonly globalTokens: number;
}

export function reorderTokens(options: ReorderTokensOptions): Pass {
  return {
    name: "reorder-tokens",
    description: "order video tokens along a z-curve or Hilbert curve",
    run(graph) {
      const order = tokenOrder(options.kind, options.window);
      if (order === null) return graph;
      const tokens = order.length;
      const entry = graph.nodes.find((n) => n.role === "encoderInput");
      const index = graph.nodes.find((n) => n.role === "tokenIndex");
      if (entry === undefined || index === undefined || index.op !== "constant") {
        throw new ConfigError(
          "sparsity.tokenOrder",
          `${graph.name} has no encoder input with its own token index`,
        );
      }
      const indexTokens = index.outputs[0]!.shape[1];
      if (indexTokens !== tokens) {
        throw new ConfigError(
          "sparsity.tokenOrder",
          `window ${options.window.join("x")} has ${tokens} tokens but the encoder has ${indexTokens}`,
        );
      }
      const orderTensor = i32Tensor([1, tokens], order);
      return rewriteGraph(graph, (node, { builder, inputs }) => {
        if (node.id === index.id) {
          return [builder.constant("token_order", orderTensor, "tokenIndex")];
        }
        if (node.id !== entry.id) return undefined;
        const [sequence] = builder.add(node.op, inputs, node.attrs as never, {
          ...node,
          role: null,
        });
        const orderRef: TensorRef = builder.add1(
          "constant",
          [],
          { name: "token_order.gather", value: orderTensor },
          {
            name: "token_order.gather",
            layer: null,
          },
        );
        return [
          builder.add1(
            "gather",
            [sequence!, orderRef],
            { axis: 1, keepPrefix: options.globalTokens },
            { name: `${node.name}.reorder`, layer: null, role: "encoderInput" },
          ),
        ];
      });
    },
  };
}
