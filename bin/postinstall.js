// npm's postinstall for sprig: builds sprig's C kernels (backends/native/build.ts) on the
// machine it is installed on (-march=native: nothing machine-specific ships). In a checkout
// the TypeScript source runs through tsx (a devDependency); an installed package has no
// sources and runs the compiled build script from dist/ with plain node. The kernels are
// optional: whatever goes wrong (no compiler, no Node headers, no tsx) is a warning, and the
// backends then use their portable lowerings.
import { existsSync } from "node:fs";

const source = new URL("../backends/native/build.ts", import.meta.url);
const compiled = new URL("../dist/backends/native/build.js", import.meta.url);

async function build() {
  if (existsSync(source)) {
    const { register } = await import("tsx/esm/api");
    register();
    await import(source.href);
  } else if (existsSync(compiled)) {
    await import(compiled.href);
  } else {
    throw new Error("neither backends/native/build.ts nor dist/backends/native/build.js is here");
  }
}

try {
  await build();
} catch (error) {
  console.warn(
    `sprig: native kernels not built (${error instanceof Error ? error.message : String(error)}); the backends use their portable lowerings`,
  );
}
