import { describe, expect, it } from "vitest";
import {
  freeSchedule,
  KERNELS,
  referenceBackend,
  runReference,
} from "../../../backends/reference/index.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import { BackendError, InputError, WeightError } from "../../../src/ir/errors.js";
import type { Graph } from "../../../src/ir/graph.js";
import { OP_KINDS } from "../../../src/ir/ops/index.js";
import { f32Tensor, i32Tensor } from "../../../src/ir/tensor.js";
import { values } from "./helpers.js";

const vec = (...xs: number[]) => f32Tensor([xs.length], new Float32Array(xs));

/** y = (x + w) * x; z = y + c; outputs y (also read later), z, the raw input, the constant. */
function diamond(): Graph {
  const b = new GraphBuilder("diamond");
  const x = b.input("x", { dtype: "f32", shape: [3] });
  const w = b.weight("w", [3]);
  const c = b.constant("c", vec(100, 200, 300));
  const s = b.add1("add", [x, w], {});
  const y = b.add1("mul", [s, x], {});
  const z = b.add1("add", [y, c], {});
  b.output("y", y);
  b.output("z", z);
  b.output("x_again", x);
  b.output("c", c);
  return b.build();
}

describe("reference backend", () => {
  it("has a kernel for every op kind", () => {
    expect(Object.keys(KERNELS).sort()).toEqual([...OP_KINDS].sort());
  });

  it("is always available", async () => {
    expect(referenceBackend.name).toBe("reference");
    expect((await referenceBackend.availability()).ok).toBe(true);
  });

  it("interprets in graph order and returns every output by name", async () => {
    const exe = await referenceBackend.compile(diamond(), new Map([["w", vec(1, 2, 3)]]));
    expect(exe.backend).toBe("reference");
    const out = await exe.run({ x: vec(1, -1, 2) });
    expect(Object.keys(out).sort()).toEqual(["c", "x_again", "y", "z"]);
    expect(values(out.y)).toEqual([2, -1, 10]);
    expect(values(out.z)).toEqual([102, 199, 310]);
    expect(values(out.x_again)).toEqual([1, -1, 2]);
    expect(values(out.c)).toEqual([100, 200, 300]);
    // Runs again with other inputs: nothing from the first run leaks into the second.
    const again = await exe.run({ x: vec(0, 0, 1) });
    expect(values(again.z)).toEqual([100, 200, 304]);
    exe.dispose();
    await expect(exe.run({ x: vec(0, 0, 1) })).rejects.toThrow(BackendError);
  });

  it("frees each intermediate after its last reader, keeping graph outputs", () => {
    const g = diamond();
    // Nodes: 0 x, 1 w, 2 c, 3 s = x + w, 4 y = s * x, 5 z = y + c. Outputs y, z, x, c.
    expect(freeSchedule(g)).toEqual([[], [], [], [1], [3], []]);
    const b = new GraphBuilder("chain");
    const x = b.input("x", { dtype: "f32", shape: [2] });
    const a = b.add1("gelu", [x], {});
    const unused = b.add1("gelu", [a], {});
    const c = b.add1("add", [a, a], {});
    void unused;
    b.output("c", c);
    // x is freed after a; the unused node right after itself; a after c.
    expect(freeSchedule(b.build())).toEqual([[], [0], [2], [1]]);
  });

  it("rejects missing and mis-shaped weights with a WeightError at compile time", async () => {
    await expect(referenceBackend.compile(diamond(), new Map())).rejects.toThrow(WeightError);
    await expect(referenceBackend.compile(diamond(), new Map())).rejects.toThrow(
      /missing weight "w"/,
    );
    expect(() => runReference(diamond(), new Map([["w", vec(1, 2)]]), { x: vec(1, 2, 3) })).toThrow(
      WeightError,
    );
  });

  it("rejects wrong inputs with an InputError", async () => {
    const exe = await referenceBackend.compile(diamond(), new Map([["w", vec(1, 2, 3)]]));
    await expect(exe.run({ x: vec(1, 2) })).rejects.toThrow(InputError);
    await expect(exe.run({})).rejects.toThrow(InputError);
    await expect(exe.run({ x: i32Tensor([3]) })).rejects.toThrow(InputError);
    await expect(exe.run({ x: vec(1, 2, 3), extra: vec(1) })).rejects.toThrow(InputError);
    expect(() => runReference(diamond(), new Map([["w", vec(1, 2, 3)]]), { x: vec(1) })).toThrow(
      InputError,
    );
  });

  it("refuses to run a bound source's kernel directly", () => {
    const g = diamond();
    const input = g.nodes[0]!;
    expect(input.op).toBe("input");
    if (input.op === "input") expect(() => KERNELS.input(input, [])).toThrow(BackendError);
  });
});
