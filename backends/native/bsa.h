/*
 * sprig's block-sparse attention kernel (the blockSparseAttention op of src/ir/ops),
 * written once in C and compiled natively (an N-API addon, addon.c) and to WebAssembly
 * SIMD (wasm.c). Semantics are those of the reference kernel
 * (backends/reference/kernels/attention.ts), which the tests compare against.
 */
#ifndef SPRIG_BSA_H
#define SPRIG_BSA_H

#include <stdint.h>

typedef struct {
  /* q, k, v [batch, n, c]; heads split c into heads x d channels. */
  int32_t batch, n, c, heads;
  /* Pattern: g global tokens, blocks of bs local tokens, layout [layout_heads, blocks, width]. */
  int32_t g, bs, blocks, width, layout_heads;
  /* 1: padded keys leave the softmax ("masked"); 0: they stay with logit 0 + bias ("reference"). */
  int32_t masked;
  const int32_t *layout;
  const float *q, *k, *v;
  /* Relative position bias, or table = NULL: table [table_rows, heads], window (wt, wh, ww),
   * token_idx [token_batch, n - 1] (original local indices, checked by the caller). */
  const float *table;
  int32_t table_rows, wt, wh, ww, token_batch;
  const int32_t *token_idx;
  /* Outputs: context [batch, n, c] and the global rows' probabilities [batch, heads, g, n]. */
  float *context, *probs;
} sprig_bsa_args;

/* Work items: batch x heads x (blocks + 1), item (b, h, blocks) being the global rows. */
int64_t sprig_bsa_items(const sprig_bsa_args *a);

/* Bytes of scratch one worker needs. */
int64_t sprig_bsa_scratch_bytes(const sprig_bsa_args *a);

/* Runs items first .. last - 1 with `scratch` of sprig_bsa_scratch_bytes(a) bytes, 64-byte
 * aligned. Items write disjoint outputs, so workers may run disjoint ranges at once; items
 * of one (batch, head) are consecutive and share loaded state, so ranges should be long. */
void sprig_bsa_run(const sprig_bsa_args *a, int64_t first, int64_t last, void *scratch);

#endif
