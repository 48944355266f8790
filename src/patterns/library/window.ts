import { definePattern } from "../language.js";
import { bandVerdict, intParam, type LibraryEntry } from "./entry.js";

/**
 * A sliding window over the token order: query i reads the keys j with |i - j| <= w, in the
 * layer's current order (raster, or the z-curve / Hilbert order of reorder-tokens; after a
 * drop, among the kept tokens). The local attention of the Image Transformer (Parmar et
 * al., ICML 2018) and Longformer's sliding window (Beltagy, Peters and Cohan, 2020), here
 * symmetric (an encoder). The default w = 112 reads 225 keys, about what SViTT's 4 blocks
 * of 56 read.
 */
export const window: LibraryEntry = {
  name: "window",
  summary: "the keys within w positions of the query in the token order",
  source: "Longformer's sliding window (Beltagy et al., 2020); Image Transformer local attention",
  params: [{ name: "w", kind: "int", default: 112, min: 0, help: "keys on each side" }],
  smallSpecs: ["window:w=5"],
  make: (params) => {
    const w = intParam(params, "w");
    return definePattern({
      label: `window w=${w}`,
      needs: "order",
      reads: (q, k) => Math.abs(q.index - k.index) <= w,
      blocks: (q, k) => bandVerdict(q, k, w),
    });
  },
};
