import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";

/** Running the CLI as a child process, for tests of commands end to end. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const SHARED = fileURLToPath(new URL("../../../shared/", import.meta.url));

export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** At most two CLI processes at a time: the machine has two cores. */
let running = 0;
const waiting: (() => void)[] = [];
export async function slot<T>(body: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((resolve) => waiting.push(resolve));
  running += 1;
  try {
    return await body();
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

/** Runs `node <argv>` from the repository root with SPRIG_DEBUG unset. */
export function spawnNode(argv: readonly string[], cwd = ROOT): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.SPRIG_DEBUG;
    const child = spawn(process.execPath, argv, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** `sprig ARGS` through the documented launcher (node --import tsx src/cli/main.ts). */
export function sprigTsx(args: readonly string[]): Promise<Run> {
  return slot(() => spawnNode(["--import", "tsx", `${ROOT}src/cli/main.ts`, ...args]));
}

export function lines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "");
}

/** A user error: exit 1, one "sprig: ..." line on stderr naming every mention, no stack trace. */
export function expectUserError(run: Run, ...mentions: string[]): string {
  expect(run.code, run.stderr).toBe(1);
  expect(run.stderr).not.toContain("    at ");
  const err = lines(run.stderr).filter((l) => !l.startsWith("npm warn"));
  expect(err, run.stderr).toHaveLength(1);
  expect(err[0]).toMatch(/^sprig: /);
  for (const m of mentions) expect(err[0]).toContain(m);
  return err[0]!;
}
