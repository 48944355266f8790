import type { HostTensor } from "../ir/tensor.js";
import { formatShape, sameShape } from "../ir/tensor.js";
import type { Tolerance } from "./case.js";

/**
 * Outcome of comparing one tensor. Float tensors pass when every element satisfies
 * |got - want| <= atol + rtol * |want| (the conformance README's rule); integer tensors
 * must match exactly. `worst` is the largest |got - want| / (atol + rtol |want|): below 1
 * passes, and how far below says how much margin there is.
 *
 * Non-finite values are compared before the rule, because the rule cannot judge them: a
 * want of -Inf makes the allowed error infinite, and Inf / Inf is NaN, which compares
 * false with every bound, so a plain ratio test would pass any value there. An element
 * where either side is NaN or ±Infinity matches only when both sides hold the same
 * non-finite value (NaN and NaN, +Inf and +Inf, -Inf and -Inf); otherwise it is a
 * mismatch with an infinite ratio.
 */
export interface TensorCheck {
  readonly name: string;
  readonly passed: boolean;
  readonly maxAbsError: number;
  readonly worst: number;
  readonly detail: string;
}

/** Whether two elements, at least one of them non-finite, hold the same non-finite value. */
function sameNonFinite(got: number, want: number): boolean {
  return Number.isNaN(got) ? Number.isNaN(want) : got === want;
}

export function compareTensors(
  name: string,
  got: HostTensor,
  want: HostTensor,
  tolerance: Tolerance | "exact",
): TensorCheck {
  if (!sameShape(got.shape, want.shape)) {
    return {
      name,
      passed: false,
      maxAbsError: Number.POSITIVE_INFINITY,
      worst: Number.POSITIVE_INFINITY,
      detail: `shape ${formatShape(got.shape)}, expected ${formatShape(want.shape)}`,
    };
  }
  let maxAbsError = 0;
  let worst = 0;
  let worstAt = -1;
  let mismatches = 0;
  let nonFinite = 0;
  for (let i = 0; i < want.data.length; i++) {
    const g = got.data[i]!;
    const w = want.data[i]!;
    if (!Number.isFinite(g) || !Number.isFinite(w)) {
      if (sameNonFinite(g, w)) continue;
      nonFinite += 1;
      mismatches += 1;
      maxAbsError = Number.POSITIVE_INFINITY;
      if (worst !== Number.POSITIVE_INFINITY) {
        worst = Number.POSITIVE_INFINITY;
        worstAt = i;
      }
      continue;
    }
    const err = Math.abs(g - w);
    maxAbsError = Math.max(maxAbsError, err);
    const allowed = tolerance === "exact" ? 0 : tolerance.atol + tolerance.rtol * Math.abs(w);
    const ratio = allowed === 0 ? (err === 0 ? 0 : Number.POSITIVE_INFINITY) : err / allowed;
    if (ratio > 1) mismatches += 1;
    if (ratio > worst) {
      worst = ratio;
      worstAt = i;
    }
  }
  const passed = mismatches === 0;
  const nonFiniteNote = nonFinite > 0 ? ` (${nonFinite} with NaN or Infinity on one side)` : "";
  const detail = passed
    ? tolerance === "exact"
      ? "exact"
      : `max |err| ${maxAbsError.toExponential(2)}, ${(worst * 100).toFixed(1)}% of tolerance`
    : `${mismatches} of ${want.data.length} elements off${nonFiniteNote}; worst at flat index ${worstAt}: got ${got.data[worstAt]}, want ${want.data[worstAt]}`;
  return { name, passed, maxAbsError, worst, detail };
}
