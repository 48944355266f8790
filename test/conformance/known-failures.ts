/**
 * Tests of the cross-backend suites that fail today because of a backend bug, each with the
 * bug. Such a test runs as `it.fails`: it must still fail, so once the bug is fixed vitest
 * reports it and its entry here has to go. Nothing else may be listed here (never a
 * tolerance problem: those are fixed in the backend or argued in the tolerance).
 */

/** The variant name of the browser suite's gpujs (gpu.js's WebGL2 engine in Chromium). */
export const BROWSER_GPUJS = "gpujs (WebGL2 in Chromium)";

/** variant name -> test name (conformance case or parity graph) -> the bug. None today. */
const KNOWN: ReadonlyMap<string, ReadonlyMap<string, string>> = new Map();

/** The bug that makes `test` fail on `variant` today, or undefined. */
export function knownFailure(variant: string, test: string): string | undefined {
  return KNOWN.get(variant)?.get(test);
}
