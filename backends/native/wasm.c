/*
 * WebAssembly entry points of the block-sparse attention kernel (bsa.c), single-threaded.
 * The module imports its memory; the caller (backends/tfjs/wasm-kernels.ts) lays out the
 * argument struct and every buffer above __heap_base.
 */
#include "bsa.h"

__attribute__((export_name("scratch_bytes"))) int32_t scratch_bytes(const sprig_bsa_args *a) {
  return (int32_t)sprig_bsa_scratch_bytes(a);
}

__attribute__((export_name("run"))) void run(const sprig_bsa_args *a, void *scratch) {
  sprig_bsa_run(a, 0, sprig_bsa_items(a), scratch);
}
