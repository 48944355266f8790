/**
 * Writing small torch-style checkpoints opcode by opcode, for tests of the cases torch
 * itself does not produce (lying views, oversharing, odd roots). Built from the pickle
 * and zip specifications, not with sprig's reader.
 */
import { crc32, deflateRawSync } from "node:zlib";

/** Appends pickle opcodes (protocol 2 encodings, as torch writes them). */
export class PickleWriter {
  private readonly bytes: number[] = [0x80, 2];

  private raw(...values: number[]): this {
    for (const value of values) this.bytes.push(value);
    return this;
  }

  private u32(value: number): number[] {
    return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
  }

  mark = () => this.raw(0x28);
  emptyDict = () => this.raw(0x7d);
  emptyList = () => this.raw(0x5d);
  emptyTuple = () => this.raw(0x29);
  tuple = () => this.raw(0x74);
  setItem = () => this.raw(0x73);
  setItems = () => this.raw(0x75);
  append = () => this.raw(0x61);
  reduce = () => this.raw(0x52);
  persistentId = () => this.raw(0x51);
  none = () => this.raw(0x4e);
  bool = (value: boolean) => this.raw(value ? 0x88 : 0x89);
  put = (index: number) => this.raw(0x72, ...this.u32(index));
  get = (index: number) => this.raw(0x6a, ...this.u32(index));
  stop = () => this.raw(0x2e);

  /** BININT (4-byte signed) for any int32. */
  int(value: number): this {
    return this.raw(0x4a, ...this.u32(value >>> 0));
  }

  str(text: string): this {
    const utf8 = [...new TextEncoder().encode(text)];
    return this.raw(0x58, ...this.u32(utf8.length), ...utf8);
  }

  global(module: string, name: string): this {
    return this.raw(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }

  /** A tuple of ints: MARK, BININT..., TUPLE. */
  intTuple(values: readonly number[]): this {
    this.mark();
    for (const value of values) this.int(value);
    return this.tuple();
  }

  finish(): Uint8Array {
    this.stop();
    return Uint8Array.from(this.bytes);
  }
}

export interface ViewSpec {
  readonly storageKey: string;
  readonly storageType?: string;
  readonly numel: number;
  readonly offset?: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

/**
 * `_rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, shape,
 * stride, False, OrderedDict())`, as torch pickles a tensor.
 */
export function writeTensor(writer: PickleWriter, view: ViewSpec): void {
  writer.global("torch._utils", "_rebuild_tensor_v2");
  writer.mark();
  writer
    .mark()
    .str("storage")
    .global("torch", view.storageType ?? "FloatStorage");
  writer.str(view.storageKey).str("cpu").int(view.numel).tuple().persistentId();
  writer
    .int(view.offset ?? 0)
    .intTuple(view.shape)
    .intTuple(view.stride)
    .bool(false);
  writer.global("collections", "OrderedDict").emptyTuple().reduce();
  writer.tuple().reduce();
}

/** `{key: OrderedDict(name -> tensor, ...)}` or, with key null, the OrderedDict itself. */
export function stateDictPickle(
  views: ReadonlyMap<string, ViewSpec>,
  key: string | null = "model",
): Uint8Array {
  const writer = new PickleWriter();
  if (key !== null) writer.emptyDict().str(key);
  writer.global("collections", "OrderedDict").emptyTuple().reduce();
  for (const [name, view] of views) {
    writer.str(name);
    writeTensor(writer, view);
    writer.setItem();
  }
  if (key !== null) writer.setItem();
  return writer.finish();
}

export interface ZipRecord {
  readonly name: string;
  readonly data: Uint8Array;
  /** 0 stored, 8 deflate (the data is then compressed here). */
  readonly method?: number;
}

/**
 * A zip archive written from the specification (APPNOTE 4.3): local header + name +
 * data per entry, then central directory headers, then the end record. No zip64, no
 * padding: unlike torch's archives.
 */
export function buildZip(entries: readonly ZipRecord[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = new TextEncoder().encode(entry.name);
    const method = entry.method ?? 0;
    const stored = method === 8 ? deflateRawSync(entry.data) : entry.data;
    const crc = crc32(entry.data);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint16(8, method, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, stored.length, true);
    local.setUint32(22, entry.data.length, true);
    local.setUint16(26, name.length, true);
    parts.push(new Uint8Array(local.buffer), name, stored);
    const header = new DataView(new ArrayBuffer(46));
    header.setUint32(0, 0x02014b50, true);
    header.setUint16(4, 20, true);
    header.setUint16(6, 20, true);
    header.setUint16(10, method, true);
    header.setUint32(16, crc, true);
    header.setUint32(20, stored.length, true);
    header.setUint32(24, entry.data.length, true);
    header.setUint16(28, name.length, true);
    header.setUint32(42, offset, true);
    central.push(new Uint8Array(header.buffer), name);
    offset += 30 + name.length + stored.length;
  }
  const directorySize = central.reduce((sum, part) => sum + part.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, directorySize, true);
  end.setUint32(16, offset, true);
  // A plain Uint8Array: a Buffer's slice() would be a view, not a copy.
  return new Uint8Array(Buffer.concat([...parts, ...central, new Uint8Array(end.buffer)]));
}

/** A torch-style zip checkpoint: <root>/data.pkl and <root>/data/<key> per storage. */
export function checkpointZip(
  pickle: Uint8Array,
  storages: ReadonlyMap<string, Uint8Array>,
  root = "archive/",
): Uint8Array {
  return buildZip([
    { name: `${root}data.pkl`, data: pickle },
    ...[...storages].map(([key, data]) => ({ name: `${root}data/${key}`, data })),
    { name: `${root}version`, data: new TextEncoder().encode("3\n") },
  ]);
}

/** Little-endian float32 bytes of `values`. */
export function float32Bytes(values: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (const [i, value] of values.entries()) view.setFloat32(4 * i, value, true);
  return bytes;
}

/** Little-endian int64 bytes of `values`. */
export function int64Bytes(values: readonly bigint[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  for (const [i, value] of values.entries()) view.setBigInt64(8 * i, value, true);
  return bytes;
}
