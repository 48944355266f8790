/*
 * Block-sparse attention, one (batch, head, query block) at a time.
 *
 * An item gathers the keys its query block reads (the global tokens, then the layout row's
 * key blocks) into a transposed block KT [d, Kp] and the values into V [K, dp], so both
 * products run as register-blocked outer products over contiguous memory:
 *   S = Q KT  (4 query rows x 2 vectors of keys per step, the KT strip stays in L1),
 *   S = S / sqrt(d) + bias, row softmax (vectorised exp),
 *   O = P V   (4 rows x 2 vectors of channels per step).
 * Nothing of size [n, n] is formed; the global rows are a separate item, dense over all
 * keys, whose probabilities are the op's second output (the CLS row token pruning reads).
 *
 * The relative position bias is table[idx, h] with, for local ids a and c,
 * idx = lin(a) - lin(c) + off, lin(t, y, x) = (t (2Hw - 1) + y)(2Ww - 1) + x, which is the
 * 3-D index of src/ir/relpos.ts rearranged so that one subtraction per key remains.
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

#ifndef SPRIG_VBYTES
#define SPRIG_VBYTES 32
#endif
#define VL (SPRIG_VBYTES / 4)

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

/* Geometry shared by every item. */
typedef struct {
  /* lp: the sequence padded to whole blocks, g + blocks * bs. */
  int64_t d, local, keys, kp, dp, bsp, np, lp, pairs, off;
} geometry;

static geometry geometry_of(const sprig_bsa_args *a) {
  geometry s;
  s.d = a->c / a->heads;
  s.local = a->n - a->g;
  s.keys = a->g + (int64_t)a->width * a->bs;
  s.kp = round_up(s.keys, 2 * VL);
  s.dp = round_up(s.d, 2 * VL);
  s.bsp = round_up(a->bs, 4);
  s.np = round_up(a->n, VL);
  s.lp = a->g + (int64_t)a->blocks * a->bs;
  s.pairs = (int64_t)(2 * a->wt - 1) * (2 * a->wh - 1) * (2 * a->ww - 1);
  s.off = ((int64_t)(a->wt - 1) * (2 * a->wh - 1) + (a->wh - 1)) * (2 * a->ww - 1) + (a->ww - 1);
  return s;
}

int64_t sprig_bsa_items(const sprig_bsa_args *a) {
  return (int64_t)a->batch * a->heads * (a->blocks + 1);
}

/* Scratch layout (floats, each part 64-byte aligned). */
typedef struct {
  /* kt_head [d, lp]: the current head's keys transposed (zero past n); bias_h its bias column. */
  float *kt_head, *bias_h;
  float *kt, *v, *q, *s, *o, *row, *zeros;
  const float **v_rows;
  int32_t *key_pos, *key_lin, *query_lin;
} scratch_parts;

static int64_t carve(int64_t *at, int64_t count) {
  int64_t start = *at;
  *at += round_up(count, 16);
  return start;
}

static scratch_parts parts_of(const sprig_bsa_args *a, const geometry *s, void *base,
                              int64_t *total) {
  int64_t at = 0;
  int64_t kt_head = carve(&at, s->d * s->lp);
  int64_t kt = carve(&at, s->d * s->kp);
  int64_t v = carve(&at, s->keys * s->dp);
  int64_t q = carve(&at, s->bsp * s->d);
  int64_t sc = carve(&at, s->bsp * s->kp);
  int64_t o = carve(&at, s->bsp * s->dp);
  int64_t bias = carve(&at, a->table ? a->table_rows : 1);
  int64_t row = carve(&at, s->np > s->dp ? s->np : s->dp);
  int64_t key_pos = carve(&at, s->kp);
  int64_t key_lin = carve(&at, s->kp);
  int64_t query_lin = carve(&at, s->bsp);
  int64_t zeros = carve(&at, s->dp);
  int64_t v_rows = carve(&at, s->keys * (int64_t)(sizeof(float *) / 4));
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
  p.query_lin = (int32_t *)(f + query_lin);
  p.zeros = f + zeros;
  p.v_rows = (const float **)(void *)(f + v_rows);
  return p;
}

int64_t sprig_bsa_scratch_bytes(const sprig_bsa_args *a) {
  geometry s = geometry_of(a);
  int64_t total = 0;
  parts_of(a, &s, NULL, &total);
  return total;
}

/* lin of sequence position pos >= 1 of batch item b (see the file comment). */
static int32_t lin_of(const sprig_bsa_args *a, int64_t b, int64_t pos) {
  const int64_t row = a->token_batch == 1 ? 0 : b;
  const int32_t original = a->token_idx[row * (a->n - 1) + pos - 1];
  const int32_t frame = a->wh * a->ww;
  const int32_t t = original / frame, y = (original % frame) / a->ww, x = original % a->ww;
  return (t * (2 * a->wh - 1) + y) * (2 * a->ww - 1) + x;
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
    const float *qi = a->q + (b * n + i) * c + h * d;
    for (int64_t j = 0; j < n; j++) {
      const float *kj = a->k + (b * n + j) * c + h * d;
      float dot;
      if (d % VL == 0) {
        vf acc = splat(0.0f);
        for (int64_t t = 0; t < d; t += VL) acc += LOAD(qi + t) * LOAD(kj + t);
        dot = hsum(acc);
      } else {
        dot = 0.0f;
        for (int64_t t = 0; t < d; t++) dot += qi[t] * kj[t];
      }
      float logit = dot * scale;
      /* With a bias there is one global token, the CLS token: cls->cls, cls->token. */
      if (a->table) logit += p->bias_h[j == 0 ? s->pairs + 2 : s->pairs];
      logits[j] = logit;
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

/* Query block m of (b, h). */
static void local_block(const sprig_bsa_args *a, const geometry *s, int64_t b, int64_t h,
                        int64_t m, const scratch_parts *p) {
  const int64_t n = a->n, c = a->c, d = s->d, g = a->g, bs = a->bs;
  const int64_t keys = s->keys, kp = s->kp, dp = s->dp;
  const float scale = 1.0f / sqrtf((float)d);
  const int64_t hl = a->layout_heads == 1 ? 0 : h;
  const int32_t *row = a->layout + (hl * a->blocks + m) * a->width;

  /* Key positions (-1: padding); keys as columns of the head's KT, values as row pointers. */
  for (int64_t j = 0; j < g; j++) p->key_pos[j] = (int32_t)j;
  for (int64_t w = 0; w < a->width; w++) {
    for (int64_t t = 0; t < bs; t++) {
      const int64_t local = (int64_t)row[w] * bs + t;
      p->key_pos[g + w * bs + t] = local < s->local ? (int32_t)(g + local) : -1;
    }
  }
  for (int64_t t = 0; t < d; t++) {
    float *dst = p->kt + t * kp;
    const float *src = p->kt_head + t * s->lp;
    for (int64_t j = 0; j < g; j++) dst[j] = src[j];
    for (int64_t w = 0; w < a->width; w++) {
      memcpy(dst + g + w * bs, src + g + (int64_t)row[w] * bs, (size_t)bs * 4);
    }
    for (int64_t j = keys; j < kp; j++) dst[j] = 0.0f;
  }
  const int direct = d == dp;
  for (int64_t j = 0; j < keys; j++) {
    const int32_t pos = p->key_pos[j];
    const float *vj = pos < 0 ? NULL : a->v + (b * n + pos) * c + h * d;
    if (direct) {
      p->v_rows[j] = vj == NULL ? p->zeros : vj;
    } else {
      float *packed = p->v + j * dp;
      memset(packed, 0, (size_t)dp * 4);
      if (vj != NULL) memcpy(packed, vj, (size_t)d * 4);
      p->v_rows[j] = packed;
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

  /* S = Q KT, 4 rows x 2 vectors at a time. */
  for (int64_t j0 = 0; j0 < kp; j0 += 2 * VL) {
    for (int64_t i0 = 0; i0 < s->bsp; i0 += 4) {
      vf a0 = splat(0), a1 = splat(0), b0 = splat(0), b1 = splat(0);
      vf c0 = splat(0), c1 = splat(0), e0 = splat(0), e1 = splat(0);
      const float *q0 = p->q + i0 * d;
      for (int64_t t = 0; t < d; t++) {
        const vf k0 = LOAD(p->kt + t * kp + j0), k1 = LOAD(p->kt + t * kp + j0 + VL);
        const float x0 = q0[t], x1 = q0[d + t], x2 = q0[2 * d + t], x3 = q0[3 * d + t];
        a0 += x0 * k0;
        a1 += x0 * k1;
        b0 += x1 * k0;
        b1 += x1 * k1;
        c0 += x2 * k0;
        c1 += x2 * k1;
        e0 += x3 * k0;
        e1 += x3 * k1;
      }
      float *s0 = p->s + i0 * kp + j0;
      STORE(s0, a0 * scale);
      STORE(s0 + VL, a1 * scale);
      STORE(s0 + kp, b0 * scale);
      STORE(s0 + kp + VL, b1 * scale);
      STORE(s0 + 2 * kp, c0 * scale);
      STORE(s0 + 2 * kp + VL, c1 * scale);
      STORE(s0 + 3 * kp, e0 * scale);
      STORE(s0 + 3 * kp + VL, e1 * scale);
    }
  }

  /* Bias, padding, softmax. */
  if (a->table) {
    for (int64_t j = 0; j < keys; j++) {
      const int32_t pos = p->key_pos[j];
      p->key_lin[j] = lin_of(a, b, pos >= g ? pos : g);
    }
    for (int64_t i = 0; i < rows; i++) p->query_lin[i] = lin_of(a, b, g + first + i);
  }
  const float to_cls = a->table ? p->bias_h[s->pairs + 1] : 0.0f;
  for (int64_t i = 0; i < rows; i++) {
    float *si = p->s + i * kp;
    if (a->table) {
      const float *base = p->bias_h + p->query_lin[i] + s->off;
      for (int64_t j = 0; j < g; j++) si[j] += to_cls;
      /* Padded keys read a valid entry here and are overwritten below. */
      for (int64_t j = g; j < keys; j++) si[j] += base[-p->key_lin[j]];
    }
    for (int64_t j = g; j < keys; j++) {
      /* A padded key is a zero vector: logit 0 (+ the token->CLS bias), or left out. */
      if (p->key_pos[j] < 0) si[j] = a->masked ? -INFINITY : to_cls;
    }
    for (int64_t j = keys; j < kp; j++) si[j] = -INFINITY;
    softmax_row(si, kp);
  }

  /* O = P V, 4 rows x 2 vectors of channels at a time; padded keys have zero values. */
  const int64_t full = rows / 4 * 4;
  for (int64_t t0 = 0; t0 < dp; t0 += 2 * VL) {
    for (int64_t i0 = 0; i0 < full; i0 += 4) {
      vf a0 = splat(0), a1 = splat(0), b0 = splat(0), b1 = splat(0);
      vf c0 = splat(0), c1 = splat(0), e0 = splat(0), e1 = splat(0);
      const float *p0 = p->s + i0 * kp;
      for (int64_t j = 0; j < keys; j++) {
        const vf v0 = LOAD(p->v_rows[j] + t0), v1 = LOAD(p->v_rows[j] + t0 + VL);
        const float x0 = p0[j], x1 = p0[kp + j], x2 = p0[2 * kp + j], x3 = p0[3 * kp + j];
        a0 += x0 * v0;
        a1 += x0 * v1;
        b0 += x1 * v0;
        b1 += x1 * v1;
        c0 += x2 * v0;
        c1 += x2 * v1;
        e0 += x3 * v0;
        e1 += x3 * v1;
      }
      float *o0 = p->o + i0 * dp + t0;
      STORE(o0, a0);
      STORE(o0 + VL, a1);
      STORE(o0 + dp, b0);
      STORE(o0 + dp + VL, b1);
      STORE(o0 + 2 * dp, c0);
      STORE(o0 + 2 * dp + VL, c1);
      STORE(o0 + 3 * dp, e0);
      STORE(o0 + 3 * dp + VL, e1);
    }
    for (int64_t i = full; i < rows; i++) {
      vf x0 = splat(0), x1 = splat(0);
      const float *pi = p->s + i * kp;
      for (int64_t j = 0; j < keys; j++) {
        x0 += pi[j] * LOAD(p->v_rows[j] + t0);
        x1 += pi[j] * LOAD(p->v_rows[j] + t0 + VL);
      }
      STORE(p->o + i * dp + t0, x0);
      STORE(p->o + i * dp + t0 + VL, x1);
    }
  }
  for (int64_t i = 0; i < rows; i++) {
    memcpy(a->context + (b * n + g + first + i) * c + h * d, p->o + i * dp, (size_t)d * 4);
  }
}

/* kt_head = the keys of (b, h) transposed, zero in the padding columns n .. lp. */
static void load_head_keys(const sprig_bsa_args *a, const geometry *s, int64_t b, int64_t h,
                           float *kt_head) {
  const int64_t n = a->n, c = a->c, d = s->d, lp = s->lp;
  for (int64_t pos = 0; pos < n; pos++) {
    const float *kj = a->k + (b * n + pos) * c + h * d;
    for (int64_t t = 0; t < d; t++) kt_head[t * lp + pos] = kj[t];
  }
  for (int64_t t = 0; t < d; t++) {
    for (int64_t pos = n; pos < lp; pos++) kt_head[t * lp + pos] = 0.0f;
  }
}

void sprig_bsa_run(const sprig_bsa_args *a, int64_t first, int64_t last, void *scratch) {
  const geometry s = geometry_of(a);
  int64_t total = 0;
  const scratch_parts p = parts_of(a, &s, scratch, &total);
  memset(p.zeros, 0, (size_t)s.dp * 4);
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
    if (m == a->blocks) {
      global_rows(a, &s, b, h, &p);
      continue;
    }
    if (bh != keys_of) {
      load_head_keys(a, &s, b, h, p.kt_head);
      keys_of = bh;
    }
    local_block(a, &s, b, h, m, &p);
  }
}
