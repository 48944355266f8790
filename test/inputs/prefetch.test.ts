import { describe, expect, it } from "vitest";
import { Prefetch } from "../../src/inputs/prefetch.js";

/**
 * The bounded look-ahead of src/inputs/prefetch.ts: results in item order, at most depth
 * loads running beyond the one being waited for, failures delivered to their own take(),
 * and close() aborting and awaiting whatever still runs.
 */

/** A load whose completion the test controls, recording what ran. */
function controlledLoads(count: number) {
  const started: number[] = [];
  const aborted: number[] = [];
  const finish: ((value: string) => void)[] = [];
  const fail: ((error: Error) => void)[] = [];
  const load = (item: number, index: number, signal: AbortSignal) =>
    new Promise<string>((resolve, reject) => {
      expect(item).toBe(index * 10);
      started.push(index);
      let running = true;
      finish[index] = (value) => {
        running = false;
        resolve(value);
      };
      fail[index] = (error) => {
        running = false;
        reject(error);
      };
      signal.addEventListener("abort", () => {
        if (!running) return;
        aborted.push(index);
        reject(new Error(`aborted ${index}`));
      });
    });
  const items = Array.from({ length: count }, (_, i) => i * 10);
  return { items, load, started, aborted, finish, fail };
}

/** Lets pending promise callbacks run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("Prefetch", () => {
  it("starts `depth` loads at once and keeps depth loads beyond the item taken", async () => {
    const c = controlledLoads(6);
    const queue = new Prefetch(c.items, c.load, 2);
    await settle();
    expect(c.started).toEqual([0, 1]);
    const first = queue.take();
    await settle();
    expect(c.started).toEqual([0, 1, 2]); // item 0 is waited for, 1 and 2 run ahead
    c.finish[1]!("one");
    c.finish[0]!("zero");
    await expect(first).resolves.toBe("zero");
    const second = queue.take();
    await settle();
    expect(c.started).toEqual([0, 1, 2, 3]);
    await expect(second).resolves.toBe("one"); // finished early, kept in order
    expect(queue.remaining).toBe(4);
    await queue.close();
  });

  it("with depth 0 starts each load only when its item is taken (one after the other)", async () => {
    const c = controlledLoads(3);
    const queue = new Prefetch(c.items, c.load, 0);
    await settle();
    expect(c.started).toEqual([]);
    const first = queue.take();
    await settle();
    expect(c.started).toEqual([0]);
    c.finish[0]!("a");
    await expect(first).resolves.toBe("a");
    await settle();
    expect(c.started).toEqual([0]);
    await queue.close();
  });

  it("delivers a failure to its own take() only; the items after it still arrive", async () => {
    const c = controlledLoads(3);
    const queue = new Prefetch(c.items, c.load, 3);
    await settle();
    c.fail[0]!(new Error("bad clip 0")); // before anyone takes it: must not be unhandled
    c.finish[1]!("b");
    c.finish[2]!("c");
    await settle();
    await expect(queue.take()).rejects.toThrow("bad clip 0");
    await expect(queue.take()).resolves.toBe("b");
    await expect(queue.take()).resolves.toBe("c");
    await expect(queue.take()).rejects.toThrow("all 3 items taken");
    await queue.close();
  });

  it("turns a load that throws synchronously into a rejected take()", async () => {
    const queue = new Prefetch(
      [1],
      () => {
        throw new Error("thrown, not rejected");
      },
      1,
    );
    await expect(queue.take()).rejects.toThrow("thrown, not rejected");
    await queue.close();
  });

  it("close() aborts the loads still running and resolves only once they have settled", async () => {
    const c = controlledLoads(5);
    const queue = new Prefetch(c.items, c.load, 2);
    await settle();
    c.finish[0]!("done early");
    await settle();
    let closed = false;
    const closing = queue.close().then(() => {
      closed = true;
    });
    await closing;
    expect(closed).toBe(true);
    expect(c.aborted).toEqual([1]); // 0 had finished; 2.. never started
    expect(c.started).toEqual([0, 1]);
    await expect(queue.take()).rejects.toThrow("after close");
  });

  it("waits in close() for a load that ignores the abort until it finishes", async () => {
    let release: () => void = () => undefined;
    const queue = new Prefetch(
      [0],
      () =>
        new Promise<string>((resolve) => {
          release = () => resolve("late");
        }),
      1,
    );
    await settle();
    let closed = false;
    const closing = queue.close().then(() => {
      closed = true;
    });
    await settle();
    expect(closed).toBe(false);
    release();
    await closing;
    expect(closed).toBe(true);
  });

  it("refuses a depth that is not a non-negative integer", () => {
    expect(() => new Prefetch([], async () => 0, -1)).toThrow(RangeError);
    expect(() => new Prefetch([], async () => 0, 1.5)).toThrow(RangeError);
  });
});
