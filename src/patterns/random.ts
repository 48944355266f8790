/**
 * A small seeded generator (mulberry32) with named streams. Patterns and synthetic weights
 * must be reproducible from a seed across machines and Node versions, which Math.random
 * is not. Streams are derived by hashing a label with the seed, so the weights of
 * "encoder.layer.3.intermediate.dense.weight" do not depend on how many other tensors were
 * drawn before it.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A generator for `label`, independent of every other label under the same seed. */
  static stream(seed: number, label: string): Rng {
    return new Rng(hashString(label, seed));
  }

  /** Uniform in [0, 2^32). */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fills `out` with N(mean, std²) samples (Box-Muller, both values of each pair used). */
  fillNormal(out: Float32Array, mean = 0, std = 1): Float32Array {
    for (let i = 0; i < out.length; i += 2) {
      const u1 = 1 - this.next();
      const u2 = this.next();
      const radius = Math.sqrt(-2 * Math.log(u1));
      out[i] = mean + std * radius * Math.cos(2 * Math.PI * u2);
      if (i + 1 < out.length) out[i + 1] = mean + std * radius * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }
}

/** FNV-1a over UTF-16 code units, mixed with a seed. */
export function hashString(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
