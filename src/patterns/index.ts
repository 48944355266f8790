/**
 * The pattern language and library, as the public entries (src/index.ts, src/browser.ts)
 * export them: predicates over token coordinates compiled to block layouts
 * (language.ts, predicate.ts), the library and its spec grammar (library/), and the
 * layouts SViTT's own source and the 3-D window build (layouts.ts, window3d.ts).
 */
export {
  type BlockVerdict,
  blockOf,
  type Coordinates,
  compilePattern,
  definePattern,
  difference,
  intersection,
  type LayerPredicate,
  type LayerTokens,
  layerLabel,
  layerTokens,
  type Pattern,
  type PatternCompileOptions,
  type PatternContext,
  patternContext,
  perHead,
  seededBlocks,
  stackHeads,
  type Token,
  type TokenBox,
  type TokenPredicate,
  tokenBoxes,
  union,
  wholeBlocks,
} from "./language.js";
export {
  entrySyntax,
  LIBRARY,
  type LibraryEntry,
  libraryEntry,
  type ParamSpec,
  type ParamValue,
  type ParamValues,
  type PatternDefaults,
  parsePattern,
} from "./library/index.js";
export { layoutFromPredicate, type PredicateLayoutSpec } from "./predicate.js";
export {
  type Window3dAxes,
  type Window3dSpec,
  window3dAxes,
  window3dLabel,
  window3dLayout,
  window3dReads,
} from "./window3d.js";
