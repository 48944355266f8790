import type { Node } from "../../../src/ir/graph.js";
import type { HostTensor } from "../../../src/ir/tensor.js";
import { f32In, f32Out, outShape } from "./util.js";

/**
 * patchEmbed: a Conv2d with kernel = stride = p applied to every frame. With pixels
 * [B, T, Cin, Hpx, Wpx], weight [C, Cin, p, p], bias [C], hp = Hpx/p, wp = Wpx/p:
 *   out[b, t·hp·wp + py·wp + px, c] =
 *     bias[c] + Σ_{ci, ky, kx} w[c, ci, ky, kx] · pix[b, t, ci, py·p + ky, px·p + kx].
 * Each patch is copied into a contiguous vector in (ci, ky, kx) order, the order of a
 * weight row, and dotted with every row.
 */
export function patchEmbed(node: Node<"patchEmbed">, inputs: readonly HostTensor[]): HostTensor[] {
  const pixels = f32In(node, inputs, 0);
  const w = f32In(node, inputs, 1).data;
  const bias = f32In(node, inputs, 2).data;
  const [batch, frames, cin, height, width] = pixels.shape as [
    number,
    number,
    number,
    number,
    number,
  ];
  const p = node.attrs.patchSize;
  const hp = height / p;
  const wp = width / p;
  const hidden = bias.length;
  const patchLen = cin * p * p;
  const out = new Float32Array(batch * frames * hp * wp * hidden);
  const patch = new Float64Array(patchLen);
  const pix = pixels.data;
  let row = 0;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < frames; t++) {
      const frame = (b * frames + t) * cin * height * width;
      for (let py = 0; py < hp; py++) {
        for (let px = 0; px < wp; px++) {
          let k = 0;
          for (let ci = 0; ci < cin; ci++) {
            for (let ky = 0; ky < p; ky++) {
              const src = frame + (ci * height + py * p + ky) * width + px * p;
              for (let kx = 0; kx < p; kx++) patch[k++] = pix[src + kx]!;
            }
          }
          const dst = row * hidden;
          for (let c = 0; c < hidden; c++) {
            const w0 = c * patchLen;
            let s = 0;
            for (let i = 0; i < patchLen; i++) s += w[w0 + i]! * patch[i]!;
            out[dst + c] = s + bias[c]!;
          }
          row++;
        }
      }
    }
  }
  return [f32Out(outShape(node), out)];
}

/**
 * prependTokens: out[b] = [prefix[b'], x[b]] along the token axis, b' = b or 0 when the
 * prefix has batch 1: [1|B, P, C] + [B, N, C] -> [B, P+N, C].
 */
export function prependTokens(
  node: Node<"prependTokens">,
  inputs: readonly HostTensor[],
): HostTensor[] {
  const prefix = f32In(node, inputs, 0);
  const x = f32In(node, inputs, 1);
  const shape = outShape(node);
  const [batch, total, c] = shape as [number, number, number];
  const prefixLen = prefix.shape[1]! * c;
  const xLen = x.shape[1]! * c;
  const prefixBatch = prefix.shape[0]!;
  const xBatch = x.shape[0]!;
  const out = new Float32Array(batch * total * c);
  for (let b = 0; b < batch; b++) {
    const dst = b * total * c;
    const pb = prefixBatch === 1 ? 0 : b;
    const xb = xBatch === 1 ? 0 : b;
    out.set(prefix.data.subarray(pb * prefixLen, (pb + 1) * prefixLen), dst);
    out.set(x.data.subarray(xb * xLen, (xb + 1) * xLen), dst + prefixLen);
  }
  return [f32Out(shape, out)];
}

/** meanTokens: out[b, c] = Σ_{n = skip}^{N-1} x[b, n, c] / (N - skip). */
export function meanTokens(node: Node<"meanTokens">, inputs: readonly HostTensor[]): HostTensor[] {
  const x = f32In(node, inputs, 0);
  const [batch, tokens, c] = x.shape as [number, number, number];
  const { skip } = node.attrs;
  const out = new Float32Array(batch * c);
  const acc = new Float64Array(c);
  for (let b = 0; b < batch; b++) {
    acc.fill(0);
    for (let n = skip; n < tokens; n++) {
      const off = (b * tokens + n) * c;
      for (let i = 0; i < c; i++) acc[i] = acc[i]! + x.data[off + i]!;
    }
    for (let i = 0; i < c; i++) out[b * c + i] = acc[i]! / (tokens - skip);
  }
  return [f32Out(outShape(node), out)];
}
