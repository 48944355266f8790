import { parseSafetensors } from "../io/safetensors.js";
import { CaseError, type ConformanceCase, parseSidecar } from "./case.js";

/**
 * A conformance case from contents already in memory: the sidecar's JSON text and the
 * safetensors bytes (e.g. fetched over HTTP in a browser, where loadCase's file reads are
 * not available). Validates exactly like loadCase: every tensor the sidecar lists must be
 * in the file.
 */
export function caseFromBytes(
  name: string,
  sidecarText: string,
  tensorBytes: Uint8Array,
): ConformanceCase {
  const sidecarLabel = `${name}.json`;
  const tensorLabel = `${name}.safetensors`;
  const sidecar = parseSidecar(sidecarLabel, sidecarText);
  const file = parseSafetensors(tensorBytes, tensorLabel);
  for (const tensorName of sidecar.specs.keys()) {
    if (!file.tensors.has(tensorName)) {
      throw new CaseError(
        `${tensorLabel}: tensor "${tensorName}" listed in the sidecar is missing`,
      );
    }
  }
  return { name, file: tensorLabel, tensors: file.tensors, ...sidecar };
}
