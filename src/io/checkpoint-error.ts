/**
 * Errors of the PyTorch checkpoint reader (zip container, pickle machine, tensors).
 *
 * Every message is one line that starts with the file and, where one part of it is at
 * fault, that part: a zip record (`record "k1/data/12"`), a pickle (`record "k1/data.pkl"`,
 * `pickle 4 of 5`) or a state_dict entry (`tensor "text_proj.weight"`).
 */
import { SprigError } from "../ir/errors.js";

/** A checkpoint file is malformed, unsupported or unsafe. */
export class CheckpointError extends SprigError {
  override readonly name: string = "CheckpointError";
  constructor(
    readonly file: string,
    /** The part of the file at fault, already quoted (`record "a/data.pkl"`), if known. */
    readonly place: string | undefined,
    detail: string,
  ) {
    super(`${file}${place === undefined ? "" : `: ${place}`}: ${detail}`);
  }
}

/** A pickle stream is malformed or uses something the machine does not implement. */
export class PickleError extends CheckpointError {
  override readonly name: string = "PickleError";
  constructor(
    file: string,
    place: string | undefined,
    /** Byte offset of the opcode at fault, counted from the start of the pickle. */
    readonly offset: number,
    /** Name of that opcode, or its hex code when it is unknown. */
    readonly opcode: string,
    detail: string,
  ) {
    super(file, place, `pickle opcode ${opcode} at byte ${offset}: ${detail}`);
  }
}

/** The pickle ends before an opcode's operands do (or before STOP). */
export class PickleTruncatedError extends PickleError {
  override readonly name = "PickleTruncatedError";
}

/**
 * The pickle names a global outside the allow-list. Raised when the global is looked up
 * (GLOBAL / STACK_GLOBAL), so nothing it names is ever bound, called or built.
 */
export class ForbiddenGlobalError extends PickleError {
  override readonly name = "ForbiddenGlobalError";
  constructor(
    file: string,
    place: string | undefined,
    offset: number,
    opcode: string,
    /** `module.name` as the pickle spells it, e.g. `posix.system`. */
    readonly globalName: string,
  ) {
    super(
      file,
      place,
      offset,
      opcode,
      `global ${globalName} is not allowed: a checkpoint may only name tensor rebuilding, ` +
        `storage types, OrderedDict/defaultdict, typing.Any, builtins dict/list/int and ` +
        `omegaconf config classes; refusing the file rather than running code from it`,
    );
  }
}
