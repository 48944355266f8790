/*
 * sprig's block-sparse attention kernel (the blockSparseAttention op of src/ir/ops),
 * written once in C and compiled natively (an N-API addon, addon.c) and to WebAssembly
 * SIMD (wasm.c). Semantics are those of the reference kernel
 * (backends/reference/kernels/attention.ts), which the tests compare against; every
 * argument comes from the node's attention plan (src/ir/attention-plan.ts, via args.ts).
 */
#ifndef SPRIG_BSA_H
#define SPRIG_BSA_H

#include <stdint.h>

typedef struct {
  /* q, k, v [batch, n, c]; heads split c into heads x d channels. */
  int32_t batch, n, c, heads;
  /* Pattern: g global tokens, blocks of bs local tokens, layout_heads (1 or heads) layouts
   * of `blocks` rows, the longest max_width entries. */
  int32_t g, bs, blocks, max_width, layout_heads;
  /* 1: padded keys leave the softmax ("masked"); 0: they stay with logit 0 + bias ("reference"). */
  int32_t masked;
  /* Token masks of partial blocks: mask_count bitsets of bs rows x mask_words 32-bit words. */
  int32_t mask_words, mask_count;
  /* Rows in CSR: row (hl, m) holds entries row_start[hl*blocks + m] .. row_start[... + 1] - 1;
   * entry e reads key block key_block[e], fully (entry_mask[e] = -1) or where bit t % 32 of
   * word (r, t / 32) of mask entry_mask[e] is set (query row r, key t of the block). */
  const int32_t *row_start, *key_block, *entry_mask;
  const uint32_t *masks;
  const float *q, *k, *v;
  /* Relative position bias, or table = NULL: table [table_rows, heads]; codes
   * [token_batch, n - 1], the linear code of every local token (src/ir/relpos.ts), so that
   * the table row between local tokens is code(a) - code(c) + offset; the rows of pairs
   * with the CLS token (the one global token) are constants. */
  const float *table;
  int32_t table_rows, token_batch, offset, cls_to_token, token_to_cls, cls_to_cls;
  const int32_t *codes;
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
