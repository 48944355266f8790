import { BackendError } from "../../../src/ir/errors.js";
import { type Node, nodeLabel } from "../../../src/ir/graph.js";
import type { RelPosBiasAttrs } from "../../../src/ir/ops/index.js";
import { type AttentionPlan, attentionPlanOf } from "../../../src/ir/attention-plan.js";
import { relPosPairs } from "../../../src/ir/relpos.js";
import { formatShape, type TensorType } from "../../../src/ir/tensor.js";
import { type KernelSpec, type Stmt, sumLoop } from "./kernel.js";
import { input, kernelName, type Launch, type NodePlan, type Operand, temp } from "./plan.js";
import { at, EXACT_DIVIDEND_LIMIT, floorDiv, flt, int, type View } from "./views.js";

/**
 * Attention kernels. With H heads over width C, head h owns channels h·d .. h·d + d - 1
 * (d = C / H). For query i and key j of head h:
 *   logit[i, j] = q_i · k_j / √d + bias_h(i, j) + mask[(i,) j],
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
  mask: "none" | "key" | "pair",
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
  if (mask !== "none") {
    // mask [B, Nk] is viewed as (1, B, Nk); a per-pair mask [B, Nq, Nk] as itself.
    body.push(
      `logit += ${mask === "key" ? at("mask", "0", "b", "tx") : at("mask", "b", "ty", "tx")};`,
    );
    params.push("mask");
  }
  if (rel !== null) params.push("table", "tokenIdx");
  body.push("return logit;");
  return {
    name,
    doc: `attention logits [${batch}·${heads}][${rows}][${keys}]: q_i · k_j / √${d}${rel ? " + relative position bias" : ""}${mask === "key" ? " + mask_j" : mask === "pair" ? " + mask_ij" : ""}.`,
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
  const maskKind = !mask ? "none" : inputs[3]!.shape.length === 3 ? "pair" : "key";
  const logits = denseLogits(
    kernelName(node, "Logits"),
    { heads, d },
    batch,
    nq,
    nk,
    maskKind,
    rel,
  );
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
 * How local key slot `j` (a block entry of the query block's row) is found: a fixed layout
 * reads the compile-time table this.constants.layout[(h·M + m)·W + j]; a ragged one (rows of
 * different lengths, partial blocks) this.constants.rowStart / keyBlock / entryMask /
 * maskBits, the plan's rows in CSR form and its token masks as 16-bit words (exact in
 * float32: a bit is ⌊word / 2^t⌋ mod 2 with 2^t read from this.constants.pow2).
 */
interface RowTables {
  readonly constants: Record<string, readonly number[]>;
  /** Statements binding `row` (the layout row of head h, block m) and `start`, `len`. */
  readonly rowOf: Stmt[];
  /** The key block of entry j of the row. */
  readonly blockAt: (j: string) => string;
}

function rowTables(plan: AttentionPlan): RowTables {
  const { layoutHeads, queryBlocks: blocks, widestRow: width } = plan;
  if (plan.uniformRows && plan.partialEntries === 0 && width >= 1) {
    // Layout row of (head, query block m): shared layouts ignore the head.
    const blockAt = (j: string) =>
      layoutHeads === 1
        ? `this.constants.layout[m * ${int(width)} + ${j}]!`
        : `this.constants.layout[(h * ${int(blocks)} + m) * ${int(width)} + ${j}]!`;
    return { constants: { layout: Array.from(plan.keyBlock) }, rowOf: [], blockAt };
  }
  // gpu.js cannot upload an empty table: a layout of empty rows gets one entry nothing reads.
  const orOne = (values: ArrayLike<number>, fill: number): number[] =>
    values.length === 0 ? [fill] : Array.from(values);
  const constants: Record<string, readonly number[]> = {
    rowStart: Array.from(plan.rowStart),
    keyBlock: orOne(plan.keyBlock, 0),
  };
  if (plan.partialEntries > 0) {
    constants.entryMask = Array.from(plan.entryMask);
    constants.maskBits = maskBits16(plan);
    constants.pow2 = Array.from({ length: 16 }, (_, k) => 2 ** k);
  }
  const row = layoutHeads === 1 ? "m" : `h * ${int(blocks)} + m`;
  return {
    constants,
    rowOf: [
      `const row = ${row};`,
      "const start = this.constants.rowStart[row]!;",
      "const len = this.constants.rowStart[row + 1]! - start;",
    ],
    blockAt: (j: string) => `this.constants.keyBlock[start + ${j}]!`,
  };
}

/** The plan's token masks as 16-bit words: [count, bs, ⌈bs / 16⌉]. */
function maskBits16(plan: AttentionPlan): number[] {
  const bs = plan.blockSize;
  const words16 = Math.ceil(bs / 16);
  const count = plan.masks.length / (bs * plan.maskWords);
  const out = new Array<number>(count * bs * words16).fill(0);
  for (let mask = 0; mask < count; mask++) {
    for (let r = 0; r < bs; r++) {
      for (let t = 0; t < bs; t++) {
        const word = plan.masks[(mask * bs + r) * plan.maskWords + (t >>> 5)]!;
        if (((word >>> (t & 31)) & 1) === 1)
          out[(mask * bs + r) * words16 + (t >>> 4)]! += 2 ** (t & 15);
      }
    }
  }
  return out;
}

/**
 * blockSparseAttention over N = G + L tokens, M = ⌈L / bs⌉ query blocks, lowered from the
 * node's attention plan (src/ir/attention-plan.ts).
 * - Global rows (i < G) are dense: logits [B·H][G][N], lse, probabilities (output 1).
 * - Local query r (sequence position G + r, block m = ⌊r / bs⌋) has R = G + W·bs key slots
 *   (W: the widest row): slot s < G is global key s; slot G + j·bs + t is local position
 *   p = kb·bs + t of the row's j-th key block kb (rowTables), padding when p ≥ L. Padded keys
 *   are zero vectors: logit 0 + bias_h(id_i, 0) in "reference" mode (the authors pad token
 *   indices with the CLS index 0), left out of the softmax in "masked" mode (logit -1e30, so
 *   exp gives exactly 0); so are the slots past a shorter row's end and the pairs a partial
 *   block's token mask clears. Rows r ≥ L are padding and produce 0 logits that nothing
 *   reads.
 * - Context: global rows sum over all N keys, local rows over their slots, skipping padding
 *   (zero values), in the reference's slot order.
 */
export function lowerBlockSparseAttention(
  node: Node<"blockSparseAttention">,
  inputs: readonly TensorType[],
): NodePlan {
  const plan = attentionPlanOf(node);
  const { heads, padding, relPosBias } = node.attrs;
  const { batch, tokens: n, hidden: c, headDim: d, globalTokens: g, blockSize: bs } = plan;
  const { queryBlocks: blocks, widestRow: width, localTokens: local } = plan;
  const slots = g + width * bs;
  const rel = relPosOf(node, relPosBias, inputs[4]);
  const relArgs: Operand[] = rel === null ? [] : [input(3), input(4)];
  const geometry = { heads, d };
  const tables = rowTables(plan);
  const { constants } = tables;
  const ragged = tables.rowOf.length > 0;

  const globalLogits = denseLogits(
    kernelName(node, "GlobalLogits"),
    geometry,
    batch,
    g,
    n,
    "none",
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
  // A cleared pair of a partial block: bit t of word (mk, row ty - m·bs, ⌊t / 16⌋).
  const words16 = Math.ceil(bs / 16);
  const partialCheck: Stmt[] =
    plan.partialEntries === 0
      ? []
      : [
          "const mk = this.constants.entryMask[start + j]!;",
          {
            head: "if (mk >= 0.0)",
            body: [
              `const w16 = ${floorDiv("t", 16)};`,
              `const word = this.constants.maskBits[(mk * ${flt(bs)} + ty - m * ${int(bs)}) * ${int(words16)} + w16]!;`,
              "const shifted = Math.floor(word / this.constants.pow2[t - w16 * 16]!);",
              {
                head: "if (shifted - Math.floor(shifted / 2.0) * 2.0 < 0.5)",
                body: [`return ${flt(MASKED_LOGIT)};`],
              },
            ],
          },
        ];
  const slotOf: Stmt[] = ragged
    ? [
        `const j = ${floorDiv(`tx - ${int(g)}`, bs)};`,
        ...tables.rowOf,
        { head: "if (j >= len)", body: [`return ${flt(MASKED_LOGIT)};`] },
        `const t = tx - ${int(g)} - j * ${int(bs)};`,
        `const p = ${tables.blockAt("j")} * ${flt(bs)} + t;`,
        { head: `if (p >= ${flt(local)})`, body: padded },
        ...partialCheck,
        `kpos = p + ${flt(g)};`,
      ]
    : [
        `const j = ${floorDiv(`tx - ${int(g)}`, bs)};`,
        `const p = ${tables.blockAt("j")} * ${flt(bs)} + (tx - ${int(g)} - j * ${int(bs)});`,
        { head: `if (p >= ${flt(local)})`, body: padded },
        `kpos = p + ${flt(g)};`,
      ];
  const localBody: Stmt[] = [
    ...splitHeads("tz", heads),
    { head: `if (ty >= ${int(local)})`, body: ["return 0.0;"] },
    `const m = ${floorDiv("ty", bs)};`,
    "let kpos = tx + 0.0;",
    ...(width === 0 ? [] : [{ head: `if (tx >= ${int(g)})`, body: slotOf }]),
    ...dotProduct(`ty + ${int(g)}`, "kpos", d),
    `let logit = dot * ${flt(1 / Math.sqrt(d))};`,
  ];
  if (rel !== null) {
    localBody.push(...localPositionId("qId", "ty", rel), ...positionId("kId", "kpos", rel));
    localBody.push(...addBias("qId", "kId", rel));
  }
  localBody.push("return logit;");
  const shape = ragged
    ? `rows of up to ${width} blocks of ${bs}${plan.partialEntries > 0 ? `, ${plan.partialEntries} partial` : ""}`
    : `${width} blocks of ${bs}`;
  const localLogits: KernelSpec = {
    name: kernelName(node, "LocalLogits"),
    doc: `block-sparse logits [${batch}·${heads}][${blocks}·${bs}][${slots}] of local queries over their key slots (${g} global + ${shape}); padding "${padding}".`,
    params: rel === null ? ["q", "k"] : ["q", "k", "table", "tokenIdx"],
    output: { z: batch * heads, y: blocks * bs, x: slots },
    constants,
    body: localBody,
  };

  // Key block kb covers local positions kb·bs .. kb·bs + bs - 1; only the last block can
  // reach past L (padding), so full blocks add all bs terms without a check. Excluded slots
  // and cleared pairs have probability exactly 0 and need no check either.
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
  const entryLoop: Stmt = ragged
    ? {
        head: `for (let j = 0; j < ${int(width)}; j++)`,
        body: [
          {
            head: "if (j < len)",
            body: [`const kb = ${tables.blockAt("j")};`, ...blockTerms],
          },
        ],
      }
    : {
        head: `for (let j = 0; j < ${int(width)}; j++)`,
        body: [`const kb = ${tables.blockAt("j")};`, ...blockTerms],
      };
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
      // A layout of empty rows (W = 0) reads the global keys only.
      ...(width === 0 ? [] : [...tables.rowOf, entryLoop]),
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
