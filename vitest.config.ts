import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: forks keep heavy numeric suites from starving each other.
    pool: "forks",
    // An X display (Xvfb) for gpu.js's headless-gl engine, when none is set.
    globalSetup: ["test/setup/display.ts"],
  },
});
