/** The IR: op kinds, graphs, attention patterns, the verifier and printers. */
export * from "./builder.js";
export * from "./dot.js";
export * from "./dtype.js";
export * from "./errors.js";
export * from "./graph.js";
export * from "./ops/index.js";
export * from "./pattern.js";
export * from "./print.js";
export * from "./relpos.js";
export * from "./rewrite.js";
export * from "./tensor.js";
export * from "./verify.js";
