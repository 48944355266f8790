import { BackendError } from "../../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../../src/ir/graph.js";
import type { RelPosBiasAttrs } from "../../../src/ir/ops/index.js";
import { relPosPairs } from "../../../src/ir/relpos.js";
import { formatShape, type TensorType } from "../../../src/ir/tensor.js";
import { type KernelSpec, type Stmt, sumLoop } from "./kernel.js";
import { input, kernelName, type Launch, type NodePlan, type Operand, temp } from "./plan.js";
import { at, EXACT_DIVIDEND_LIMIT, floorDiv, flt, int, type View } from "./views.js";

/**
 * Attention kernels. With H heads over width C, head h owns channels h·d .. h·d + d - 1
 * (d = C / H). For query i and key j of head h:
 *   logit[i, j] = q_i · k_j / √d + bias_h(i, j) + mask[j],
 *   p[i, j]     = exp(logit[i, j] - lse_i),  lse_i = max_j logit + log Σ_j exp(logit - max),
 *   context_i   = Σ_j p[i, j] v_j.
 * Each step is one kernel over a materialised tensor (logits [B·H][rows][keys], lse
 * [B·H][rows], probabilities), so the q·k products are computed once and the context kernel
 * only multiplies and adds; every intermediate stays on the device.
 *
 * Relative position bias (one CLS token, window (T, Hw, Ww)): position id 0 for the CLS
 * token, tokenIdx[b, i - 1] + 1 for local token i, read at run time from the token index
 * tensor; the table row for query id a and key id c is P + 2 (both CLS), P (a = 0), P + 1
 * (c = 0), else ((Δt + T - 1)(2Hw - 1) + (Δh + Hw - 1))(2Ww - 1) + (Δw + Ww - 1) with
 * Δ = coord(a - 1) - coord(c - 1), coord(n) = (⌊n / (Hw·Ww)⌋, ⌊n / Ww⌋ mod Hw, n mod Ww).
 */

/** Logit of padded keys in "masked" mode: exp(-1e30 - lse) is exactly 0 in float32 and 64. */
export const MASKED_LOGIT = -1e30;

interface RelPos {
  readonly window: readonly [number, number, number];
  /** Batch of the token index tensor (1 = shared by every batch item). */
  readonly tokenBatch: number;
}

interface HeadGeometry {
  readonly heads: number;
  /** Channels per head. */
  readonly d: number;
}

/** `const b = ⌊z / H⌋; const h = z - b·H;` for z = b·H + h. */
function splitHeads(z: string, heads: number): Stmt[] {
  return [`const b = ${floorDiv(z, heads)};`, `const h = ${z} - b * ${int(heads)};`];
}

/** `let name = position id of sequence position pos` (0 for the CLS token). */
function positionId(name: string, pos: string, rel: RelPos): Stmt[] {
  const tb = rel.tokenBatch === 1 ? "0" : "b";
  return [
    `let ${name} = 0.0;`,
    {
      head: `if (${pos} > 0)`,
      body: [`${name} = ${at("tokenIdx", "0", tb, `${pos} - 1`)} + 1.0;`],
    },
  ];
}

/** Position id of local token r (sequence position 1 + r: a bias implies one CLS token). */
function localPositionId(name: string, r: string, rel: RelPos): Stmt[] {
  const tb = rel.tokenBatch === 1 ? "0" : "b";
  return [`const ${name} = ${at("tokenIdx", "0", tb, r)} + 1.0;`];
}

/** Window coordinates (t, h, w) of the local token with position id `id` ≥ 1. */
function coordinates(prefix: string, id: string, window: RelPos["window"]): Stmt[] {
  const [, hw, ww] = window;
  return [
    `const ${prefix}n = ${id} - 1.0;`,
    `const ${prefix}t = ${floorDiv(`${prefix}n`, hw * ww)};`,
    `const ${prefix}r = ${prefix}n - ${prefix}t * ${int(hw * ww)};`,
    `const ${prefix}h = ${floorDiv(`${prefix}r`, ww)};`,
    `const ${prefix}w = ${prefix}r - ${prefix}h * ${int(ww)};`,
  ];
}

function tableRow(row: string): string {
  return at("table", "0", row, "h");
}

/** `logit += bias_h(qId, kId)`, from the table at run-time position ids. */
function addBias(qId: string, kId: string, rel: RelPos): Stmt[] {
  const [t, hw, ww] = rel.window;
  const pairs = relPosPairs(rel.window);
  const local = `((qt - kt + ${int(t - 1)}) * ${int(2 * hw - 1)} + (qh - kh + ${int(hw - 1)})) * ${int(2 * ww - 1)} + (qw - kw + ${int(ww - 1)})`;
  return [
    {
      head: `if (${qId} === 0.0)`,
      body: [
        {
          head: `if (${kId} === 0.0)`,
          body: [`logit += ${tableRow(int(pairs + 2))};`],
          orElse: [`logit += ${tableRow(int(pairs))};`],
        },
      ],
      orElse: [
        {
          head: `if (${kId} === 0.0)`,
          body: [`logit += ${tableRow(int(pairs + 1))};`],
          orElse: [
            ...coordinates("q", qId, rel.window),
            ...coordinates("k", kId, rel.window),
            `logit += ${tableRow(local)};`,
          ],
        },
      ],
    },
  ];
}

/** dot = q_{qPos} · k_{kPos} over head h's channels (b, h bound). */
function dotProduct(qPos: string, kPos: string, d: number): Stmt[] {
  return [
    "let dot = 0.0;",
    ...sumLoop(
      "dot",
      "t",
      0,
      d,
      (t) =>
        `${at("q", "b", qPos, `h * ${int(d)} + ${t}`)} * ${at("k", "b", kPos, `h * ${int(d)} + ${t}`)}`,
    ),
  ];
}

/**
 * Dense logits [B·H][rows][keys]: thread (x = key j, y = query i, z = b·H + h). Used for
 * dense attention and for the dense (global) query rows of block-sparse attention.
 */
function denseLogits(
  name: string,
  geometry: HeadGeometry,
  batch: number,
  rows: number,
  keys: number,
  mask: boolean,
  rel: RelPos | null,
): KernelSpec {
  const { heads, d } = geometry;
  const body: Stmt[] = [
    ...splitHeads("tz", heads),
    ...dotProduct("ty", "tx", d),
    `let logit = dot * ${flt(1 / Math.sqrt(d))};`,
  ];
  const params = ["q", "k"];
  if (rel !== null) {
    body.push(...positionId("qId", "ty", rel), ...positionId("kId", "tx", rel));
    body.push(...addBias("qId", "kId", rel));
  }
  if (mask) {
    body.push(`logit += ${at("mask", "0", "b", "tx")};`);
    params.push("mask");
  }
  if (rel !== null) params.push("table", "tokenIdx");
  body.push("return logit;");
  return {
    name,
    doc: `attention logits [${batch}·${heads}][${rows}][${keys}]: q_i · k_j / √${d}${rel ? " + relative position bias" : ""}${mask ? " + mask_j" : ""}.`,
    params,
    output: { z: batch * heads, y: rows, x: keys },
    body,
  };
}

/** lse [1][B·H][rows] of logits [B·H][rows][keys]: max + log Σ exp(logit - max). */
function logSumExp(name: string, logitsView: View): KernelSpec {
  const keys = logitsView.x;
  return {
    name,
    doc: `row log-sum-exp of logits [${logitsView.z}][${logitsView.y}][${keys}]: max_j l + log Σ_j exp(l_j - max).`,
    params: ["logits"],
    output: { z: 1, y: logitsView.z, x: logitsView.y },
    body: [
      `let mx = ${at("logits", "ty", "tx", "0")};`,
      {
        head: `for (let j = 1; j < ${int(keys)}; j++)`,
        body: [`mx = Math.max(mx, ${at("logits", "ty", "tx", "j")});`],
      },
      "let sum = 0.0;",
      {
        head: `for (let j = 0; j < ${int(keys)}; j++)`,
        body: [`sum += Math.exp(${at("logits", "ty", "tx", "j")} - mx);`],
      },
      "return mx + Math.log(sum);",
    ],
  };
}

/** Probabilities p = exp(logit - lse) for the first `rows` rows of logits. */
function probabilities(name: string, logitsView: View, rows: number): KernelSpec {
  return {
    name,
    doc: `softmax probabilities [${logitsView.z}][${rows}][${logitsView.x}]: exp(logit - lse).`,
    params: ["logits", "lse"],
    output: { z: logitsView.z, y: rows, x: logitsView.x },
    body: [`return Math.exp(${at("logits", "tz", "ty", "tx")} - ${at("lse", "0", "tz", "ty")});`],
  };
}

function relPosOf(
  node: Node,
  attrs: RelPosBiasAttrs | null,
  tokenIdx: TensorType | undefined,
): RelPos | null {
  if (attrs === null) return null;
  const [t, hw, ww] = attrs.window;
  if (t * hw * ww >= EXACT_DIVIDEND_LIMIT) {
    throw new BackendError(
      `gpujs: ${nodeLabel(node)}: a ${t * hw * ww}-token bias window exceeds exact float32 index arithmetic (${EXACT_DIVIDEND_LIMIT})`,
    );
  }
  return { window: attrs.window, tokenBatch: tokenIdx!.shape[0]! };
}

/**
 * attention (dense): logits, lse, probabilities and context, plus a copy of the first numCls
 * probability rows when only those are an output ("cls").
 */
export function lowerAttention(node: Node<"attention">, inputs: readonly TensorType[]): NodePlan {
  const { heads, numCls, probs, mask, relPosBias } = node.attrs;
  const [q, k] = inputs;
  const [batch, nq, c] = q!.shape as [number, number, number];
  const nk = k!.shape[1]!;
  const d = c / heads;
  const rel = relPosOf(node, relPosBias, inputs[mask ? 5 : 4]);
  const logitArgs: Operand[] = [input(0), input(1)];
  if (mask) logitArgs.push(input(3));
  if (rel !== null) logitArgs.push(input(mask ? 4 : 3), input(mask ? 5 : 4));
  const logits = denseLogits(kernelName(node, "Logits"), { heads, d }, batch, nq, nk, mask, rel);
  const launches: Launch[] = [
    { label: "logits", args: logitArgs, spec: logits },
    { label: "lse", args: [temp(0)], spec: logSumExp(kernelName(node, "Lse"), logits.output) },
    {
      label: "probs",
      args: [temp(0), temp(1)],
      spec: probabilities(kernelName(node, "Probs"), logits.output, nq),
    },
    {
      label: "context",
      args: [temp(2), input(2)],
      spec: {
        name: kernelName(node, "Context"),
        doc: `attention context ${formatShape([batch, nq, c])}: Σ_j p[b, h, i, j] · v[b, j, c], h = ⌊c / ${d}⌋.`,
        params: ["probs", "v"],
        output: { z: batch, y: nq, x: c },
        body: [
          `const h = ${floorDiv("tx", d)};`,
          "let acc = 0.0;",
          ...sumLoop(
            "acc",
            "j",
            0,
            nk,
            (j) => `${at("probs", `tz * ${int(heads)} + h`, "ty", j)} * ${at("v", "tz", j, "tx")}`,
          ),
          "return acc;",
        ],
      },
    },
  ];
  if (probs === "all") return { launches, outputs: [temp(3), temp(2)] };
  launches.push({
    label: "clsProbs",
    args: [temp(0), temp(1)],
    spec: probabilities(kernelName(node, "ClsProbs"), logits.output, numCls),
  });
  return { launches, outputs: [temp(3), temp(4)] };
}

/**
 * blockSparseAttention over N = G + L tokens, M = ⌈L / bs⌉ query blocks of W key blocks.
 * - Global rows (i < G) are dense: logits [B·H][G][N], lse, probabilities (output 1).
 * - Local query r (sequence position G + r, block m = ⌊r / bs⌋) has R = G + W·bs key slots:
 *   slot s < G is global key s; slot G + j·bs + t is local position p = kb·bs + t of key
 *   block kb = layout[h, m, j], padding when p ≥ L. The layout is a compile-time table
 *   (this.constants.layout). Padded keys are zero vectors: logit 0 + bias_h(id_i, 0) in
 *   "reference" mode (the authors pad token indices with the CLS index 0), left out of the
 *   softmax in "masked" mode (logit -1e30, so exp gives exactly 0). Rows r ≥ L are padding
 *   and produce 0 logits that nothing reads.
 * - Context: global rows sum over all N keys, local rows over their slots, skipping padding
 *   (zero values), in the reference's slot order.
 */
export function lowerBlockSparseAttention(
  node: Node<"blockSparseAttention">,
  inputs: readonly TensorType[],
): NodePlan {
  const { heads, pattern, padding, relPosBias } = node.attrs;
  const [q] = inputs;
  const [batch, n, c] = q!.shape as [number, number, number];
  const d = c / heads;
  const g = pattern.globalTokens;
  const bs = pattern.blockSize;
  const { layout } = pattern;
  const blocks = layout.queryBlocks;
  const width = layout.blocksPerRow;
  const local = n - g;
  const slots = g + width * bs;
  const rel = relPosOf(node, relPosBias, inputs[4]);
  const relArgs: Operand[] = rel === null ? [] : [input(3), input(4)];
  const geometry = { heads, d };
  // Layout row of (head, query block m): shared layouts ignore the head.
  const layoutAt = (j: string) =>
    layout.heads === 1
      ? `this.constants.layout[m * ${int(width)} + ${j}]!`
      : `this.constants.layout[(h * ${int(blocks)} + m) * ${int(width)} + ${j}]!`;
  const constants = { layout: Array.from(layout.blocks) };

  const globalLogits = denseLogits(
    kernelName(node, "GlobalLogits"),
    geometry,
    batch,
    g,
    n,
    false,
    rel,
  );

  const padded: Stmt[] =
    padding === "masked"
      ? [`return ${flt(MASKED_LOGIT)};`]
      : rel === null
        ? ["return 0.0;"]
        : [
            // q · 0 = 0, plus the bias towards position id 0: token→CLS, row P + 1.
            `return ${tableRow(int(relPosPairs(rel.window) + 1))};`,
          ];
  const localBody: Stmt[] = [
    ...splitHeads("tz", heads),
    { head: `if (ty >= ${int(local)})`, body: ["return 0.0;"] },
    `const m = ${floorDiv("ty", bs)};`,
    "let kpos = tx + 0.0;",
    {
      head: `if (tx >= ${int(g)})`,
      body: [
        `const j = ${floorDiv(`tx - ${int(g)}`, bs)};`,
        `const p = ${layoutAt("j")} * ${flt(bs)} + (tx - ${int(g)} - j * ${int(bs)});`,
        { head: `if (p >= ${flt(local)})`, body: padded },
        `kpos = p + ${flt(g)};`,
      ],
    },
    ...dotProduct(`ty + ${int(g)}`, "kpos", d),
    `let logit = dot * ${flt(1 / Math.sqrt(d))};`,
  ];
  if (rel !== null) {
    localBody.push(...localPositionId("qId", "ty", rel), ...positionId("kId", "kpos", rel));
    localBody.push(...addBias("qId", "kId", rel));
  }
  localBody.push("return logit;");
  const localLogits: KernelSpec = {
    name: kernelName(node, "LocalLogits"),
    doc: `block-sparse logits [${batch}·${heads}][${blocks}·${bs}][${slots}] of local queries over their key slots (${g} global + ${width} blocks of ${bs}); padding "${padding}".`,
    params: rel === null ? ["q", "k"] : ["q", "k", "table", "tokenIdx"],
    output: { z: batch * heads, y: blocks * bs, x: slots },
    constants,
    body: localBody,
  };

  // Key block kb covers local positions kb·bs .. kb·bs + bs - 1; only the last block can
  // reach past L (padding), so full blocks add all bs terms without a check.
  const term = (t: string) =>
    `${at("localProbs", "bh", "r", `${int(g)} + j * ${int(bs)} + ${t}`)} * ${at("v", "tz", `kb * ${flt(bs)} + ${t} + ${flt(g)}`, "tx")}`;
  const fullBlock = sumLoop("acc", "t", 0, bs, term);
  const blockTerms: Stmt[] =
    local % bs === 0
      ? fullBlock
      : [
          {
            head: `if (kb < ${flt(blocks - 1)})`,
            body: fullBlock,
            orElse: sumLoop("acc", "t", 0, local - (blocks - 1) * bs, term),
          },
        ];
  const context: KernelSpec = {
    name: kernelName(node, "Context"),
    doc: `block-sparse context ${formatShape([batch, n, c])}: global rows over all ${n} keys, local rows over their ${slots} slots (padding skipped).`,
    params: ["globalProbs", "localProbs", "v"],
    output: { z: batch, y: n, x: c },
    constants,
    body: [
      `const h = ${floorDiv("tx", d)};`,
      `const bh = tz * ${int(heads)} + h;`,
      "let acc = 0.0;",
      {
        head: `if (ty < ${int(g)})`,
        body: [
          ...sumLoop(
            "acc",
            "j",
            0,
            n,
            (j) => `${at("globalProbs", "bh", "ty", j)} * ${at("v", "tz", j, "tx")}`,
          ),
          "return acc;",
        ],
      },
      `const r = ty - ${int(g)};`,
      `const m = ${floorDiv("r", bs)};`,
      {
        head: `for (let s = 0; s < ${int(g)}; s++)`,
        body: [`acc += ${at("localProbs", "bh", "r", "s")} * ${at("v", "tz", "s", "tx")};`],
      },
      {
        head: `for (let j = 0; j < ${int(width)}; j++)`,
        body: [`const kb = ${layoutAt("j")};`, ...blockTerms],
      },
      "return acc;",
    ],
  };

  const launches: Launch[] = [
    { label: "globalLogits", args: [input(0), input(1), ...relArgs], spec: globalLogits },
    {
      label: "globalLse",
      args: [temp(0)],
      spec: logSumExp(kernelName(node, "GlobalLse"), globalLogits.output),
    },
    {
      label: "globalProbs",
      args: [temp(0), temp(1)],
      spec: probabilities(kernelName(node, "GlobalProbs"), globalLogits.output, g),
    },
    { label: "localLogits", args: [input(0), input(1), ...relArgs], spec: localLogits },
    {
      label: "localLse",
      args: [temp(3)],
      spec: logSumExp(kernelName(node, "LocalLse"), localLogits.output),
    },
    {
      label: "localProbs",
      args: [temp(3), temp(4)],
      spec: probabilities(kernelName(node, "LocalProbs"), localLogits.output, blocks * bs),
    },
    { label: "context", args: [temp(2), temp(5), input(2)], spec: context },
  ];
  return { launches, outputs: [temp(6), temp(2)] };
}
