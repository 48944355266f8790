import { ConfigError } from "../../ir/errors.js";
import type { BlockVerdict, LayerPredicate, PatternContext, TokenBox } from "../language.js";
import { type Window3dAxes, window3dAxes, window3dLabel } from "../window3d.js";
import { type LibraryEntry, tripleParam } from "./entry.js";

/**
 * The 3-D neighbourhood window of NATTEN (Hassani, Walton, Li, Li and Shi, "Neighborhood
 * Attention Transformer", CVPR 2023; NATTEN's na3d): each query at (t, y, x) reads the
 * kt x kh x kw keys around it, per axis centred where it fits and shifted inwards at the
 * borders, with optional dilation per axis. The neighbourhood itself is
 * src/patterns/window3d.ts; here it reads the tokens' coordinates, so it follows token
 * reordering, and after a token drop reads the spread coordinates (src/patterns/language.ts).
 */
export const window3d: LibraryEntry = {
  name: "window3d",
  summary: "the kt x kh x kw neighbourhood of each token in (t, y, x), NATTEN-style",
  source: "NATTEN neighbourhood attention (Hassani et al., CVPR 2023), na3d",
  params: [
    {
      name: "kernel",
      kind: "triple",
      default: [3, 7, 7],
      min: 1,
      odd: true,
      help: "window size per axis (t, y, x), each odd",
    },
    {
      name: "dilation",
      kind: "triple",
      default: [1, 1, 1],
      min: 1,
      help: "dilation per axis",
    },
  ],
  smallSpecs: ["window3d:3x3x3", "window3d:kernel=1x3x3,dilation=1x2x1"],
  make: (params) => {
    const kernel = tripleParam(params, "kernel");
    const dilation = tripleParam(params, "dilation");
    return {
      label: window3dLabel({ kernel, dilation }),
      needs: "grid",
      at: (context) => windowAt(context, kernel, dilation),
    };
  },
};

function windowAt(
  context: PatternContext,
  kernel: readonly [number, number, number],
  dilation: readonly [number, number, number],
): LayerPredicate {
  const grid = context.tokens.grid;
  if (grid === null) {
    throw new ConfigError("pattern", `${context.where}: window3d needs the clip's token grid`);
  }
  const axes = window3dAxes({ grid, kernel, dilation }, context.where);
  return {
    perHead: false,
    reads: (q, k) =>
      axes.admits(0, q.t, k.t) && axes.admits(1, q.y, k.y) && axes.admits(2, q.x, k.x),
    blocks: (q, k) => {
      let verdict: BlockVerdict = "all";
      for (const [a, key] of [
        [0, "t"],
        [1, "y"],
        [2, "x"],
      ] as const) {
        const v = axisVerdict(axes, a, q[key], k[key]);
        if (v === "none") return "none";
        if (v === "some") verdict = "some";
      }
      return verdict;
    },
  };
}

/**
 * Along one axis, over queries in [q0, q1] and keys in [k0, k1]: none when the keys lie
 * outside every query's window interval; all (undilated axes only) when they lie inside
 * every one.
 */
function axisVerdict(
  axes: Window3dAxes,
  axis: number,
  q: TokenBox["t"],
  k: TokenBox["t"],
): BlockVerdict {
  let lowest = Number.POSITIVE_INFINITY;
  let highest = Number.NEGATIVE_INFINITY;
  let innerLo = Number.NEGATIVE_INFINITY;
  let innerHi = Number.POSITIVE_INFINITY;
  for (let i = q[0]; i <= q[1]; i++) {
    const [lo, hi] = axes.interval(axis, i);
    lowest = Math.min(lowest, lo);
    highest = Math.max(highest, hi);
    innerLo = Math.max(innerLo, lo);
    innerHi = Math.min(innerHi, hi);
  }
  if (k[1] < lowest || k[0] > highest) return "none";
  const inside = axes.dilation[axis] === 1 && k[0] >= innerLo && k[1] <= innerHi;
  return inside ? "all" : "some";
}
