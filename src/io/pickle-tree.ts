/**
 * Walking unpickled object trees without recursion.
 *
 * A pickle builds a graph, not a tree: the memo lets one container appear in several
 * places (an omegaconf node's `_parent` points back up, so configs are cyclic) and a
 * crafted file can nest containers as deep as its length allows. So the walks here keep
 * an explicit work list (no stack overflow at any depth) and visit each container once
 * (no exponential blow-up on shared subtrees, termination on cycles).
 */
import {
  type DictKey,
  PickleDict,
  PickleObject,
  PickleTuple,
  type PickleValue,
  TensorRecipe,
} from "./pickle.js";

type Container<T> = PickleValue<T>[] | PickleTuple<T> | PickleDict<T> | PickleObject<T>;

function isContainer<T>(value: PickleValue<T>): value is Container<T> {
  return (
    Array.isArray(value) ||
    value instanceof PickleTuple ||
    value instanceof PickleDict ||
    value instanceof PickleObject
  );
}

/** The values directly inside a container (dict keys are scalars, so only values). */
function childrenOf<T>(value: Container<T>): Iterable<PickleValue<T>> {
  if (Array.isArray(value)) return value;
  if (value instanceof PickleTuple) return value.items;
  if (value instanceof PickleDict) {
    const attributes = value.attributes?.values() ?? [];
    return [...value.items.values(), ...attributes];
  }
  return value.state === undefined ? [] : [value.state];
}

/** Every container reachable from `root`, each once, parents before their children. */
function reachableContainers<T>(root: PickleValue<T>): Container<T>[] {
  const seen = new Set<Container<T>>();
  const order: Container<T>[] = [];
  const work: PickleValue<T>[] = [root];
  while (work.length > 0) {
    const value = work.pop()!;
    if (!isContainer(value) || seen.has(value)) continue;
    seen.add(value);
    order.push(value);
    for (const child of childrenOf(value)) work.push(child);
  }
  return order;
}

/** Calls `visit` on every reachable non-container value (once per occurrence). */
export function forEachLeaf<T>(root: PickleValue<T>, visit: (value: PickleValue<T>) => void): void {
  if (!isContainer(root)) {
    visit(root);
    return;
  }
  for (const container of reachableContainers(root)) {
    for (const child of childrenOf(container)) if (!isContainer(child)) visit(child);
  }
}

/**
 * A copy of the graph with every TensorRecipe replaced by `convert(recipe)` (called once
 * per distinct recipe), keeping its sharing and cycles. Shells for all containers are
 * made first, then filled, so a container can refer to one not yet filled.
 */
export function mapTensors<B>(
  root: PickleValue,
  convert: (recipe: TensorRecipe) => B,
): PickleValue<B> {
  const converted = new Map<TensorRecipe, B>();
  const convertOnce = (recipe: TensorRecipe): B => {
    let result = converted.get(recipe);
    if (result === undefined) {
      result = convert(recipe);
      converted.set(recipe, result);
    }
    return result;
  };

  const containers = reachableContainers(root);
  const shells = new Map<Container<TensorRecipe>, Container<B>>();
  const tupleItems = new Map<PickleTuple, PickleValue<B>[]>();
  for (const container of containers) {
    if (Array.isArray(container)) {
      shells.set(container, []);
    } else if (container instanceof PickleTuple) {
      const items: PickleValue<B>[] = [];
      tupleItems.set(container, items);
      shells.set(container, new PickleTuple<B>(items));
    } else if (container instanceof PickleDict) {
      shells.set(container, new PickleDict<B>(container.pythonType));
    } else {
      shells.set(container, new PickleObject<B>(container.className));
    }
  }

  const lookup = (value: PickleValue): PickleValue<B> => {
    if (value instanceof TensorRecipe) return convertOnce(value);
    if (isContainer(value)) return shells.get(value)!;
    return value;
  };
  const mapEntries = (entries: Map<DictKey, PickleValue>) =>
    new Map([...entries].map(([key, item]) => [key, lookup(item)] as const));

  for (const container of containers) {
    const shell = shells.get(container)!;
    if (Array.isArray(container)) {
      pushAll(shell as PickleValue<B>[], container.map(lookup));
    } else if (container instanceof PickleTuple) {
      pushAll(tupleItems.get(container)!, container.items.map(lookup));
    } else if (container instanceof PickleDict) {
      const dict = shell as PickleDict<B>;
      for (const [key, item] of mapEntries(container.items)) dict.items.set(key, item);
      if (container.attributes !== undefined) dict.attributes = mapEntries(container.attributes);
    } else if (container.state !== undefined) {
      (shell as PickleObject<B>).state = lookup(container.state);
    }
  }
  return lookup(root);
}

/** Appends without spreading into arguments, which overflows for very long lists. */
function pushAll<V>(target: V[], values: readonly V[]): void {
  for (const value of values) target.push(value);
}
