import { BackendError } from "../../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../../src/ir/graph.js";
import { formatShape, type TensorType } from "../../../src/ir/tensor.js";
import { type KernelSpec, type Stmt, sumLoop } from "./kernel.js";
import { input, kernelName, type NodePlan, single, temp } from "./plan.js";
import { at, axesOfView, EXACT_DIVIDEND_LIMIT, elementAt, flt, int, viewOf } from "./views.js";

/**
 * Kernels for the text-encoder, fusion and retrieval ops (formulas in src/ir/ops/types.ts).
 * One output element per thread. i32 tensors (ids, masks, indices) travel as float32 values,
 * exact below 2^24; an index read from a tensor is used directly as a coordinate, as gather
 * does (tokens.ts). Device kernels cannot raise errors: run-time index inputs are
 * range-checked on the host before upload (src/runtime/inputs.ts); indices from constants
 * or other nodes are trusted (an out-of-range one reads whatever the engine returns there).
 */

const THREAD_AXES = { z: "tz", y: "ty", x: "tx" } as const;

/**
 * Rank-4+ views merge leading axes into z; reading them back divides z and re-merging
 * multiplies, both exact in float32 only below EXACT_DIVIDEND_LIMIT.
 */
function checkMergedRows(node: Node, shapes: readonly (readonly number[])[]): void {
  for (const shape of shapes) {
    const rows = viewOf(shape).z;
    if (shape.length >= 4 && rows >= EXACT_DIVIDEND_LIMIT) {
      throw new BackendError(
        `gpujs: ${nodeLabel(node)}: ${formatShape(shape)} merges ${rows} leading rows; at most ${EXACT_DIVIDEND_LIMIT} can be indexed exactly in float32`,
      );
    }
  }
}

/**
 * embedding: out[b, l, c] = table[ids[b, l], c]. Output view [B][L][C]; ids [B, L] are
 * viewed [1][B][L] and the table [V, C] [1][V][C].
 */
export function lowerEmbedding(node: Node<"embedding">, inputs: readonly TensorType[]): NodePlan {
  const [table, ids] = inputs;
  const outShape = node.outputs[0]!.shape;
  return single([
    {
      label: "rows",
      args: [input(0), input(1)],
      spec: {
        name: kernelName(node),
        doc: `embedding of ${formatShape(ids!.shape)} ids in a ${formatShape(table!.shape)} table -> ${formatShape(outShape)}: out[b, l, c] = table[ids[b, l], c].`,
        params: ["table", "ids"],
        output: viewOf(outShape),
        body: [
          `const row = ${at("ids", "0", "tz", "ty")};`,
          `return ${at("table", "0", "row", "tx")};`,
        ],
      },
    },
  ]);
}

/** additiveMask: out = (1 - m) · fill, m [B, L] viewed [1][B][L] like the output. */
export function lowerAdditiveMask(
  node: Node<"additiveMask">,
  inputs: readonly TensorType[],
): NodePlan {
  const shape = inputs[0]!.shape;
  const fill = Math.fround(node.attrs.fill);
  return single([
    {
      label: "mask",
      args: [input(0)],
      spec: {
        name: kernelName(node),
        doc: `additiveMask ${formatShape(shape)}: (1 - m) · ${fill}.`,
        params: ["mask"],
        output: viewOf(shape),
        body: [`return (1.0 - ${at("mask", "0", "ty", "tx")}) * (${flt(fill)});`],
      },
    },
  ]);
}

/**
 * l2Normalize over the last axis (size D), in two kernels:
 *   denominator[.., 0] = max(√(Σ x²), eps)   per row,   y = x / denominator.
 */
export function lowerL2Normalize(
  node: Node<"l2Normalize">,
  inputs: readonly TensorType[],
): NodePlan {
  const shape = inputs[0]!.shape;
  const view = viewOf(shape);
  const { eps } = node.attrs;
  const norm: KernelSpec = {
    name: kernelName(node, "Norm"),
    doc: `l2Normalize ${formatShape(shape)} denominator per row: max(√(Σ x²), ${eps}) over ${view.x} values.`,
    params: ["x"],
    output: { z: view.z, y: view.y, x: 1 },
    body: [
      "let squares = 0.0;",
      ...sumLoop(
        "squares",
        "i",
        0,
        view.x,
        (i) => `${at("x", "tz", "ty", i)} * ${at("x", "tz", "ty", i)}`,
      ),
      `return Math.max(Math.sqrt(squares), ${flt(eps)});`,
    ],
  };
  const apply: KernelSpec = {
    name: kernelName(node, "Apply"),
    doc: `l2Normalize ${formatShape(shape)}: y = x / denominator.`,
    params: ["x", "denominator"],
    output: view,
    body: [`return ${at("x", "tz", "ty", "tx")} / ${at("denominator", "tz", "ty", "0")};`],
  };
  return single([
    { label: "denominator", args: [input(0)], spec: norm },
    { label: "y", args: [input(0), temp(0)], spec: apply },
  ]);
}

/** similarity: out[m, n] = scale · Σ_d a[m, d] · b[n, d]; a, b and out are 2-D views. */
export function lowerSimilarity(node: Node<"similarity">, inputs: readonly TensorType[]): NodePlan {
  const [a, b] = inputs;
  const width = a!.shape[1]!;
  const outShape = node.outputs[0]!.shape;
  const { scale } = node.attrs;
  const body: Stmt[] = [
    "let acc = 0.0;",
    ...sumLoop("acc", "d", 0, width, (d) => `${at("a", "0", "ty", d)} * ${at("b", "0", "tx", d)}`),
    `return (${flt(scale)}) * acc;`,
  ];
  return single([
    {
      label: "scores",
      args: [input(0), input(1)],
      spec: {
        name: kernelName(node),
        doc: `similarity ${formatShape(a!.shape)} x ${formatShape(b!.shape)}ᵀ -> ${formatShape(outShape)}: ${scale} · Σ_{d<${width}} a[m, d] · b[n, d].`,
        params: ["a", "b"],
        output: viewOf(outShape),
        body,
      },
    },
  ]);
}

/**
 * The statements and the read of one element of x at the output position, where the
 * output's axis `axis` maps to `source(position)` of x and every other axis to itself.
 */
function remappedRead(
  xShape: readonly number[],
  outShape: readonly number[],
  axis: number,
  source: (position: string) => { lines: Stmt[]; index: string },
): Stmt[] {
  const { lines, axes } = axesOfView(outShape, "o", THREAD_AXES);
  const { lines: sourceLines, index } = source(axes[axis]!);
  const xAxes = [...axes];
  xAxes[axis] = index;
  return [...lines, ...sourceLines, `return ${elementAt("x", xShape, xAxes)};`];
}

/** selectBatch: out[p, ...] = x[idx[p], ...]; idx [P] viewed [1][1][P]. */
export function lowerSelectBatch(
  node: Node<"selectBatch">,
  inputs: readonly TensorType[],
): NodePlan {
  const [x, idx] = inputs;
  const outShape = node.outputs[0]!.shape;
  checkMergedRows(node, [x!.shape, outShape]);
  const body = remappedRead(x!.shape, outShape, 0, (p) => ({
    lines: [`const src = ${at("idx", "0", "0", p)};`],
    index: "src",
  }));
  return single([
    {
      label: "selected",
      args: [input(0), input(1)],
      spec: {
        name: kernelName(node),
        doc: `selectBatch ${formatShape(x!.shape)} by ${formatShape(idx!.shape)} indices -> ${formatShape(outShape)}: out[p] = x[idx[p]].`,
        params: ["x", "idx"],
        output: viewOf(outShape),
        body,
      },
    },
  ]);
}

/** slice: out[.., j, ..] = x[.., start + j, ..] on `axis`. */
export function lowerSlice(node: Node<"slice">, inputs: readonly TensorType[]): NodePlan {
  const [x] = inputs;
  const { axis, start, end } = node.attrs;
  const outShape = node.outputs[0]!.shape;
  checkMergedRows(node, [x!.shape, outShape]);
  const body = remappedRead(x!.shape, outShape, axis, (position) => ({
    lines: [],
    index: start === 0 ? position : `${position} + ${int(start)}`,
  }));
  return single([
    {
      label: "sliced",
      args: [input(0)],
      spec: {
        name: kernelName(node),
        doc: `slice ${formatShape(x!.shape)} -> ${formatShape(outShape)}: entries ${start}..${end - 1} on axis ${axis}.`,
        params: ["x"],
        output: viewOf(outShape),
        body,
      },
    },
  ]);
}
