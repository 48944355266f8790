/**
 * A bounded look-ahead over slow, independent loads (decoding videos while the encoder runs
 * on the ones before): items are taken strictly in order, and at most `depth` loads run or
 * wait beyond the item the consumer is waiting for, so memory stays at depth + 1 results
 * however long the list is.
 *
 *   take(i) starts loads i .. i + depth (those not started yet) and resolves with load i.
 *
 * With depth 0 every load starts only when its item is asked for: the loads run one after
 * the other, interleaved with the consumer, as a plain loop would run them.
 *
 * A load that fails rejects only its own take(); the loads after it keep running until
 * close(), which aborts every load still running (through its AbortSignal) and waits for
 * all of them to settle, so that nothing a load started (a child process) outlives it.
 * Results never taken are dropped; their failures are never reported as unhandled.
 */
export class Prefetch<T, R> {
  private readonly loads: (Promise<R> | undefined)[];
  /** Loads started and not settled yet, taken or not: what close() waits for. */
  private readonly running = new Set<Promise<unknown>>();
  private readonly controller = new AbortController();
  /** Loads are started in item order: 0 .. started - 1 have been. */
  private started = 0;
  private next = 0;
  private closed = false;

  constructor(
    private readonly items: readonly T[],
    private readonly load: (item: T, index: number, signal: AbortSignal) => Promise<R>,
    private readonly depth: number,
  ) {
    if (!(Number.isSafeInteger(depth) && depth >= 0)) {
      throw new RangeError(`prefetch depth must be an integer >= 0, got ${depth}`);
    }
    this.loads = new Array(items.length);
    // Look-ahead from the start: the first `depth` loads need no consumer to begin.
    this.startThrough(depth - 1);
  }

  /** Items not taken yet. */
  get remaining(): number {
    return this.items.length - this.next;
  }

  /** Loads started so far (for tests and progress). */
  get startedCount(): number {
    return this.started;
  }

  /** The next item's result, in order (see the class comment). */
  take(): Promise<R> {
    if (this.closed) return Promise.reject(new Error("prefetch: take() after close()"));
    if (this.next >= this.items.length) {
      return Promise.reject(new RangeError(`prefetch: all ${this.items.length} items taken`));
    }
    const index = this.next++;
    this.startThrough(index + this.depth);
    const result = this.loads[index]!;
    // Taken: the consumer holds it now, so a used result can be collected.
    this.loads[index] = undefined;
    return result;
  }

  /** Aborts the loads still running and resolves once every started load has settled. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.controller.abort();
    await Promise.allSettled([...this.running]);
  }

  private startThrough(last: number): void {
    const end = Math.min(last, this.items.length - 1);
    for (; this.started <= end; this.started++) {
      const index = this.started;
      // Started on a later tick, so that a load that throws synchronously rejects too.
      const promise = Promise.resolve().then(() =>
        this.load(this.items[index]!, index, this.controller.signal),
      );
      const settled = promise.then(
        () => undefined,
        () => undefined,
      );
      this.running.add(settled);
      void settled.then(() => this.running.delete(settled));
      this.loads[index] = promise;
    }
  }
}
