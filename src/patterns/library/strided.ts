import type { BlockVerdict, TokenBox } from "../language.js";
import { definePattern } from "../language.js";
import { distanceRange, intParam, type LibraryEntry } from "./entry.js";

/**
 * Strided attention (Child, Gray, Radford and Sutskever, "Generating Long Sequences with
 * Sparse Transformers", 2019; DeepSpeed's sparse attention ships it as a fixed/strided
 * layout): over the token order, query i reads the keys within `local` positions and every
 * key a multiple of `stride` away, |i - j| <= local or (i - j) mod stride = 0. Symmetric
 * here (an encoder; the paper's is causal). With the default stride 196, one frame of
 * BEiT-base tokens in raster order, the strided part is each token's own position in every
 * frame.
 */
export const strided: LibraryEntry = {
  name: "strided",
  summary: "the keys within `local` positions and every key a multiple of `stride` away",
  source: "Sparse Transformer strided attention (Child et al., 2019)",
  params: [
    { name: "stride", kind: "int", default: 196, min: 1, help: "stride in tokens" },
    { name: "local", kind: "int", default: 56, min: 0, help: "keys on each side read densely" },
  ],
  smallSpecs: ["strided:stride=12,local=2"],
  make: (params) => {
    const stride = intParam(params, "stride");
    const local = intParam(params, "local");
    return definePattern({
      label: `strided stride=${stride} local=${local}`,
      needs: "order",
      reads: (q, k) => Math.abs(q.index - k.index) <= local || (q.index - k.index) % stride === 0,
      blocks: (q, k) => stridedVerdict(q, k, stride, local),
    });
  },
};

function stridedVerdict(q: TokenBox, k: TokenBox, stride: number, local: number): BlockVerdict {
  const [least, most] = distanceRange(q.index, k.index);
  if (most <= local || stride === 1) return "all";
  if (least <= local) return "some";
  // No local pair: read only if some difference i - j in the boxes is a multiple of stride.
  const lo = q.index[0] - k.index[1];
  const hi = q.index[1] - k.index[0];
  const firstMultiple = Math.ceil(lo / stride) * stride;
  return firstMultiple <= hi ? "some" : "none";
}
