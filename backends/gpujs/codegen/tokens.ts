import type { Node } from "../../../src/ir/graph.js";
import { formatShape, type TensorType } from "../../../src/ir/tensor.js";
import type { Stmt } from "./kernel.js";
import { input, kernelName, type NodePlan, single, temp } from "./plan.js";
import { at, axesOfView, elementAt, flt, int, viewOf } from "./views.js";

/**
 * Token selection on the device. i32 tensors (indices) are carried as float32 values, exact
 * below 2^24. topK is data-dependent, but its output size k is static, so it runs as three
 * gather-style kernels instead of a host sort:
 *   rank[b, j] = #{ i : i beats j }   (i beats j: s_i > s_j, ties to the lower index; NaN
 *                                       beats every number, like the reference's ordering)
 *   slot[b, j] = rank[b, j] < k ? #{ i < j : rank[b, i] < k } : -1
 *   idx[b, p]  = the j with slot[b, j] = p
 * Ranks form a permutation of 0..L-1 (the order is total), so exactly k tokens have a slot
 * and idx lists them in ascending index order, as the reference's sorted top-k does.
 * Cost: 2·L² comparisons plus k·L per batch row, which a GPU spreads over L threads.
 */

/** tokenScores: scores[b, j] = Σ_h probs[b, h, row, skip + j] / H, probs viewed [B·H][R][K]. */
export function lowerTokenScores(
  node: Node<"tokenScores">,
  inputs: readonly TensorType[],
): NodePlan {
  const [probs] = inputs;
  const heads = probs!.shape[1]!;
  const { row, skip } = node.attrs;
  const outShape = node.outputs[0]!.shape;
  return single([
    {
      label: "scores",
      args: [input(0)],
      spec: {
        name: kernelName(node),
        doc: `tokenScores ${formatShape(probs!.shape)} -> ${formatShape(outShape)}: mean over ${heads} heads of row ${row}, keys from ${skip}.`,
        params: ["probs"],
        output: viewOf(outShape),
        body: [
          "let acc = 0.0;",
          {
            head: `for (let h = 0; h < ${int(heads)}; h++)`,
            body: [
              `acc += ${at("probs", `ty * ${int(heads)} + h`, int(row), `tx + ${int(skip)}`)};`,
            ],
          },
          `return acc / ${flt(heads)};`,
        ],
      },
    },
  ]);
}

/** topK in three kernels (see the file comment). Scores [B, L] are viewed [1][B][L]. */
export function lowerTopK(node: Node<"topK">, inputs: readonly TensorType[]): NodePlan {
  const [scores] = inputs;
  const [batch, len] = scores!.shape as [number, number];
  const { k } = node.attrs;
  // NaN flags as numbers: s === s is false only for NaN.
  const rank = {
    name: kernelName(node, "Rank"),
    doc: `topK rank of each of ${len} scores per row: how many scores beat it (larger, ties to the lower index, NaN first).`,
    params: ["scores"],
    output: viewOf([batch, len]),
    body: [
      `const s = ${at("scores", "0", "ty", "tx")};`,
      "const sNaN = s === s ? 0 : 1;",
      "let rank = 0;",
      {
        head: `for (let i = 0; i < ${int(len)}; i++)`,
        body: [
          `const o = ${at("scores", "0", "ty", "i")};`,
          "const oNaN = o === o ? 0 : 1;",
          { head: "if (oNaN > sNaN)", body: ["rank += 1;"] },
          {
            head: "if (oNaN === sNaN)",
            body: [
              {
                head: "if (oNaN === 1 || o === s)",
                body: [{ head: "if (i < tx)", body: ["rank += 1;"] }],
                orElse: [{ head: "if (o > s)", body: ["rank += 1;"] }],
              },
            ],
          },
        ],
      },
      "return rank;",
    ],
  };
  const slot = {
    name: kernelName(node, "Slot"),
    doc: `topK output slot of each token: its position among the ${k} kept tokens in index order, or -1.`,
    params: ["rank"],
    output: viewOf([batch, len]),
    body: [
      { head: `if (${at("rank", "0", "ty", "tx")} >= ${flt(k)})`, body: ["return -1.0;"] },
      "let before = 0;",
      {
        head: `for (let i = 0; i < ${int(len)}; i++)`,
        body: [
          {
            head: `if (i < tx && ${at("rank", "0", "ty", "i")} < ${flt(k)})`,
            body: ["before += 1;"],
          },
        ],
      },
      "return before;",
    ],
  };
  const select = {
    name: kernelName(node, "Select"),
    doc: `topK indices: for each of the ${k} slots, the token whose slot it is (ascending).`,
    params: ["slot"],
    output: viewOf([batch, k]),
    body: [
      "let found = 0;",
      {
        head: `for (let j = 0; j < ${int(len)}; j++)`,
        body: [{ head: `if (${at("slot", "0", "ty", "j")} === tx)`, body: ["found = j;"] }],
      },
      "return found;",
    ],
  };
  return single([
    { label: "rank", args: [input(0)], spec: rank },
    { label: "slot", args: [temp(0)], spec: slot },
    { label: "indices", args: [temp(1)], spec: select },
  ]);
}

/**
 * gather along `axis` ≥ 1: out[b, .., p, ..] = x[b', .., src(p), ..], src(p) = p for
 * p < keepPrefix, keepPrefix + idx[b'', p - keepPrefix] after (b', b'' = 0 for batch-1
 * operands). Indices come from topK (always in range) or from host data checked before
 * upload.
 */
export function lowerGather(node: Node<"gather">, inputs: readonly TensorType[]): NodePlan {
  const [x, idx] = inputs;
  const { axis, keepPrefix } = node.attrs;
  const outShape = node.outputs[0]!.shape;
  const { lines, axes } = axesOfView(outShape, "o", { z: "tz", y: "ty", x: "tx" });
  const source = [...axes];
  source[0] = x!.shape[0] === 1 ? "0" : axes[0]!;
  const ib = idx!.shape[0] === 1 ? "0" : axes[0]!;
  const pos = axes[axis]!;
  const body: Stmt[] = [...lines];
  if (keepPrefix === 0) {
    body.push(`const src = ${at("idx", "0", ib, pos)};`);
  } else {
    // The prefix is copied; idx is read only past it (never at a negative position).
    body.push(`let src = ${pos} + 0.0;`, {
      head: `if (${pos} >= ${int(keepPrefix)})`,
      body: [`src = ${flt(keepPrefix)} + ${at("idx", "0", ib, `${pos} - ${int(keepPrefix)}`)};`],
    });
  }
  source[axis] = "src";
  body.push(`return ${elementAt("x", x!.shape, source)};`);
  return single([
    {
      label: "gathered",
      args: [input(0), input(1)],
      spec: {
        name: kernelName(node),
        doc: `gather ${formatShape(x!.shape)} on axis ${axis} by ${formatShape(idx!.shape)} indices (first ${keepPrefix} kept) -> ${formatShape(outShape)}.`,
        params: ["x", "idx"],
        output: viewOf(outShape),
        body,
      },
    },
  ]);
}
