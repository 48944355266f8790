import { ShapeError } from "../errors.js";
import type { OpDef } from "./def.js";

function checkShape(what: string, shape: readonly number[]): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError(`${what} has an invalid shape [${shape.join(",")}]`);
  }
}

export const input: OpDef<"input"> = {
  family: "source",
  arity: [0, 0],
  infer: (_inputs, attrs) => {
    checkShape(`input "${attrs.name}"`, attrs.type.shape);
    return [attrs.type];
  },
};

export const weight: OpDef<"weight"> = {
  family: "source",
  arity: [0, 0],
  infer: (_inputs, attrs) => {
    checkShape(`weight "${attrs.name}"`, attrs.type.shape);
    return [attrs.type];
  },
};

export const constant: OpDef<"constant"> = {
  family: "source",
  arity: [0, 0],
  infer: (_inputs, attrs) => {
    const { value } = attrs;
    checkShape(`constant "${attrs.name}"`, value.shape);
    const n = value.shape.reduce((a, b) => a * b, 1);
    if (value.data.length !== n) {
      throw new ShapeError(
        `constant "${attrs.name}" holds ${value.data.length} values for ${n} elements`,
      );
    }
    return [{ dtype: value.dtype, shape: value.shape }];
  },
};
