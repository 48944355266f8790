import { definePattern } from "../language.js";
import { disjoint, type LibraryEntry, sameSingle } from "./entry.js";

/**
 * Divided space-time attention (TimeSformer: Bertasius, Wang and Torresani, "Is Space-Time
 * Attention All You Need for Video Understanding?", ICML 2021): each token reads the tokens
 * of its own frame (spatial attention) and the tokens at its own position (y, x) in every
 * frame (temporal attention). TimeSformer runs the two as consecutive attention steps; as
 * one pattern it is their union, q.t = k.t or (q.y, q.x) = (k.y, k.x). Each query reads
 * Hp·Wp + T - 1 keys (203 at 8 frames of 14 x 14).
 */
export const divided: LibraryEntry = {
  name: "divided",
  summary: "the token's own frame, and its own position in every frame (TimeSformer)",
  source: "TimeSformer divided space-time attention (Bertasius et al., ICML 2021)",
  params: [],
  smallSpecs: ["divided"],
  make: () =>
    definePattern({
      label: "divided space-time",
      reads: (q, k) => q.t === k.t || (q.y === k.y && q.x === k.x),
      blocks: (q, k) => {
        if (sameSingle(q.t, k.t)) return "all";
        return disjoint(q.t, k.t) && (disjoint(q.y, k.y) || disjoint(q.x, k.x)) ? "none" : "some";
      },
    }),
};
