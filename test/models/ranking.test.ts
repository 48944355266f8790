import { describe, expect, it } from "vitest";
import {
  groundTruthRanks,
  rankRow,
  recallAtK,
  rerankPairs,
  type ScoreMatrix,
  UNSCORED,
} from "../../src/models/retrieval/ranking.js";

const scores = (rows: number[][]): ScoreMatrix => ({
  rows: rows.length,
  cols: rows[0]!.length,
  data: Float64Array.from(rows.flat()),
});

describe("ranking as np.argsort(score)[::-1]", () => {
  it("orders by descending score, later index first among ties", () => {
    expect(rankRow([0.1, 0.9, 0.5])).toEqual([1, 2, 0]);
    // the -100s of unscored pairs: indices 3 and 0 tie, 3 (later) comes first
    expect(rankRow([UNSCORED, 2, 1, UNSCORED])).toEqual([1, 2, 3, 0]);
  });

  it("reranks each query's top k by similarity", () => {
    const sim = scores([
      [0.1, 0.7, 0.3, 0.5],
      [0.9, 0.2, 0.8, 0.1],
    ]);
    expect(rerankPairs(sim, 2)).toEqual([
      [1, 3],
      [0, 2],
    ]);
    expect(rerankPairs(sim, 10)).toEqual([
      [1, 3, 2, 0],
      [0, 2, 1, 3],
    ]);
  });
});

describe("recall@K as itm_eval", () => {
  // 3 videos x 12 captions. Video v's ground truth: captions listed below. Scores are set
  // so the best ground-truth caption of video 0 ranks 0, of video 1 ranks 4, of video 2 ranks 9.
  const cols = 12;
  const rowWithRank = (gt: number, rank: number) => {
    const row = Array.from({ length: cols }, (_, c) => -c); // caption c ranks c (0 best)
    // put the ground truth at position `rank` by giving it the score of that position
    const order = Array.from({ length: cols }, (_, c) => c).filter((c) => c !== gt);
    order.splice(rank, 0, gt);
    order.forEach((c, position) => {
      row[c] = -position;
    });
    return row;
  };
  const i2t = scores([rowWithRank(5, 0), rowWithRank(7, 4), rowWithRank(2, 9)]);
  const videoToCaptions = [[5, 11], [7], [2]];

  it("finds the best-ranked ground truth of each query", () => {
    expect(groundTruthRanks(i2t, videoToCaptions)).toEqual([0, 4, 9]);
  });

  it("gives R@1/5/10 and the means by hand", () => {
    // t2i: 2 captions x 3 videos (captions 0 and 1 of a smaller set), ranks 1 and 0
    const t2i = scores([
      [0.9, 0.5, 0.1],
      [0.2, 0.1, 0.3],
    ]);
    const captionToVideos = [[1], [2]];
    const r = recallAtK(i2t, t2i, videoToCaptions, captionToVideos);
    // i2t ranks 0, 4, 9: R@1 = 1/3, R@5 = 2/3, R@10 = 3/3
    expect(r.txt_r1).toBe(33.33);
    expect(r.txt_r5).toBe(66.67);
    expect(r.txt_r10).toBe(100);
    expect(r.txt_r_mean).toBe(66.67);
    // t2i ranks 1, 0: R@1 = 1/2, R@5 = R@10 = 1
    expect(r.img_r1).toBe(50);
    expect(r.img_r5).toBe(100);
    expect(r.img_r10).toBe(100);
    expect(r.img_r_mean).toBe(83.33);
    // (200/3 + 250/3) / 2 = 75
    expect(r.r_mean).toBe(75);
  });

  it("rejects a query without ground truth", () => {
    expect(() => groundTruthRanks(i2t, [[5], [], [2]])).toThrow(/query 1 has no ground-truth/);
  });
});
