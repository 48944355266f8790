/**
 * Interrupt-safe outputs: a registry of what to undo when SIGINT or SIGTERM stops a
 * command while it writes.
 *
 * A writer registers an undo action for the time its output is incomplete (writeFileAtomic:
 * remove its temporary file, from open to rename; emit: remove the files it wrote, restore
 * the ones it replaced, remove the directory it created) and unregisters it when the output
 * is complete or already undone. The CLI entry calls handleInterrupts() once; from then on,
 * while at least one action is registered, SIGINT and SIGTERM run every registered action
 * (newest first, so a temporary file goes before the directory holding it), print one line
 * and exit with the conventional status, 128 + the signal's number (130, 143). While none
 * is registered the signals keep their default action, so Ctrl-C still stops a long
 * computation at once (a JavaScript handler would only run when the computation yields).
 * A second signal during the cleanup exits at once.
 *
 * Library callers that never call handleInterrupts keep Node's default signal handling;
 * the registry then only records. Actions use node:fs/promises (async): the handler runs
 * on the event loop like any callback and exits after they settle.
 */

type Undo = () => Promise<void> | void;

/** Signals handled, with the exit status each gives (128 + the signal number). */
const SIGNAL_STATUS = { SIGINT: 130, SIGTERM: 143 } as const;
type HandledSignal = keyof typeof SIGNAL_STATUS;

const pending = new Map<number, { readonly what: string; readonly undo: Undo }>();
let nextId = 0;
let enabled = false;
let attached = false;
let cleaning = false;

const listeners: Record<HandledSignal, () => void> = {
  SIGINT: () => void interrupted("SIGINT"),
  SIGTERM: () => void interrupted("SIGTERM"),
};

function attach(): void {
  if (!enabled || attached || pending.size === 0) return;
  for (const signal of Object.keys(SIGNAL_STATUS) as HandledSignal[]) {
    process.on(signal, listeners[signal]);
  }
  attached = true;
}

function detach(): void {
  if (!attached || pending.size > 0 || cleaning) return;
  for (const signal of Object.keys(SIGNAL_STATUS) as HandledSignal[]) {
    process.off(signal, listeners[signal]);
  }
  attached = false;
}

async function interrupted(signal: HandledSignal): Promise<void> {
  const status = SIGNAL_STATUS[signal];
  if (cleaning) process.exit(status);
  cleaning = true;
  const actions = [...pending.values()].reverse();
  pending.clear();
  for (const action of actions) {
    try {
      await action.undo();
    } catch {
      // Best effort: the next action still runs, and the exit status says what happened.
    }
  }
  const what = actions.map((a) => a.what).join(", ");
  process.stderr.write(`sprig: interrupted by ${signal}; removed ${what}\n`);
  process.exit(status);
}

/**
 * Registers `undo` to run if the process is interrupted; `what` names it in the last line
 * ("temporary file /out/.m.onnx.123.ab.tmp"). Returns the function that unregisters it.
 */
export function onInterrupt(what: string, undo: Undo): () => void {
  const id = nextId++;
  pending.set(id, { what, undo });
  attach();
  return () => {
    pending.delete(id);
    detach();
  };
}

/** Turns interrupt cleanup on for this process (the CLI entry, once). */
export function handleInterrupts(): void {
  enabled = true;
  attach();
}

/** How many undo actions are registered now (for tests). */
export function pendingCleanups(): number {
  return pending.size;
}
