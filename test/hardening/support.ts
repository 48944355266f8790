/**
 * What the hardening suites share: the CLI bundled once per suite (esbuild, packages
 * external, like test/cli/cli.test.ts), files laid out for an entry, and a directory's
 * whole tree to compare before and after a command.
 */
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readdir, truncate, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { build } from "esbuild";
import { ROOT } from "../support/cli.js";
import type { FileSpec } from "./corpus.js";

/**
 * Bundles `entries` (repository-relative .ts paths) into a fresh directory under
 * test/hardening/.tmp (inside the repository, so that packages resolve from node_modules;
 * .tmp is git- and biome-ignored), each as its given output name. Returns the directory.
 */
export async function bundle(entries: Readonly<Record<string, string>>): Promise<string> {
  await mkdir(join(ROOT, "test/hardening/.tmp"), { recursive: true });
  const dir = await mkdtemp(join(ROOT, "test/hardening/.tmp/bundle-"));
  for (const [out, entry] of Object.entries(entries)) {
    await build({
      entryPoints: [join(ROOT, entry)],
      outfile: join(dir, out),
      bundle: true,
      packages: "external",
      platform: "node",
      format: "esm",
      target: "node20",
      logLevel: "silent",
    });
  }
  return dir;
}

/** Creates `files` (relative paths, parents first) in `dir`. */
export async function createFiles(
  dir: string,
  files: Readonly<Record<string, FileSpec>>,
): Promise<void> {
  for (const [name, spec] of Object.entries(files)) {
    const path = join(dir, name);
    await mkdir(dirname(path), { recursive: true });
    switch (spec.kind) {
      case "text":
        await writeFile(path, spec.text);
        break;
      case "bytes":
        await writeFile(path, spec.bytes);
        break;
      case "copy":
        await copyFile(spec.from, path);
        break;
      case "fifo":
        execFileSync("mkfifo", [path]);
        break;
      case "dir":
        await mkdir(path, { recursive: true });
        break;
      case "sparse":
        await writeFile(path, "");
        await truncate(path, spec.size);
        break;
      default:
        spec satisfies never;
    }
  }
}

/** Every path under `dir`, hidden ones included, relative and sorted. */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string) => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      out.push(relative(dir, path));
      if (entry.isDirectory()) await walk(path);
    }
  };
  await walk(dir);
  return out.sort();
}

/** stderr lines, without npm's own warnings. */
export function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.trim() !== "" && !line.startsWith("npm warn"));
}
