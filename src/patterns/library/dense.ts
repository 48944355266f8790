import { definePattern } from "../language.js";
import type { LibraryEntry } from "./entry.js";

/**
 * Dense attention as a pattern: every query reads every key (Vaswani et al., "Attention Is
 * All You Need", 2017). Its layout is the fixed one in which every query block reads every
 * key block, so block-sparse execution of it is dense attention (under padding "masked").
 */
export const dense: LibraryEntry = {
  name: "dense",
  summary: "every query reads every key",
  source: "dense attention (Vaswani et al., 2017)",
  params: [],
  smallSpecs: ["dense"],
  make: () =>
    definePattern({ label: "dense", needs: "order", reads: () => true, blocks: () => "all" }),
};
