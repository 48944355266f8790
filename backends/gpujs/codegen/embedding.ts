import type { Node } from "../../../src/ir/graph.js";
import { formatShape, type TensorType } from "../../../src/ir/tensor.js";
import { sumLoop } from "./kernel.js";
import { input, kernelName, type NodePlan, single } from "./plan.js";
import { at, floorDiv, flt, int, viewOf } from "./views.js";

/**
 * patchEmbed: Conv2d with kernel = stride = p on every frame. Pixels [B, T, Cin, H, W] have
 * the view [B·T·Cin][H][W] and the weight [C, Cin, p, p] the view [C·Cin][p][p]; output token
 * n = t·hp·wp + py·wp + px of batch item b, channel c:
 *   out[b, n, c] = bias[c] + Σ_{ci, ky, kx} w[c, ci, ky, kx] · pix[b, t, ci, py·p + ky, px·p + kx]
 * summed in (ci, ky, kx) order like the reference.
 */
export function lowerPatchEmbed(node: Node<"patchEmbed">, inputs: readonly TensorType[]): NodePlan {
  const [pixels] = inputs;
  const [, frames, cin, height, width] = pixels!.shape as [number, number, number, number, number];
  const p = node.attrs.patchSize;
  const hp = height / p;
  const wp = width / p;
  const outShape = node.outputs[0]!.shape;
  return single([
    {
      label: "tokens",
      args: [input(0), input(1), input(2)],
      spec: {
        name: kernelName(node),
        doc: `patchEmbed ${formatShape(pixels!.shape)} -> ${formatShape(outShape)}: ${p}x${p} patches, ${hp}x${wp} per frame.`,
        params: ["pixels", "weight", "bias"],
        output: viewOf(outShape),
        body: [
          `const frame = ${floorDiv("ty", hp * wp)};`,
          `const inFrame = ty - frame * ${int(hp * wp)};`,
          `const py = ${floorDiv("inFrame", wp)};`,
          `const px = inFrame - py * ${int(wp)};`,
          "let acc = 0.0;",
          {
            head: `for (let ci = 0; ci < ${int(cin)}; ci++)`,
            body: [
              {
                head: `for (let ky = 0; ky < ${int(p)}; ky++)`,
                body: [
                  ...sumLoop(
                    "acc",
                    "kx",
                    0,
                    p,
                    (kx) =>
                      `${at("weight", `tx * ${int(cin)} + ci`, "ky", kx)} * ${at("pixels", `(tz * ${int(frames)} + frame) * ${int(cin)} + ci`, `py * ${int(p)} + ky`, `px * ${int(p)} + ${kx}`)}`,
                  ),
                ],
              },
            ],
          },
          `return acc + ${at("bias", "0", "0", "tx")};`,
        ],
      },
    },
  ]);
}

/** prependTokens: out[b] = [prefix[b'], x[b'']] along tokens (b', b'' = 0 for batch-1 operands). */
export function lowerPrependTokens(
  node: Node<"prependTokens">,
  inputs: readonly TensorType[],
): NodePlan {
  const [prefix, x] = inputs;
  const count = prefix!.shape[1]!;
  const pb = prefix!.shape[0] === 1 ? "0" : "tz";
  const xb = x!.shape[0] === 1 ? "0" : "tz";
  const outShape = node.outputs[0]!.shape;
  return single([
    {
      label: "tokens",
      args: [input(0), input(1)],
      spec: {
        name: kernelName(node),
        doc: `prependTokens ${formatShape(prefix!.shape)} + ${formatShape(x!.shape)} -> ${formatShape(outShape)}.`,
        params: ["prefix", "x"],
        output: viewOf(outShape),
        body: [
          { head: `if (ty < ${int(count)})`, body: [`return ${at("prefix", pb, "ty", "tx")};`] },
          `return ${at("x", xb, `ty - ${int(count)}`, "tx")};`,
        ],
      },
    },
  ]);
}

/** meanTokens: out[b, c] = Σ_{n = skip}^{N-1} x[b, n, c] / (N - skip). */
export function lowerMeanTokens(node: Node<"meanTokens">, inputs: readonly TensorType[]): NodePlan {
  const [x] = inputs;
  const tokens = x!.shape[1]!;
  const { skip } = node.attrs;
  const outShape = node.outputs[0]!.shape;
  return single([
    {
      label: "mean",
      args: [input(0)],
      spec: {
        name: kernelName(node),
        doc: `meanTokens ${formatShape(x!.shape)} -> ${formatShape(outShape)}: mean over tokens ${skip}..${tokens - 1}.`,
        params: ["x"],
        output: viewOf(outShape),
        body: [
          "let acc = 0.0;",
          ...sumLoop("acc", "n", skip, tokens, (n) => at("x", "ty", n, "tx")),
          `return acc / ${flt(tokens - skip)};`,
        ],
      },
    },
  ]);
}
