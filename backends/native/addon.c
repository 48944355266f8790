/*
 * N-API entry point of the native kernels:
 *   blockSparseAttention(dims, rowStart, keyBlock, entryMask, masks, q, k, v, table, codes,
 *                        context, probs, threads)
 * dims: Int32Array [batch, n, c, heads, g, bs, blocks, maxWidth, layoutHeads, masked,
 * maskWords, maskCount, tableRows, tokenBatch, offset, clsToToken, tokenToCls, clsToCls]
 * (sprig_bsa_args' int fields in order, bsa.h); table and codes may be null (no bias).
 * Every buffer length and every index is checked against dims before any memory is
 * touched, so a wrong call is a JS exception, never a stray read or write. Runs
 * synchronously on `threads` threads (the calling one included).
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "bsa.h"

#define MAX_THREADS 64

/* Work is handed out one (batch, head) at a time from a shared counter, so a thread
 * slowed by other load on the machine takes fewer heads instead of holding up the rest. */
typedef struct {
  const sprig_bsa_args *args;
  _Atomic int64_t *next;
  int64_t units, per_unit;
  void *scratch;
} worker;

static void *work(void *arg) {
  worker *w = (worker *)arg;
  for (;;) {
    const int64_t unit = atomic_fetch_add(w->next, 1);
    if (unit >= w->units) break;
    sprig_bsa_run(w->args, unit * w->per_unit, (unit + 1) * w->per_unit, w->scratch);
  }
  return NULL;
}

static napi_value fail(napi_env env, const char *message) {
  napi_throw_error(env, NULL, message);
  return NULL;
}

/* The data of argument i as a typed array of `type` holding exactly `count` elements. */
static int typed(napi_env env, napi_value value, napi_typedarray_type type, int64_t count,
                 void **data, const char *name, char *error) {
  bool is_typed = false;
  napi_is_typedarray(env, value, &is_typed);
  if (!is_typed) {
    snprintf(error, 200, "blockSparseAttention: %s is not a typed array", name);
    return 0;
  }
  napi_typedarray_type actual;
  size_t length = 0;
  napi_get_typedarray_info(env, value, &actual, &length, data, NULL, NULL);
  if (actual != type || (int64_t)length != count) {
    snprintf(error, 200, "blockSparseAttention: %s has %zu elements of the wrong kind or count (expected %lld)",
             name, length, (long long)count);
    return 0;
  }
  return 1;
}

#define DIMS 18
#define ARGS 13

/* The CSR rows, masks and bias codes are consistent with the dims (see the file comment). */
static const char *check_rows(const sprig_bsa_args *a, int64_t entries) {
  const int64_t rows = (int64_t)a->layout_heads * a->blocks;
  if (a->row_start[0] != 0 || a->row_start[rows] != entries) return "row offsets do not span the entries";
  for (int64_t r = 0; r < rows; r++) {
    const int64_t length = (int64_t)a->row_start[r + 1] - a->row_start[r];
    if (length < 0 || length > a->max_width) return "a row is longer than maxWidth or negative";
  }
  for (int64_t e = 0; e < entries; e++) {
    if (a->key_block[e] < 0 || a->key_block[e] >= a->blocks) return "layout block out of range";
    if (a->entry_mask[e] < -1 || a->entry_mask[e] >= a->mask_count) return "token mask index out of range";
  }
  return NULL;
}

static const char *check_codes(const sprig_bsa_args *a) {
  if (a->g != 1 || a->offset < 0 || a->table_rows != 2 * a->offset + 4 ||
      a->cls_to_token != a->table_rows - 3 || a->token_to_cls != a->table_rows - 2 ||
      a->cls_to_cls != a->table_rows - 1 || (a->token_batch != 1 && a->token_batch != a->batch)) {
    return "inconsistent bias dims";
  }
  for (int64_t i = 0; i < (int64_t)a->token_batch * (a->n - 1); i++) {
    if (a->codes[i] < 0 || a->codes[i] > a->offset) return "token code outside the bias window";
  }
  return NULL;
}

static napi_value block_sparse_attention(napi_env env, napi_callback_info info) {
  size_t argc = ARGS;
  napi_value argv[ARGS];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != ARGS) return fail(env, "blockSparseAttention: expected 13 arguments");
  char error[200];
  int32_t *dims = NULL;
  if (!typed(env, argv[0], napi_int32_array, DIMS, (void **)&dims, "dims", error)) return fail(env, error);
  sprig_bsa_args a = {0};
  a.batch = dims[0];
  a.n = dims[1];
  a.c = dims[2];
  a.heads = dims[3];
  a.g = dims[4];
  a.bs = dims[5];
  a.blocks = dims[6];
  a.max_width = dims[7];
  a.layout_heads = dims[8];
  a.masked = dims[9];
  a.mask_words = dims[10];
  a.mask_count = dims[11];
  a.table_rows = dims[12];
  a.token_batch = dims[13];
  a.offset = dims[14];
  a.cls_to_token = dims[15];
  a.token_to_cls = dims[16];
  a.cls_to_cls = dims[17];
  if (a.batch < 1 || a.n < 2 || a.heads < 1 || a.c < a.heads || a.c % a.heads != 0 || a.g < 1 ||
      a.g >= a.n || a.bs < 1 || a.max_width < 0 || a.blocks != (a.n - a.g + a.bs - 1) / a.bs ||
      (a.layout_heads != 1 && a.layout_heads != a.heads) || a.mask_words != (a.bs + 31) / 32 ||
      a.mask_count < 0) {
    return fail(env, "blockSparseAttention: inconsistent dims");
  }
  const int64_t qkv = (int64_t)a.batch * a.n * a.c;
  const int64_t rows = (int64_t)a.layout_heads * a.blocks;
  if (!typed(env, argv[1], napi_int32_array, rows + 1, (void **)&a.row_start, "rowStart", error)) {
    return fail(env, error);
  }
  const int64_t entries = a.row_start[rows];
  if (entries < 0 || entries > rows * (int64_t)a.max_width) {
    return fail(env, "blockSparseAttention: row offsets do not span the entries");
  }
  if (!typed(env, argv[2], napi_int32_array, entries, (void **)&a.key_block, "keyBlock", error) ||
      !typed(env, argv[3], napi_int32_array, entries, (void **)&a.entry_mask, "entryMask", error) ||
      !typed(env, argv[4], napi_uint32_array, (int64_t)a.mask_count * a.bs * a.mask_words,
             (void **)&a.masks, "masks", error) ||
      !typed(env, argv[5], napi_float32_array, qkv, (void **)&a.q, "q", error) ||
      !typed(env, argv[6], napi_float32_array, qkv, (void **)&a.k, "k", error) ||
      !typed(env, argv[7], napi_float32_array, qkv, (void **)&a.v, "v", error) ||
      !typed(env, argv[10], napi_float32_array, qkv, (void **)&a.context, "context", error) ||
      !typed(env, argv[11], napi_float32_array, (int64_t)a.batch * a.heads * a.g * a.n,
             (void **)&a.probs, "probs", error)) {
    return fail(env, error);
  }
  const char *problem = check_rows(&a, entries);
  if (problem != NULL) {
    snprintf(error, 200, "blockSparseAttention: %s", problem);
    return fail(env, error);
  }
  napi_valuetype table_type;
  napi_typeof(env, argv[8], &table_type);
  if (table_type != napi_null) {
    if (a.table_rows < 4) return fail(env, "blockSparseAttention: inconsistent bias dims");
    if (!typed(env, argv[8], napi_float32_array, (int64_t)a.table_rows * a.heads, (void **)&a.table,
               "table", error) ||
        !typed(env, argv[9], napi_int32_array, (int64_t)(a.token_batch < 1 ? 1 : a.token_batch) * (a.n - 1),
               (void **)&a.codes, "codes", error)) {
      return fail(env, error);
    }
    problem = check_codes(&a);
    if (problem != NULL) {
      snprintf(error, 200, "blockSparseAttention: %s", problem);
      return fail(env, error);
    }
  }
  int32_t threads = 1;
  napi_get_value_int32(env, argv[12], &threads);
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  const int64_t units = (int64_t)a.batch * a.heads;
  if (threads > units) threads = (int32_t)units;
  _Atomic int64_t next = 0;

  const size_t scratch_bytes = (size_t)sprig_bsa_scratch_bytes(&a);
  worker workers[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started = 0;
  int ok = 1;
  for (int t = 0; t < threads; t++) {
    workers[t].args = &a;
    workers[t].next = &next;
    workers[t].units = units;
    workers[t].per_unit = sprig_bsa_items(&a) / units;
    workers[t].scratch = NULL;
    if (posix_memalign(&workers[t].scratch, 64, scratch_bytes) != 0) {
      workers[t].scratch = NULL;
      ok = 0;
    }
  }
  if (ok) {
    for (int t = 1; t < threads; t++) {
      if (pthread_create(&ids[t], NULL, work, &workers[t]) != 0) break;
      started = t;
    }
    /* Items of threads that failed to start run here. */
    for (int t = started + 1; t < threads; t++) work(&workers[t]);
    work(&workers[0]);
    for (int t = 1; t <= started; t++) pthread_join(ids[t], NULL);
  }
  for (int t = 0; t < threads; t++) free(workers[t].scratch);
  if (!ok) return fail(env, "blockSparseAttention: out of memory for scratch");
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "blockSparseAttention", NAPI_AUTO_LENGTH, block_sparse_attention, NULL, &fn);
  napi_set_named_property(env, exports, "blockSparseAttention", fn);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
