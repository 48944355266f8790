/**
 * A pickle virtual machine for PyTorch checkpoints that never runs anything from the file.
 *
 * Python's unpickler resolves any `module.name` the stream mentions and calls it, which
 * is how a checkpoint can run `os.system`. This machine instead knows a fixed allow-list
 * of globals, each with a fixed meaning written here:
 *
 *   called by REDUCE       collections.OrderedDict with ()        -> an empty PickleDict
 *                          collections.defaultdict with (dict,)   -> an empty PickleDict
 *                          torch._utils._rebuild_tensor_v2(...)   -> a TensorRecipe
 *   built by NEWOBJ ()     omegaconf DictConfig, ListConfig, AnyNode, ContainerMetadata,
 *   then BUILD(state)      Metadata                               -> an inert PickleObject
 *   values only            torch.{Float,Half,BFloat16,Long,Int,Double}Storage (inside
 *                          persistent ids), typing.Any, builtins dict/list/int (protocol 2
 *                          spells them __builtin__ dict/list/long)
 *
 * Any other global is refused by GLOBAL / STACK_GLOBAL themselves, before the stream
 * goes on: no value standing for it ever exists, so nothing can call or build it. The
 * values produced are plain data (classes with fields and no behaviour).
 *
 * Persistent ids (BINPERSID) are torch's storage references
 * `('storage', StorageType, key, location, numel[, view_metadata = None])` and become
 * StorageRef values; reading storage bytes is the checkpoint reader's business.
 *
 * Only the opcodes torch checkpoints use are implemented (protocols 2 to 4, including the
 * protocol 4 framing and STACK_GLOBAL/MEMOIZE); an unknown one is an error naming it and
 * its byte offset. The machine is bounded: every operand length is checked against the
 * bytes left before anything is allocated, popping below a MARK or from an empty stack,
 * a missing memo entry, a MARK left open or extra values at STOP are errors, and since a
 * pickle has no jumps the run time is linear in its length.
 */
import { ForbiddenGlobalError, PickleError, PickleTruncatedError } from "./checkpoint-error.js";

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

/** Python values usable as dict keys here (tuples and objects as keys are refused). */
export type DictKey = string | number | bigint | boolean | null;

/**
 * A value of the pickled object tree. `T` is what tensors are: TensorRecipe straight out
 * of the machine, a materialised tensor after the checkpoint reader has read storages.
 * Python ints are numbers when they are safe integers and bigints otherwise; floats are
 * numbers; lists are arrays; bytes are Uint8Arrays.
 */
export type PickleValue<T = TensorRecipe> =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue<T>[]
  | PickleTuple<T>
  | PickleDict<T>
  | PickleObject<T>
  | PickleGlobal
  | StorageRef
  | T;

export class PickleTuple<T = TensorRecipe> {
  readonly kind = "tuple";
  constructor(readonly items: readonly PickleValue<T>[]) {}
}

/** A dict, OrderedDict or defaultdict; insertion order is kept. */
export class PickleDict<T = TensorRecipe> {
  readonly kind = "dict";
  /** Instance attributes set by BUILD (a state_dict's `_metadata`), if any. */
  attributes: Map<DictKey, PickleValue<T>> | undefined = undefined;
  constructor(
    readonly pythonType: "dict" | "OrderedDict" | "defaultdict",
    readonly items: Map<DictKey, PickleValue<T>> = new Map(),
  ) {}
}

/** An inert stand-in for an omegaconf object: its class name and the state BUILD gave it. */
export class PickleObject<T = TensorRecipe> {
  readonly kind = "object";
  state: PickleValue<T> | undefined = undefined;
  constructor(readonly className: OmegaconfClassName) {}
}

/** A reference to an allow-listed global, as a value (never a callable). */
export class PickleGlobal {
  readonly kind = "global";
  constructor(
    /** Canonical `module.name`, e.g. `builtins.int` for protocol 2's `__builtin__ long`. */
    readonly qualifiedName: string,
    readonly role: GlobalRole,
  ) {}
}

/** Element types of torch storages, in sprig's short spelling. */
export type StorageDType = "f32" | "f16" | "bf16" | "f64" | "i64" | "i32";

export const STORAGE_ELEMENT_BYTES: Readonly<Record<StorageDType, number>> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  f64: 8,
  i64: 8,
  i32: 4,
};

/** A persistent id `('storage', type, key, location, numel)`: a storage named by key. */
export class StorageRef {
  readonly kind = "storage";
  constructor(
    readonly dtype: StorageDType,
    readonly key: string,
    readonly location: string,
    /** Elements in the whole storage (not in any one tensor viewing it). */
    readonly numel: number,
  ) {}
}

/**
 * `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks)`:
 * element (i, j, ...) of the tensor is storage[storageOffset + i·stride[0] + j·stride[1] ...].
 */
export class TensorRecipe {
  readonly kind = "tensor-recipe";
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly requiresGrad: boolean,
  ) {}
}

// ---------------------------------------------------------------------------------------
// The allow-list
// ---------------------------------------------------------------------------------------

export type OmegaconfClassName =
  | "omegaconf.dictconfig.DictConfig"
  | "omegaconf.listconfig.ListConfig"
  | "omegaconf.nodes.AnyNode"
  | "omegaconf.base.ContainerMetadata"
  | "omegaconf.base.Metadata";

/** What the machine does with an allowed global. */
export type GlobalRole =
  | { readonly kind: "ordered-dict" }
  | { readonly kind: "default-dict" }
  | { readonly kind: "rebuild-tensor" }
  | { readonly kind: "storage-type"; readonly dtype: StorageDType }
  | { readonly kind: "omegaconf-class"; readonly className: OmegaconfClassName }
  | { readonly kind: "value" };

const VALUE: GlobalRole = { kind: "value" };

/** [module, name] as the pickle spells them, the canonical name, and the role. */
const ALLOWED_GLOBALS: readonly (readonly [string, string, string, GlobalRole])[] = [
  ["collections", "OrderedDict", "collections.OrderedDict", { kind: "ordered-dict" }],
  ["collections", "defaultdict", "collections.defaultdict", { kind: "default-dict" }],
  [
    "torch._utils",
    "_rebuild_tensor_v2",
    "torch._utils._rebuild_tensor_v2",
    { kind: "rebuild-tensor" },
  ],
  ...(
    [
      ["FloatStorage", "f32"],
      ["HalfStorage", "f16"],
      ["BFloat16Storage", "bf16"],
      ["DoubleStorage", "f64"],
      ["LongStorage", "i64"],
      ["IntStorage", "i32"],
    ] as const
  ).map(
    ([name, dtype]) => ["torch", name, `torch.${name}`, { kind: "storage-type", dtype }] as const,
  ),
  ["typing", "Any", "typing.Any", VALUE],
  ["builtins", "dict", "builtins.dict", VALUE],
  ["__builtin__", "dict", "builtins.dict", VALUE],
  ["builtins", "list", "builtins.list", VALUE],
  ["__builtin__", "list", "builtins.list", VALUE],
  ["builtins", "int", "builtins.int", VALUE],
  ["__builtin__", "long", "builtins.int", VALUE],
  ["__builtin__", "int", "builtins.int", VALUE],
  ...(
    [
      "omegaconf.dictconfig.DictConfig",
      "omegaconf.listconfig.ListConfig",
      "omegaconf.nodes.AnyNode",
      "omegaconf.base.ContainerMetadata",
      "omegaconf.base.Metadata",
    ] as const
  ).map((className) => {
    const dot = className.lastIndexOf(".");
    return [
      className.slice(0, dot),
      className.slice(dot + 1),
      className,
      { kind: "omegaconf-class", className },
    ] as const;
  }),
];

/**
 * Keyed by JSON.stringify([module, name]), which no two different pairs share (joining
 * with "." would not: module "torch", name "_utils._rebuild_tensor_v2"). The values are
 * shared by every load, so they are frozen.
 */
const ALLOW_LIST: ReadonlyMap<string, PickleGlobal> = new Map(
  ALLOWED_GLOBALS.map(([module, name, qualified, role]) => [
    JSON.stringify([module, name]),
    Object.freeze(new PickleGlobal(qualified, Object.freeze(role))),
  ]),
);

/** The allowed globals, as `module.name` the way pickles spell them (for docs and tests). */
export const ALLOWED_GLOBAL_NAMES: readonly string[] = ALLOWED_GLOBALS.map(
  ([module, name]) => `${module}.${name}`,
);

// ---------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------

export interface PickleOptions {
  /** Names the file in errors. */
  readonly file: string;
  /** Names the pickle inside the file in errors, e.g. `record "k1/data.pkl"`. */
  readonly place?: string;
  /** Byte offset in `data` where the pickle starts (several may sit back to back). */
  readonly start?: number;
  /** Called before each opcode runs, with its name and offset (for debugging and tests). */
  readonly trace?: (opcode: string, offset: number) => void;
}

export interface PickleResult {
  readonly value: PickleValue;
  /** Offset just past the STOP opcode. */
  readonly end: number;
}

/** Runs one pickle from `data` (at `options.start`) to its STOP. */
export function loadPickle(data: Uint8Array, options: PickleOptions): PickleResult {
  const machine = new Machine(data, options);
  const value = machine.run();
  return { value, end: machine.position };
}

type StackItem = PickleValue;

interface Opcode {
  readonly name: string;
  /** Runs the opcode; returns true for STOP. */
  readonly run: (machine: Machine) => boolean | undefined;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

class Machine {
  position: number;
  private readonly stack: StackItem[] = [];
  /** Stack heights at each open MARK; nothing below the innermost may be popped. */
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, StackItem>();
  private opcodeOffset = 0;
  private opcodeName = "";

  constructor(
    private readonly data: Uint8Array,
    private readonly options: PickleOptions,
  ) {
    this.position = options.start ?? 0;
  }

  run(): PickleValue {
    for (;;) {
      this.opcodeOffset = this.position;
      this.opcodeName = "(end of data)";
      const code = this.readU8();
      const opcode = OPCODES.get(code);
      this.opcodeName = opcode?.name ?? hexByte(code);
      if (opcode === undefined) this.fail("unknown or unsupported opcode");
      this.options.trace?.(opcode.name, this.relative(this.opcodeOffset));
      if (opcode.run(this) === true) return this.finish();
    }
  }

  private finish(): PickleValue {
    if (this.marks.length > 0) this.fail(`${this.marks.length} MARK(s) still open at STOP`);
    if (this.stack.length !== 1) {
      this.fail(`stack holds ${this.stack.length} values at STOP, not 1`);
    }
    return this.stack[0]!;
  }

  // --- errors --------------------------------------------------------------------------

  fail(detail: string): never {
    const { file, place } = this.options;
    throw new PickleError(file, place, this.relative(this.opcodeOffset), this.opcodeName, detail);
  }

  forbidden(module: string, name: string): never {
    const { file, place } = this.options;
    const offset = this.relative(this.opcodeOffset);
    throw new ForbiddenGlobalError(file, place, offset, this.opcodeName, `${module}.${name}`);
  }

  private relative(offset: number): number {
    return offset - (this.options.start ?? 0);
  }

  // --- operands ------------------------------------------------------------------------

  /** Checks that `length` more bytes follow; a length past the end is a truncated pickle. */
  requireBytes(length: number): void {
    const left = this.data.byteLength - this.position;
    if (length > left) {
      const { file, place } = this.options;
      const offset = this.relative(this.opcodeOffset);
      const detail = `needs ${length} more bytes but the data ends after ${left}`;
      throw new PickleTruncatedError(file, place, offset, this.opcodeName, detail);
    }
  }

  readU8(): number {
    this.requireBytes(1);
    return this.data[this.position++]!;
  }

  readBytes(length: number): Uint8Array {
    this.requireBytes(length);
    const bytes = this.data.subarray(this.position, this.position + length);
    this.position += length;
    return bytes;
  }

  readView(length: number): DataView {
    const bytes = this.readBytes(length);
    return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  readString(length: number): string {
    const bytes = this.readBytes(length);
    try {
      return UTF8.decode(bytes);
    } catch {
      return this.fail("string is not valid UTF-8");
    }
  }

  /** A newline-terminated text operand (GLOBAL's module and name). */
  readLine(): string {
    const end = this.data.indexOf(0x0a, this.position);
    // No newline: the operand runs past the end (at least one byte more is needed).
    const length = end < 0 ? this.data.byteLength - this.position + 1 : end - this.position;
    const text = this.readString(length);
    this.position++;
    return text;
  }

  // --- stack ---------------------------------------------------------------------------

  push(value: StackItem): void {
    this.stack.push(value);
  }

  pop(): StackItem {
    if (this.stack.length <= (this.marks.at(-1) ?? 0)) {
      this.fail(this.marks.length > 0 ? "pops past a MARK" : "pops an empty stack");
    }
    return this.stack.pop()!;
  }

  peek(): StackItem {
    const value = this.pop();
    this.stack.push(value);
    return value;
  }

  mark(): void {
    this.marks.push(this.stack.length);
  }

  /** Pops everything above the innermost MARK, and the MARK. */
  popToMark(): StackItem[] {
    const height = this.marks.pop();
    if (height === undefined) this.fail("no MARK to pop to");
    return this.stack.splice(height);
  }

  // --- memo ----------------------------------------------------------------------------

  memoPut(index: number): void {
    this.memo.set(index, this.peek());
  }

  memoize(): void {
    this.memoPut(this.memo.size);
  }

  memoGet(index: number): void {
    const value = this.memo.get(index);
    if (value === undefined) this.fail(`memo entry ${index} was never stored`);
    this.push(value);
  }

  // --- globals -------------------------------------------------------------------------

  pushGlobal(module: string, name: string): void {
    const allowed = ALLOW_LIST.get(JSON.stringify([module, name]));
    if (allowed === undefined) this.forbidden(module, name);
    this.push(allowed);
  }
}

// ---------------------------------------------------------------------------------------
// Opcodes
// ---------------------------------------------------------------------------------------

const MAX_PROTOCOL = 5;

function asString(machine: Machine, value: StackItem, what: string): string {
  if (typeof value !== "string") machine.fail(`${what} must be a string, got ${describe(value)}`);
  return value;
}

function asTuple(machine: Machine, value: StackItem, what: string): PickleTuple {
  if (!(value instanceof PickleTuple)) {
    machine.fail(`${what} must be a tuple, got ${describe(value)}`);
  }
  return value;
}

function asDict(machine: Machine, value: StackItem, what: string): PickleDict {
  if (!(value instanceof PickleDict)) {
    machine.fail(`${what} must be a dict, got ${describe(value)}`);
  }
  return value;
}

function asList(machine: Machine, value: StackItem, what: string): PickleValue[] {
  if (!Array.isArray(value)) machine.fail(`${what} must be a list, got ${describe(value)}`);
  return value;
}

function asDictKey(machine: Machine, value: StackItem): DictKey {
  const type = typeof value;
  if (
    value === null ||
    type === "string" ||
    type === "number" ||
    type === "bigint" ||
    type === "boolean"
  ) {
    return value as DictKey;
  }
  return machine.fail(`dict key must be a string, number, bool or None, got ${describe(value)}`);
}

/** Python ints: Numbers when exact, bigints beyond 2^53. */
function fromBigInt(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}

/** LONG1's operand: a little-endian two's complement integer of `bytes.length` bytes. */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  if ((bytes[bytes.length - 1]! & 0x80) !== 0) value -= 1n << BigInt(8 * bytes.length);
  return fromBigInt(value);
}

function setItems(machine: Machine, dict: PickleDict, flat: readonly StackItem[]): void {
  if (flat.length % 2 !== 0) machine.fail("odd number of items for key/value pairs");
  for (let i = 0; i < flat.length; i += 2) {
    dict.items.set(asDictKey(machine, flat[i]!), flat[i + 1]!);
  }
}

function reduce(machine: Machine): void {
  const args = machine.pop();
  const callable = machine.pop();
  if (!(callable instanceof PickleGlobal)) {
    machine.fail(`can only call an allowed global, got ${describe(callable)}`);
  }
  const tuple = asTuple(machine, args, `arguments of ${callable.qualifiedName}`);
  const role = callable.role;
  switch (role.kind) {
    case "ordered-dict":
      if (tuple.items.length !== 0) machine.fail("collections.OrderedDict takes no arguments here");
      machine.push(new PickleDict("OrderedDict"));
      return;
    case "default-dict": {
      const [factory, ...rest] = tuple.items;
      const isDict = factory instanceof PickleGlobal && factory.qualifiedName === "builtins.dict";
      if (!isDict || rest.length > 0) {
        machine.fail("collections.defaultdict takes only (dict,) here");
      }
      machine.push(new PickleDict("defaultdict"));
      return;
    }
    case "rebuild-tensor":
      machine.push(rebuildTensor(machine, tuple.items));
      return;
    case "storage-type":
    case "omegaconf-class":
    case "value":
      machine.fail(`global ${callable.qualifiedName} may appear as a value but not be called`);
      return;
    default:
      role satisfies never;
  }
}

function asIndexTuple(machine: Machine, value: StackItem | undefined, what: string): number[] {
  const tuple = asTuple(machine, value ?? null, what);
  return tuple.items.map((item) => asIndex(machine, item, what));
}

function asIndex(machine: Machine, value: StackItem | undefined, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    return machine.fail(`${what} must hold non-negative integers, got ${describe(value ?? null)}`);
  }
  return value;
}

/** `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata])`. */
function rebuildTensor(machine: Machine, args: readonly StackItem[]): TensorRecipe {
  const what = "torch._utils._rebuild_tensor_v2";
  if (args.length !== 6 && args.length !== 7) {
    machine.fail(`${what} takes 6 or 7 arguments, got ${args.length}`);
  }
  const [storage, offset, size, stride, requiresGrad, hooks] = args;
  if (!(storage instanceof StorageRef)) {
    machine.fail(
      `${what}: storage must be a persistent storage id, got ${describe(storage ?? null)}`,
    );
  }
  const shape = asIndexTuple(machine, size, `${what}: size`);
  const strides = asIndexTuple(machine, stride, `${what}: stride`);
  if (shape.length !== strides.length) {
    machine.fail(`${what}: size has ${shape.length} dimensions but stride ${strides.length}`);
  }
  if (typeof requiresGrad !== "boolean") machine.fail(`${what}: requires_grad must be a bool`);
  if (!(hooks instanceof PickleDict)) machine.fail(`${what}: backward_hooks must be a dict`);
  return new TensorRecipe(
    storage,
    asIndex(machine, offset, `${what}: storage_offset`),
    shape,
    strides,
    requiresGrad,
  );
}

/** BINPERSID: `('storage', StorageType, key, location, numel[, None])` -> StorageRef. */
function persistentLoad(machine: Machine): void {
  const pid = asTuple(machine, machine.pop(), "persistent id");
  const [tag, type, key, location, numel, ...rest] = pid.items;
  if (tag !== "storage") {
    machine.fail(`persistent id must start with 'storage', got ${describe(tag ?? null)}`);
  }
  if (!(type instanceof PickleGlobal) || type.role.kind !== "storage-type") {
    machine.fail(
      `persistent id: storage type must be a torch storage class, got ${describe(type ?? null)}`,
    );
  }
  if (rest.length > 1 || (rest.length === 1 && rest[0] !== null)) {
    machine.fail("persistent id: storage views (legacy view metadata) are not supported");
  }
  machine.push(
    new StorageRef(
      type.role.dtype,
      asString(machine, key ?? null, "persistent id: storage key"),
      asString(machine, location ?? null, "persistent id: location"),
      asIndex(machine, numel, "persistent id: numel"),
    ),
  );
}

function newObject(machine: Machine): void {
  const args = asTuple(machine, machine.pop(), "NEWOBJ arguments");
  const cls = machine.pop();
  if (!(cls instanceof PickleGlobal) || cls.role.kind !== "omegaconf-class") {
    machine.fail(`can only build allowed omegaconf classes, got ${describe(cls)}`);
  }
  if (args.items.length !== 0) machine.fail(`${cls.qualifiedName} takes no arguments here`);
  machine.push(new PickleObject(cls.role.className));
}

function build(machine: Machine): void {
  const state = machine.pop();
  const target = machine.peek();
  if (target instanceof PickleObject) {
    if (target.state !== undefined) machine.fail(`${target.className} is built twice`);
    target.state = state;
    return;
  }
  if (target instanceof PickleDict && target.pythonType === "OrderedDict") {
    // OrderedDict.__reduce__ pickles instance attributes (state_dict()'s _metadata) this way.
    target.attributes = asDict(machine, state, "OrderedDict attributes").items;
    return;
  }
  machine.fail(`cannot set state on ${describe(target)}`);
}

const OPCODE_LIST: readonly (readonly [
  number,
  string,
  (machine: Machine) => boolean | undefined,
])[] = [
  [
    0x80,
    "PROTO",
    (m) => {
      const protocol = m.readU8();
      if (protocol < 2 || protocol > MAX_PROTOCOL) {
        m.fail(`protocol ${protocol} is not supported (2 to ${MAX_PROTOCOL})`);
      }
      return undefined;
    },
  ],
  [
    0x95,
    "FRAME",
    (m) => {
      // Frames only group opcodes for buffered reading; the data is already in memory, so
      // the length is checked and the opcodes inside run as usual.
      const length = m.readView(8).getBigUint64(0, true);
      m.requireBytes(
        length > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(length),
      );
      return undefined;
    },
  ],
  [0x2e, "STOP", () => true],
  [0x28, "MARK", (m) => void m.mark()],
  [0x7d, "EMPTY_DICT", (m) => void m.push(new PickleDict("dict"))],
  [0x5d, "EMPTY_LIST", (m) => void m.push([])],
  [0x29, "EMPTY_TUPLE", (m) => void m.push(new PickleTuple([]))],
  [0x74, "TUPLE", (m) => void m.push(new PickleTuple(m.popToMark()))],
  [0x85, "TUPLE1", (m) => void m.push(new PickleTuple([m.pop()]))],
  [
    0x86,
    "TUPLE2",
    (m) => {
      const second = m.pop();
      m.push(new PickleTuple([m.pop(), second]));
      return undefined;
    },
  ],
  [
    0x87,
    "TUPLE3",
    (m) => {
      const third = m.pop();
      const second = m.pop();
      m.push(new PickleTuple([m.pop(), second, third]));
      return undefined;
    },
  ],
  [
    0x61,
    "APPEND",
    (m) => {
      const value = m.pop();
      asList(m, m.peek(), "APPEND target").push(value);
      return undefined;
    },
  ],
  [
    0x65,
    "APPENDS",
    (m) => {
      const values = m.popToMark();
      const list = asList(m, m.peek(), "APPENDS target");
      // A loop, not push(...values): spreading a long list into arguments overflows.
      for (const value of values) list.push(value);
      return undefined;
    },
  ],
  [
    0x73,
    "SETITEM",
    (m) => {
      const value = m.pop();
      const key = m.pop();
      setItems(m, asDict(m, m.peek(), "SETITEM target"), [key, value]);
      return undefined;
    },
  ],
  [
    0x75,
    "SETITEMS",
    (m) => {
      const flat = m.popToMark();
      setItems(m, asDict(m, m.peek(), "SETITEMS target"), flat);
      return undefined;
    },
  ],
  [0x4e, "NONE", (m) => void m.push(null)],
  [0x88, "NEWTRUE", (m) => void m.push(true)],
  [0x89, "NEWFALSE", (m) => void m.push(false)],
  [0x4b, "BININT1", (m) => void m.push(m.readU8())],
  [0x4d, "BININT2", (m) => void m.push(m.readView(2).getUint16(0, true))],
  [0x4a, "BININT", (m) => void m.push(m.readView(4).getInt32(0, true))],
  [0x8a, "LONG1", (m) => void m.push(decodeLong(m.readBytes(m.readU8())))],
  [0x47, "BINFLOAT", (m) => void m.push(m.readView(8).getFloat64(0, false))],
  [0x8c, "SHORT_BINUNICODE", (m) => void m.push(m.readString(m.readU8()))],
  [0x58, "BINUNICODE", (m) => void m.push(m.readString(m.readView(4).getUint32(0, true)))],
  [0x43, "SHORT_BINBYTES", (m) => void m.push(new Uint8Array(m.readBytes(m.readU8())))],
  [
    0x42,
    "BINBYTES",
    (m) => void m.push(new Uint8Array(m.readBytes(m.readView(4).getUint32(0, true)))),
  ],
  [0x71, "BINPUT", (m) => void m.memoPut(m.readU8())],
  [0x72, "LONG_BINPUT", (m) => void m.memoPut(m.readView(4).getUint32(0, true))],
  [0x94, "MEMOIZE", (m) => void m.memoize()],
  [0x68, "BINGET", (m) => void m.memoGet(m.readU8())],
  [0x6a, "LONG_BINGET", (m) => void m.memoGet(m.readView(4).getUint32(0, true))],
  [
    0x63,
    "GLOBAL",
    (m) => {
      const module = m.readLine();
      m.pushGlobal(module, m.readLine());
      return undefined;
    },
  ],
  [
    0x93,
    "STACK_GLOBAL",
    (m) => {
      const name = asString(m, m.pop(), "STACK_GLOBAL name");
      m.pushGlobal(asString(m, m.pop(), "STACK_GLOBAL module"), name);
      return undefined;
    },
  ],
  [0x52, "REDUCE", (m) => void reduce(m)],
  [0x81, "NEWOBJ", (m) => void newObject(m)],
  [0x62, "BUILD", (m) => void build(m)],
  [0x51, "BINPERSID", (m) => void persistentLoad(m)],
];

const OPCODES: ReadonlyMap<number, Opcode> = new Map(
  OPCODE_LIST.map(([code, name, run]) => [code, { name, run }]),
);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

function hexByte(code: number): string {
  const printable = code >= 0x20 && code < 0x7f ? ` '${String.fromCharCode(code)}'` : "";
  return `0x${code.toString(16).padStart(2, "0")}${printable}`;
}

/** A short description of a value for error messages. */
export function describe(value: PickleValue<unknown>): string {
  if (value === null) return "None";
  if (Array.isArray(value)) return "a list";
  if (value instanceof Uint8Array) return "bytes";
  if (value instanceof PickleGlobal) return `global ${value.qualifiedName}`;
  if (value instanceof PickleObject) return `a ${value.className}`;
  if (value instanceof PickleDict) return `a ${value.pythonType}`;
  if (value instanceof PickleTuple) return `a ${value.items.length}-tuple`;
  if (value instanceof StorageRef) return "a storage";
  if (value instanceof TensorRecipe) return "a tensor";
  switch (typeof value) {
    case "string":
      return "a string";
    case "boolean":
      return "a bool";
    case "number":
    case "bigint":
      return "a number";
    default:
      return "a tensor";
  }
}
