import type { Command } from "commander";
import { loadBackend } from "../../../backends/registry.js";
import { runCase } from "../../api/conformance.js";
import { listCases, loadCase } from "../../conformance/case.js";
import { SprigError } from "../../ir/errors.js";

export function registerVerify(program: Command): void {
  program
    .command("verify")
    .description(
      "run every conformance case in <dir> (NAME.json + NAME.safetensors) and compare with the expected tensors",
    )
    .argument("<dir>", "directory of conformance cases")
    .option("--backend <name>", "backend to run the cases on", "reference")
    .option("--verbose", "print every tensor comparison")
    .action(async (dir: string, flags: { backend: string; verbose?: boolean }) => {
      const backend = await loadBackend(flags.backend);
      const availability = await backend.availability();
      if (!availability.ok)
        throw new SprigError(
          `backend ${backend.name} is not available here: ${availability.reason}`,
        );
      const sidecars = await listCases(dir);
      if (sidecars.length === 0)
        throw new SprigError(`${dir}: no conformance cases (*.json) found`);
      process.stdout.write(
        `backend ${backend.name} (${availability.detail}), ${sidecars.length} cases in ${dir}\n`,
      );
      let passed = 0;
      let failed = 0;
      let firstFailure = "";
      for (const sidecar of sidecars) {
        let line: string;
        try {
          const testCase = await loadCase(sidecar);
          const result = await runCase(testCase, backend);
          if (result.passed) passed += 1;
          else failed += 1;
          const worst = result.checks.reduce((w, c) => Math.max(w, c.worst), 0);
          const summary = result.error
            ? result.error
            : result.passed
              ? `${result.checks.length} tensors, worst ${(worst * 100).toFixed(1)}% of tolerance`
              : result.checks
                  .filter((c) => !c.passed)
                  .map((c) => `${c.name}: ${c.detail}`)
                  .join("; ");
          line = `${result.passed ? "PASS" : "FAIL"} ${result.name} [${result.kind}] ${summary} (${result.ms.toFixed(0)} ms)`;
          if (flags.verbose) {
            for (const c of result.checks)
              line += `\n    ${c.passed ? "ok  " : "FAIL"} ${c.name}: ${c.detail}`;
            for (const s of result.skipped) line += `\n    skip ${s}`;
          }
        } catch (error) {
          if (!(error instanceof SprigError)) throw error;
          failed += 1;
          line = `FAIL ${sidecar}: ${error.message}`;
        }
        process.stdout.write(`${line}\n`);
        if (failed > 0 && firstFailure === "")
          firstFailure = line
            .split("\n")[0]!
            .replace(/ \(\d+ ms\)$/, "")
            .slice(5, 300);
      }
      process.stdout.write(`${passed} passed, ${failed} failed\n`);
      // One line on stderr too, so a failed verify reads like every other failed command.
      if (failed > 0) {
        throw new SprigError(
          `verify ${dir}: ${failed} of ${sidecars.length} case${sidecars.length === 1 ? "" : "s"} failed (first: ${firstFailure})`,
        );
      }
    });
}
