/**
 * Pictures that need no Node (src/browser.ts exports these; src/index.ts adds PNG output,
 * png.ts): scenes of rectangles and text, their SVG form, the picture of an attention
 * pattern and the scatter plot of `sprig explore`.
 */
export {
  type PatternGeometry,
  type PatternPictureOptions,
  patternGeometry,
  patternScene,
} from "./pattern.js";
export { niceTicks, type PlotSeries, type ScatterOptions, scatterScene } from "./plot.js";
export type { Rect, Rgb, Scene, SceneItem, TextLine } from "./scene.js";
export { renderSvg } from "./svg.js";
