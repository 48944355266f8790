/*
 * Block-sparse attention, one (batch, head, query block) at a time.
 *
 * An item gathers the keys its query block reads (the global tokens, then its layout row's
 * key blocks, however many the row has) into a transposed block KT [d, Kp] and the values
 * into V [K, dp], so both products run as register-blocked outer products over contiguous
 * memory:
 *   S = Q KT  (4 query rows x 2 vectors of keys per step, the KT strip stays in L1),
 *   S = S / sqrt(d) + bias, pairs a partial block's token mask clears set to -inf, padded
 *   keys set by the padding mode, row softmax (vectorised exp),
 *   O = P V   (4 rows x 2 vectors of channels per step).
 * A partial block is computed like a full one and masked afterwards (its masked pairs get
 * probability exactly 0): nothing is densified, and the products keep their shape.
 * Nothing of size [n, n] is formed; the global rows are a separate item, dense over all
 * keys, whose probabilities are the op's second output (the CLS row token pruning reads).
 *
 * The relative position bias is table[idx, h] with, for local tokens a and c,
 * idx = code(a) - code(c) + offset, the linear form of the 3-D index (src/ir/relpos.ts):
 * the caller passes every token's code, so one subtraction per key remains.
 */
#include "bsa.h"

#ifdef __wasm__
/* Freestanding: no libc. Bulk memory and f32.sqrt stand in for it. */
#define memcpy __builtin_memcpy
#define memset __builtin_memset
#define sqrtf __builtin_sqrtf
#define INFINITY __builtin_inff()
#include <stddef.h>
#else
#include <math.h>
#include <string.h>
#endif

/* Vector width in bytes: 64 with AVX-512 (measured 12% faster than 32 on Zen 4, whose
 * 512-bit units are double-pumped: half the instructions for the same FLOPs), else 32; the
 * WebAssembly build sets 16. */
#ifndef SPRIG_VBYTES
#ifdef __AVX512F__
#define SPRIG_VBYTES 64
#else
#define SPRIG_VBYTES 32
#endif
#endif
#define VL (SPRIG_VBYTES / 4)

/* Query rows per register tile: 8 x 2 accumulators need the 32 vector registers of
 * AVX-512; elsewhere 4 x 2. */
#ifndef SPRIG_ROWS
#ifdef __AVX512F__
#define SPRIG_ROWS 8
#else
#define SPRIG_ROWS 4
#endif
#endif
#define ROWS SPRIG_ROWS

#if defined(__clang__)
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

typedef float vf __attribute__((vector_size(SPRIG_VBYTES)));
typedef int32_t vi __attribute__((vector_size(SPRIG_VBYTES)));
/* Unaligned views for loads and stores. */
typedef float vfu __attribute__((vector_size(SPRIG_VBYTES), aligned(4)));

#define LOAD(p) (*(const vfu *)(p))
#define STORE(p, x) (*(vfu *)(p) = (x))

static inline vf splat(float x) { return (vf){0} + x; }

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* a where keep is all ones, else b. */
static inline vf select(vi keep, vf a, vf b) { return (vf)(((vi)a & keep) | ((vi)b & ~keep)); }

/*
 * exp(x) for x <= 0 (softmax after subtracting the row maximum), ~1 ulp: x = n ln2 + r with
 * |r| <= ln2 / 2, exp(r) by Cephes' expf polynomial, 2^n by building the exponent bits.
 * Below -87 (including -inf) the result is exactly 0.
 */
static inline vf vexp(vf x) {
  const vf lo = splat(-87.0f);
  vi live = x >= lo;
  x = select(live, x, lo);
  const vf magic = splat(12582912.0f); /* 1.5 * 2^23: adding it rounds to an integer */
  vf t = x * 1.44269504088896341f + magic;
  vf n = t - magic;
  vf r = x - n * 0.693359375f - n * -2.12194440e-4f;
  vf p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  vi bits = ((vi)t - 0x4B400000 + 127) << 23;
  return select(live, p * (vf)bits, splat(0.0f));
}

static inline float hsum(vf x) {
  float s = 0.0f;
  for (int i = 0; i < VL; i++) s += x[i];
  return s;
}

static inline float hmax(vf x) {
  float m = x[0];
  for (int i = 1; i < VL; i++) m = x[i] > m ? x[i] : m;
  return m;
}

/* In place over x[0 .. len), len a multiple of VL: softmax, -inf entries becoming 0. */
static void softmax_row(float *x, int64_t len) {
  vf mv = splat(-INFINITY);
  for (int64_t j = 0; j < len; j += VL) {
    vf v = LOAD(x + j);
    mv = select(v > mv, v, mv);
  }
  const float max = hmax(mv);
  vf sv = splat(0.0f);
  for (int64_t j = 0; j < len; j += VL) {
    vf e = vexp(LOAD(x + j) - max);
    STORE(x + j, e);
    sv += e;
  }
  const float inv = 1.0f / hsum(sv);
  for (int64_t j = 0; j < len; j += VL) STORE(x + j, LOAD(x + j) * inv);
}

/* Geometry shared by every item; keys, kp: slots of the widest row (scratch sizes). */
typedef struct {
  /* lp: the sequence padded to whole blocks, g + blocks * bs; kw: kt_head's row stride. */
  int64_t d, local, keys, kp, dp, bsp, np, lp, kw;
} geometry;

static geometry geometry_of(const sprig_bsa_args *a) {
  geometry s;
  s.d = a->c / a->heads;
  s.local = a->n - a->g;
  s.keys = a->g + (int64_t)a->max_width * a->bs;
  s.kp = round_up(s.keys, 2 * VL);
  s.dp = round_up(s.d, 2 * VL);
  s.bsp = round_up(a->bs, ROWS);
  s.np = round_up(a->n, VL);
  s.lp = a->g + (int64_t)a->blocks * a->bs;
  s.kw = round_up(s.lp, VL);
  return s;
}

int64_t sprig_bsa_items(const sprig_bsa_args *a) {
  return (int64_t)a->batch * a->heads * (a->blocks + 1);
}

/* Scratch layout (floats, each part 64-byte aligned). */
typedef struct {
  /* kt_head [d, lp]: the current head's keys transposed (zero past n); bias_h its bias column. */
  float *kt_head, *bias_h;
  float *kt, *v, *q, *s, *o, *row;
  int32_t *key_pos, *key_lin, *query_lin, *pad_keys;
} scratch_parts;

static int64_t carve(int64_t *at, int64_t count) {
  int64_t start = *at;
  *at += round_up(count, 16);
  return start;
}

static scratch_parts parts_of(const sprig_bsa_args *a, const geometry *s, void *base,
                              int64_t *total) {
  int64_t at = 0;
  int64_t kt_head = carve(&at, s->d * s->kw);
  int64_t kt = carve(&at, s->d * s->kp);
  int64_t v = carve(&at, s->kp * s->dp);
  int64_t q = carve(&at, s->bsp * s->d);
  /* VL floats of slack: mask_partial's last chunk may reach past a row's slots. */
  int64_t sc = carve(&at, s->bsp * s->kp + VL);
  int64_t o = carve(&at, s->bsp * s->dp);
  int64_t bias = carve(&at, a->table ? a->table_rows : 1);
  int64_t row = carve(&at, s->np > s->dp ? s->np : s->dp);
  int64_t key_pos = carve(&at, s->kp);
  int64_t key_lin = carve(&at, s->kp);
  int64_t pad_keys = carve(&at, s->kp);
  int64_t query_lin = carve(&at, s->bsp);
  *total = at * 4;
  scratch_parts p = {0};
  if (base == NULL) return p;
  float *f = (float *)base;
  p.kt_head = f + kt_head;
  p.kt = f + kt;
  p.v = f + v;
  p.q = f + q;
  p.s = f + sc;
  p.o = f + o;
  p.bias_h = f + bias;
  p.row = f + row;
  p.key_pos = (int32_t *)(f + key_pos);
  p.key_lin = (int32_t *)(f + key_lin);
  p.pad_keys = (int32_t *)(f + pad_keys);
  p.query_lin = (int32_t *)(f + query_lin);
  return p;
}

int64_t sprig_bsa_scratch_bytes(const sprig_bsa_args *a) {
  geometry s = geometry_of(a);
  int64_t total = 0;
  parts_of(a, &s, NULL, &total);
  return total;
}

/* code of sequence position pos >= 1 of batch item b (see the file comment). */
static int32_t code_of(const sprig_bsa_args *a, int64_t b, int64_t pos) {
  const int64_t row = a->token_batch == 1 ? 0 : b;
  return a->codes[row * (a->n - 1) + pos - 1];
}

/* bias_h[r] = table[r, h] for every table row. */
static void load_bias_column(const sprig_bsa_args *a, int64_t h, float *bias_h) {
  for (int64_t r = 0; r < a->table_rows; r++) bias_h[r] = a->table[r * a->heads + h];
}

/* The global rows i < g of (b, h): dense over all n keys. */
static void global_rows(const sprig_bsa_args *a, const geometry *s, int64_t b, int64_t h,
                        const scratch_parts *p) {
  const int64_t n = a->n, c = a->c, d = s->d;
  const float scale = 1.0f / sqrtf((float)d);
  float *logits = p->row;
  for (int64_t i = 0; i < a->g; i++) {
    /* logits = q_i KT over the head's transposed keys, a vector of keys at a time. */
    const float *qi = a->q + (b * n + i) * c + h * d;
    for (int64_t j = 0; j < s->np; j += VL) STORE(logits + j, splat(0.0f));
    for (int64_t t = 0; t < d; t++) {
      const float x = qi[t] * scale;
      const float *kt = p->kt_head + t * s->kw;
      for (int64_t j = 0; j < s->np; j += VL) STORE(logits + j, LOAD(logits + j) + x * LOAD(kt + j));
    }
    /* With a bias there is one global token, the CLS token: cls->token, and cls->cls. */
    if (a->table) {
      const float to_token = p->bias_h[a->cls_to_token];
      for (int64_t j = 0; j < n; j++) logits[j] += to_token;
      logits[0] += p->bias_h[a->cls_to_cls] - to_token;
    }
    for (int64_t j = n; j < s->np; j++) logits[j] = -INFINITY;
    softmax_row(logits, s->np);
    memcpy(a->probs + ((b * a->heads + h) * a->g + i) * n, logits, (size_t)n * 4);
    float *acc = p->o;
    memset(acc, 0, (size_t)s->dp * 4);
    for (int64_t j = 0; j < n; j++) {
      const float *vj = a->v + (b * n + j) * c + h * d;
      const float w = logits[j];
      for (int64_t t = 0; t < d; t++) acc[t] += w * vj[t];
    }
    memcpy(a->context + (b * n + i) * c + h * d, acc, (size_t)d * 4);
  }
}

/* VL bits of a token-mask row starting at bit t0 (a chunk spans at most two words), with
 * the bits past the block's bs keys set (those lanes belong to the next entry). */
static inline uint32_t mask_bits(const uint32_t *bits, int64_t t0, int64_t bs) {
  const int64_t word = t0 >> 5, shift = t0 & 31;
  uint32_t out = bits[word] >> shift;
  if (shift + VL > 32 && (word + 1) * 32 < bs) out |= bits[word + 1] << (32 - shift);
  const int64_t span = bs - t0;
  if (span < VL) out |= ~((1u << span) - 1u);
  return VL == 32 ? out : out | ~((1u << VL) - 1u);
}

/* -inf at the slots of query row i that partial entries' token masks clear, VL slots at a
 * time: lane u of a chunk keeps its logit when bit u of the chunk's mask bits is set. */
static void mask_partial(const sprig_bsa_args *a, const int32_t *entry_mask, int64_t width,
                         int64_t i, float *si) {
  const int64_t g = a->g, bs = a->bs, words = a->mask_words;
  vi lane = {0};
  for (int u = 0; u < VL; u++) lane[u] = 1 << u;
  const vf minus_inf = splat(-INFINITY);
  for (int64_t w = 0; w < width; w++) {
    const int32_t mask = entry_mask[w];
    if (mask < 0) continue;
    const uint32_t *bits = a->masks + ((int64_t)mask * bs + i) * words;
    float *slots = si + g + w * bs;
    for (int64_t t0 = 0; t0 < bs; t0 += VL) {
      const uint32_t chunk = mask_bits(bits, t0, bs);
      if (chunk == 0xffffffffu) continue;
      const vi keep = ((vi){0} + (int32_t)chunk & lane) != 0;
      STORE(slots + t0, select(keep, LOAD(slots + t0), minus_inf));
    }
  }
}

/* Query block m of (b, h), its slots rounded up to kp (see local_block). */
static inline __attribute__((always_inline)) void local_block_kp(
    const sprig_bsa_args *a, const geometry *s, int64_t b, int64_t h, int64_t m,
    const scratch_parts *p, int64_t first_entry, int64_t width, int64_t kp) {
  const int64_t n = a->n, c = a->c, d = s->d, g = a->g, bs = a->bs;
  const float scale = 1.0f / sqrtf((float)d);
  const int32_t *row = a->key_block + first_entry;
  const int64_t keys = g + width * bs, dp = s->dp;

  /* Key positions (-1: padding); keys as columns of the head's KT, values as row pointers. */
  int64_t pads = 0;
  for (int64_t j = 0; j < g; j++) p->key_pos[j] = (int32_t)j;
  for (int64_t w = 0; w < width; w++) {
    for (int64_t t = 0; t < bs; t++) {
      const int64_t local = (int64_t)row[w] * bs + t;
      const int64_t j = g + w * bs + t;
      p->key_pos[j] = local < s->local ? (int32_t)(g + local) : -1;
      if (local >= s->local) p->pad_keys[pads++] = (int32_t)j;
    }
  }
  for (int64_t t = 0; t < d; t++) {
    float *dst = p->kt + t * kp;
    const float *src = p->kt_head + t * s->kw;
    for (int64_t j = 0; j < g; j++) dst[j] = src[j];
    for (int64_t w = 0; w < width; w++) {
      memcpy(dst + g + w * bs, src + g + (int64_t)row[w] * bs, (size_t)bs * 4);
    }
    for (int64_t j = keys; j < kp; j++) dst[j] = 0.0f;
  }
  /* V packed by channel chunk, [dp / (2 VL), K, 2 VL], so the product streams each chunk
   * contiguously (and from L1: one chunk of a block is K x 2 VL floats). */
  enum { CHUNK = 2 * VL };
  for (int64_t j = 0; j < keys; j++) {
    const int32_t pos = p->key_pos[j];
    const float *vj = pos < 0 ? NULL : a->v + (b * n + pos) * c + h * d;
    for (int64_t t0 = 0; t0 < dp; t0 += CHUNK) {
      float *dst = p->v + (t0 / CHUNK) * keys * CHUNK + j * CHUNK;
      if (vj != NULL && t0 + CHUNK <= d) {
        memcpy(dst, vj + t0, CHUNK * 4);
      } else {
        for (int64_t u = 0; u < CHUNK; u++) dst[u] = vj != NULL && t0 + u < d ? vj[t0 + u] : 0.0f;
      }
    }
  }

  const int64_t first = m * bs;
  const int64_t rows = (first + bs < s->local ? first + bs : s->local) - first;
  for (int64_t i = 0; i < s->bsp; i++) {
    if (i < rows) {
      memcpy(p->q + i * d, a->q + (b * n + g + first + i) * c + h * d, (size_t)d * 4);
    } else {
      memset(p->q + i * d, 0, (size_t)d * 4);
    }
  }

  /* S = Q KT, ROWS rows x 2 vectors at a time. */
  for (int64_t j0 = 0; j0 < kp; j0 += 2 * VL) {
    for (int64_t i0 = 0; i0 < s->bsp; i0 += ROWS) {
      vf acc[ROWS][2];
      UNROLL for (int r = 0; r < ROWS; r++) acc[r][0] = acc[r][1] = splat(0.0f);
      const float *q0 = p->q + i0 * d;
      for (int64_t t = 0; t < d; t++) {
        const vf k0 = LOAD(p->kt + t * kp + j0), k1 = LOAD(p->kt + t * kp + j0 + VL);
        UNROLL for (int r = 0; r < ROWS; r++) {
          const float x = q0[r * d + t];
          acc[r][0] += x * k0;
          acc[r][1] += x * k1;
        }
      }
      UNROLL for (int r = 0; r < ROWS; r++) {
        STORE(p->s + (i0 + r) * kp + j0, acc[r][0] * scale);
        STORE(p->s + (i0 + r) * kp + j0 + VL, acc[r][1] * scale);
      }
    }
  }

  /* Bias, partial blocks' masks, padding, softmax. */
  if (a->table) {
    for (int64_t j = 0; j < keys; j++) {
      const int32_t pos = p->key_pos[j];
      p->key_lin[j] = code_of(a, b, pos >= g ? pos : g);
    }
    for (int64_t i = 0; i < rows; i++) p->query_lin[i] = code_of(a, b, g + first + i);
  }
  const float to_cls = a->table ? p->bias_h[a->token_to_cls] : 0.0f;
  const int32_t *entry_mask = a->mask_count > 0 ? a->entry_mask + first_entry : NULL;
  for (int64_t i = 0; i < rows; i++) {
    float *si = p->s + i * kp;
    if (a->table) {
      const float *base = p->bias_h + p->query_lin[i] + a->offset;
      for (int64_t j = 0; j < g; j++) si[j] += to_cls;
      /* Padded keys read a valid entry here and are overwritten below. */
      for (int64_t j = g; j < keys; j++) si[j] += base[-p->key_lin[j]];
    }
    if (entry_mask != NULL) mask_partial(a, entry_mask, width, i, si);
    /* A padded key is a zero vector: logit 0 (+ the token->CLS bias), or left out. */
    for (int64_t x = 0; x < pads; x++) si[p->pad_keys[x]] = a->masked ? -INFINITY : to_cls;
    for (int64_t j = keys; j < kp; j++) si[j] = -INFINITY;
    softmax_row(si, kp);
  }

  /* O = P V, ROWS rows x 2 vectors of channels at a time; padded keys have zero values. */
  const int64_t full = rows / ROWS * ROWS;
  for (int64_t t0 = 0; t0 < dp; t0 += 2 * VL) {
    const float *vc = p->v + (t0 / CHUNK) * keys * CHUNK;
    for (int64_t i0 = 0; i0 < full; i0 += ROWS) {
      vf acc[ROWS][2];
      UNROLL for (int r = 0; r < ROWS; r++) acc[r][0] = acc[r][1] = splat(0.0f);
      const float *p0 = p->s + i0 * kp;
      for (int64_t j = 0; j < keys; j++) {
        const vf v0 = LOAD(vc + j * CHUNK), v1 = LOAD(vc + j * CHUNK + VL);
        UNROLL for (int r = 0; r < ROWS; r++) {
          const float x = p0[r * kp + j];
          acc[r][0] += x * v0;
          acc[r][1] += x * v1;
        }
      }
      UNROLL for (int r = 0; r < ROWS; r++) {
        STORE(p->o + (i0 + r) * dp + t0, acc[r][0]);
        STORE(p->o + (i0 + r) * dp + t0 + VL, acc[r][1]);
      }
    }
    for (int64_t i = full; i < rows; i++) {
      vf x0 = splat(0), x1 = splat(0);
      const float *pi = p->s + i * kp;
      for (int64_t j = 0; j < keys; j++) {
        x0 += pi[j] * LOAD(vc + j * CHUNK);
        x1 += pi[j] * LOAD(vc + j * CHUNK + VL);
      }
      STORE(p->o + i * dp + t0, x0);
      STORE(p->o + i * dp + t0 + VL, x1);
    }
  }
  for (int64_t i = 0; i < rows; i++) {
    memcpy(a->context + (b * n + g + first + i) * c + h * d, p->o + i * dp, (size_t)d * 4);
  }
}

/* Query block m of (b, h). Its slots G + width·bs are rounded up to kp, whole vector pairs.
 * A row as wide as the widest one takes the precomputed s->kp, a separate instantiation of
 * the body: measured ~1% faster in WebAssembly (V8) than one body computing kp per row. */
static void local_block(const sprig_bsa_args *a, const geometry *s, int64_t b, int64_t h,
                        int64_t m, const scratch_parts *p) {
  const int64_t hl = a->layout_heads == 1 ? 0 : h;
  const int64_t first_entry = a->row_start[hl * a->blocks + m];
  const int64_t width = a->row_start[hl * a->blocks + m + 1] - first_entry;
  if (width == a->max_width) {
    local_block_kp(a, s, b, h, m, p, first_entry, width, s->kp);
  } else {
    local_block_kp(a, s, b, h, m, p, first_entry, width, round_up(a->g + width * a->bs, 2 * VL));
  }
}

/* kt_head = the keys of (b, h) transposed, zero in the padding columns n .. kw. */
static void load_head_keys(const sprig_bsa_args *a, const geometry *s, int64_t b, int64_t h,
                           float *kt_head) {
  const int64_t n = a->n, c = a->c, d = s->d, kw = s->kw;
  /* In tiles of 8 positions, so each written row of kt_head gets 32 contiguous bytes. */
  enum { TILE = 8 };
  for (int64_t p0 = 0; p0 < n; p0 += TILE) {
    const int64_t width = n - p0 < TILE ? n - p0 : TILE;
    const float *k0 = a->k + (b * n + p0) * c + h * d;
    for (int64_t t = 0; t < d; t++) {
      float *dst = kt_head + t * kw + p0;
      for (int64_t r = 0; r < width; r++) dst[r] = k0[r * c + t];
    }
  }
  for (int64_t t = 0; t < d; t++) {
    for (int64_t pos = n; pos < kw; pos++) kt_head[t * kw + pos] = 0.0f;
  }
}

void sprig_bsa_run(const sprig_bsa_args *a, int64_t first, int64_t last, void *scratch) {
  const geometry s = geometry_of(a);
  int64_t total = 0;
  const scratch_parts p = parts_of(a, &s, scratch, &total);
  const int64_t per_head = a->blocks + 1;
  /* The (b, h) whose transposed keys, and whose bias column, scratch holds. */
  int64_t keys_of = -1, bias_of = -1;
  for (int64_t item = first; item < last; item++) {
    const int64_t bh = item / per_head, m = item % per_head;
    const int64_t b = bh / a->heads, h = bh % a->heads;
    if (a->table && bh != bias_of) {
      load_bias_column(a, h, p.bias_h);
      bias_of = bh;
    }
    if (bh != keys_of) {
      load_head_keys(a, &s, b, h, p.kt_head);
      keys_of = bh;
    }
    if (m == a->blocks) {
      global_rows(a, &s, b, h, &p);
      continue;
    }
    local_block(a, &s, b, h, m, &p);
  }
}
