import { ConfigError } from "../../ir/errors.js";

/**
 * Ranking and recall as the authors' evaluation does them (tasks/retrieval_utils.py):
 *
 *   rerank: for every query (a video for i2t, a caption for t2i), its k candidates with the
 *           highest ITC similarity (torch.topk, k = min(k_test, candidates)) are re-scored
 *           with ITM; every other candidate scores -100.
 *   rank:   candidates in descending score, as np.argsort(score)[::-1]: ties (the -100s)
 *           come out with the later index first (the reverse of a stable ascending sort).
 *   recall: R@K = 100 · (share of queries whose best-ranked ground-truth candidate is at a
 *           rank < K); itm_eval reports R@1/5/10 both ways, their means per direction
 *           (txt_r_mean, img_r_mean) and the mean of those (r_mean), rounded to 2 places.
 */

/** A dense row-major score matrix. */
export interface ScoreMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array | Float32Array;
}

/** Score every unreranked pair gets (the reference's fill value). */
export const UNSCORED = -100;

export function matrix(rows: number, cols: number, fill = 0): ScoreMatrix {
  return { rows, cols, data: new Float64Array(rows * cols).fill(fill) };
}

export function at(m: ScoreMatrix, row: number, col: number): number {
  return m.data[row * m.cols + col]!;
}

/**
 * The indices of the k largest entries of `row` (torch.topk: descending; ties by the lower
 * index first, which is what topk returns for distinct positions of equal values on CPU).
 */
export function topK(row: ArrayLike<number>, k: number): number[] {
  const indices = Array.from({ length: row.length }, (_, i) => i);
  indices.sort((a, b) => row[b]! - row[a]! || a - b);
  return indices.slice(0, Math.min(k, row.length));
}

/** Candidates of one query in ranked order (np.argsort(score)[::-1], see the module comment). */
export function rankRow(row: ArrayLike<number>): number[] {
  const indices = Array.from({ length: row.length }, (_, i) => i);
  // stable ascending, then reversed: descending with later indices first among ties
  indices.sort((a, b) => row[a]! - row[b]! || a - b);
  return indices.reverse();
}

export function rankAll(scores: ScoreMatrix): number[][] {
  const out: number[][] = [];
  for (let r = 0; r < scores.rows; r++) {
    out.push(rankRow(scores.data.subarray(r * scores.cols, (r + 1) * scores.cols)));
  }
  return out;
}

/** The pairs to score with ITM: for every query row, its top-k columns by similarity. */
export function rerankPairs(sim: ScoreMatrix, k: number): number[][] {
  if (!(Number.isInteger(k) && k >= 1)) {
    throw new ConfigError("k", `must be an integer >= 1, got ${k}`);
  }
  const out: number[][] = [];
  for (let r = 0; r < sim.rows; r++) {
    out.push(topK(sim.data.subarray(r * sim.cols, (r + 1) * sim.cols), k));
  }
  return out;
}

/** Transposes a score matrix (sim_t2i = sim_i2tᵀ). */
export function transpose(m: ScoreMatrix): ScoreMatrix {
  const out = matrix(m.cols, m.rows);
  for (let r = 0; r < m.rows; r++) {
    for (let c = 0; c < m.cols; c++) (out.data as Float64Array)[c * m.rows + r] = at(m, r, c);
  }
  return out;
}

export interface RecallResult {
  readonly txt_r1: number;
  readonly txt_r5: number;
  readonly txt_r10: number;
  readonly txt_r_mean: number;
  readonly img_r1: number;
  readonly img_r5: number;
  readonly img_r10: number;
  readonly img_r_mean: number;
  readonly r_mean: number;
}

/** Rank (0-based) of the best-ranked ground-truth candidate of each query. */
export function groundTruthRanks(
  scores: ScoreMatrix,
  truth: readonly (readonly number[])[],
): number[] {
  if (truth.length !== scores.rows) {
    throw new ConfigError(
      "groundTruth",
      `has ${truth.length} queries for ${scores.rows} score rows`,
    );
  }
  return rankAll(scores).map((order, query) => {
    const wanted = truth[query]!;
    if (wanted.length === 0) {
      throw new ConfigError("groundTruth", `query ${query} has no ground-truth candidate`);
    }
    let best = Number.POSITIVE_INFINITY;
    for (const candidate of wanted) best = Math.min(best, order.indexOf(candidate));
    return best;
  });
}

function percentBelow(ranks: readonly number[], k: number): number {
  return (100 * ranks.filter((r) => r < k).length) / ranks.length;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/**
 * itm_eval: recall of i2t (videos -> captions, "txt_*") and t2i (captions -> videos,
 * "img_*"), given for each video the captions that describe it and for each caption its
 * videos.
 */
export function recallAtK(
  scoresI2t: ScoreMatrix,
  scoresT2i: ScoreMatrix,
  videoToCaptions: readonly (readonly number[])[],
  captionToVideos: readonly (readonly number[])[],
): RecallResult {
  const tr = groundTruthRanks(scoresI2t, videoToCaptions);
  const ir = groundTruthRanks(scoresT2i, captionToVideos);
  const [tr1, tr5, tr10] = [1, 5, 10].map((k) => percentBelow(tr, k)) as [number, number, number];
  const [ir1, ir5, ir10] = [1, 5, 10].map((k) => percentBelow(ir, k)) as [number, number, number];
  const trMean = (tr1 + tr5 + tr10) / 3;
  const irMean = (ir1 + ir5 + ir10) / 3;
  return {
    txt_r1: round2(tr1),
    txt_r5: round2(tr5),
    txt_r10: round2(tr10),
    txt_r_mean: round2(trMean),
    img_r1: round2(ir1),
    img_r5: round2(ir5),
    img_r10: round2(ir10),
    img_r_mean: round2(irMean),
    r_mean: round2((trMean + irMean) / 2),
  };
}
