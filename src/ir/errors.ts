/**
 * Typed errors. Every error a user can cause derives from SprigError and carries a
 * message that names the place: the file and tensor, the node and rule, or the config
 * field and its allowed range. The CLI prints `message` alone for these; anything else
 * is a bug in sprig and is reported with its stack.
 */
export class SprigError extends Error {
  override readonly name: string = "SprigError";
}

/** A graph violates one of the numbered invariants in verify.ts. */
export class GraphInvariantError extends SprigError {
  override readonly name = "GraphInvariantError";
  constructor(
    readonly rule: number,
    readonly nodeLabel: string,
    detail: string,
  ) {
    super(`rule ${rule}: ${detail} at ${nodeLabel}`);
  }
}

/** An op was given inputs or attributes its shape rule rejects. */
export class ShapeError extends SprigError {
  override readonly name = "ShapeError";
}

/** A model or pass configuration field is missing or out of range. */
export class ConfigError extends SprigError {
  override readonly name = "ConfigError";
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`config field "${field}": ${detail}`);
  }
}

/** A safetensors file is malformed; names the file and, where known, the tensor. */
export class SafetensorsError extends SprigError {
  override readonly name = "SafetensorsError";
  constructor(
    readonly file: string,
    readonly tensor: string | undefined,
    detail: string,
  ) {
    super(`${file}${tensor === undefined ? "" : `: tensor "${tensor}"`}: ${detail}`);
  }
}

/** A weight the graph needs is missing from the weight store or has the wrong shape. */
export class WeightError extends SprigError {
  override readonly name = "WeightError";
}

/** Run-time inputs do not match the compiled graph's input signature. */
export class InputError extends SprigError {
  override readonly name = "InputError";
}

/** A backend cannot lower or run something, or is not available on this machine. */
export class BackendError extends SprigError {
  override readonly name = "BackendError";
}
