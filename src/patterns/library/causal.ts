import type { BlockVerdict, TokenBox } from "../language.js";
import { definePattern } from "../language.js";
import { intParam, type LibraryEntry } from "./entry.js";

/**
 * Causal in time: a token reads the tokens of its own and earlier frames, k.t <= q.t, and
 * with frames = F > 0 only the last F of them, q.t - F < k.t <= q.t. This is the
 * frame-level causal mask of streaming and autoregressive video transformers (VideoGPT,
 * Yan et al. 2021, masks causally over its flattened latent sequence; this pattern masks by
 * frame, so tokens of one frame read each other both ways).
 */
export const causal: LibraryEntry = {
  name: "causal",
  summary: "the token's own and earlier frames (the last F with frames=F)",
  source: "frame-level causal masks of autoregressive video models (cf. VideoGPT, Yan et al. 2021)",
  params: [
    { name: "frames", kind: "int", default: 0, min: 0, help: "frames read, 0 for every earlier" },
  ],
  smallSpecs: ["causal", "causal:frames=1"],
  make: (params) => {
    const frames = intParam(params, "frames");
    const reads = (qt: number, kt: number) => kt <= qt && (frames === 0 || kt > qt - frames);
    return definePattern({
      label:
        frames === 0
          ? "causal in time"
          : `causal in time, ${frames} frame${frames === 1 ? "" : "s"}`,
      reads: (q, k) => reads(q.t, k.t),
      blocks: (q, k) => causalVerdict(q, k, frames),
    });
  },
};

function causalVerdict(q: TokenBox, k: TokenBox, frames: number): BlockVerdict {
  // Pairs read: k.t <= q.t (always), and k.t > q.t - F (with F > 0).
  const none = k.t[0] > q.t[1] || (frames > 0 && k.t[1] <= q.t[0] - frames);
  if (none) return "none";
  const all = k.t[1] <= q.t[0] && (frames === 0 || k.t[0] > q.t[1] - frames);
  return all ? "all" : "some";
}
