/**
 * Arithmetic of the vision encoder's linear layers (passes/quantize-linear.ts): fp32
 * (default) or int8 (per-channel int8 weights, dynamically quantised uint8 activations;
 * attention and softmax stay fp32). fp16 and bf16 are named so that asking for them gets a
 * reason: no backend here runs them natively (checkVisionSpec in config.ts).
 * A module of its own: the schema and the spec types both read it.
 */
export const PRECISIONS = ["fp32", "fp16", "bf16", "int8"] as const;
export type Precision = (typeof PRECISIONS)[number];
