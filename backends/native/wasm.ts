import type { Node } from "../../src/ir/graph.js";
import type { HostTensor } from "../../src/ir/tensor.js";
import { biasFields, bsaCall, bsaOutputs, shapeFields } from "./args.js";

/**
 * The block-sparse attention kernel (bsa.c) compiled to WebAssembly SIMD (wasm.c), one
 * thread. Used by the tfjs-wasm backend in place of its portable lowering; imports nothing
 * of Node (the bytes come from the caller), so browser bundles may include it.
 *
 * Memory: the module imports one linear memory; a call lays out, from __heap_base up, the
 * sprig_bsa_args struct, the plan's rows (CSR) and token masks, q, k, v, bias table, token
 * codes, both outputs and the kernel's scratch, growing the memory when a call needs more,
 * and copies the outputs out.
 */

/** sprig_bsa_args in wasm32: 29 four-byte fields in declaration order (bsa.h). */
const ARGS_BYTES = 29 * 4;
const PAGE = 65536;

interface Exports {
  readonly scratch_bytes: (args: number) => number;
  readonly run: (args: number, scratch: number) => void;
  readonly __heap_base: { readonly value: number };
}

/** The parts of the WebAssembly JS API used here (the project's lib settings omit it). */
interface Memory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  readonly Memory: new (descriptor: { initial: number }) => Memory;
  instantiate(
    bytes: Uint8Array,
    imports: { env: { memory: Memory } },
  ): Promise<{ instance: { exports: unknown } }>;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export class WasmBlockSparseAttention {
  private constructor(
    private readonly memory: Memory,
    private readonly exports: Exports,
  ) {}

  static async instantiate(bytes: Uint8Array): Promise<WasmBlockSparseAttention> {
    const memory = new wasm.Memory({ initial: 32 });
    const { instance } = await wasm.instantiate(bytes, { env: { memory } });
    return new WasmBlockSparseAttention(memory, instance.exports as unknown as Exports);
  }

  /** The node's [context, global probabilities]; matches the reference kernel. */
  run(node: Node<"blockSparseAttention">, inputs: readonly HostTensor[]): HostTensor[] {
    const call = bsaCall(node, inputs, "tfjs-wasm");
    const { bias } = call;
    let top = Number(this.exports.__heap_base.value);
    const take = (bytes: number): number => {
      const at = Math.ceil(top / 64) * 64;
      top = at + bytes;
      return at;
    };
    const args = take(ARGS_BYTES);
    const rowStart = take(call.rowStart.byteLength);
    const keyBlock = take(call.keyBlock.byteLength);
    const entryMask = take(call.entryMask.byteLength);
    const masks = take(call.masks.byteLength);
    const q = take(call.q.byteLength);
    const k = take(call.k.byteLength);
    const v = take(call.v.byteLength);
    const table = bias === null ? 0 : take(bias.table.byteLength);
    const codes = bias === null ? 0 : take(bias.codes.byteLength);
    const context = take(call.contextSize * 4);
    const probs = take(call.probsSize * 4);
    this.reserve(top);
    const fields = [
      ...shapeFields(call),
      rowStart,
      keyBlock,
      entryMask,
      masks,
      q,
      k,
      v,
      table,
      ...biasFields(call),
      codes,
      context,
      probs,
    ];
    new Int32Array(this.memory.buffer, args, fields.length).set(fields);
    const scratch = take(this.exports.scratch_bytes(args));
    this.reserve(top);
    const buffer = this.memory.buffer;
    new Int32Array(buffer, rowStart, call.rowStart.length).set(call.rowStart);
    new Int32Array(buffer, keyBlock, call.keyBlock.length).set(call.keyBlock);
    new Int32Array(buffer, entryMask, call.entryMask.length).set(call.entryMask);
    new Uint32Array(buffer, masks, call.masks.length).set(call.masks);
    new Float32Array(buffer, q, call.q.length).set(call.q);
    new Float32Array(buffer, k, call.k.length).set(call.k);
    new Float32Array(buffer, v, call.v.length).set(call.v);
    if (bias !== null) {
      new Float32Array(buffer, table, bias.table.length).set(bias.table);
      new Int32Array(buffer, codes, bias.codes.length).set(bias.codes);
    }
    this.exports.run(args, scratch);
    const out = this.memory.buffer;
    return bsaOutputs(
      node,
      new Float32Array(out, context, call.contextSize).slice(),
      new Float32Array(out, probs, call.probsSize).slice(),
    );
  }

  /** Grows the memory to hold `bytes`. */
  private reserve(bytes: number): void {
    const missing = bytes - this.memory.buffer.byteLength;
    if (missing > 0) this.memory.grow(Math.ceil(missing / PAGE));
  }
}
