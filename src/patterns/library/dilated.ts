import { definePattern } from "../language.js";
import { distanceRange, intParam, type LibraryEntry } from "./entry.js";

/**
 * A dilated sliding window (Longformer, Beltagy, Peters and Cohan, 2020, section 3.1): over
 * the token order, query i reads the w keys on each side at gaps of d, j = i ± n·d for
 * n = 0 .. w, so a window of 2w + 1 keys covers 2·w·d + 1 positions.
 */
export const dilated: LibraryEntry = {
  name: "dilated",
  summary: "w keys on each side at gaps of d in the token order (Longformer)",
  source: "Longformer dilated sliding window (Beltagy et al., 2020)",
  params: [
    { name: "w", kind: "int", default: 56, min: 0, help: "keys on each side" },
    { name: "d", kind: "int", default: 2, min: 1, help: "gap between keys (dilation)" },
  ],
  smallSpecs: ["dilated:w=3,d=3"],
  make: (params) => {
    const w = intParam(params, "w");
    const d = intParam(params, "d");
    return definePattern({
      label: `dilated w=${w} d=${d}`,
      needs: "order",
      reads: (q, k) => {
        const gap = Math.abs(q.index - k.index);
        return gap <= w * d && gap % d === 0;
      },
      blocks: (q, k) => {
        const [least, most] = distanceRange(q.index, k.index);
        if (least > w * d) return "none";
        return d === 1 && most <= w ? "all" : "some";
      },
    });
  },
};
