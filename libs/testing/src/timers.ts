/** What jest's fake timers can replace (@types/jest's FakeableAPI; Node 20 has no Temporal). */
const FAKEABLE = [
  'Date',
  'hrtime',
  'nextTick',
  'performance',
  'queueMicrotask',
  'requestAnimationFrame',
  'cancelAnimationFrame',
  'requestIdleCallback',
  'cancelIdleCallback',
  'setImmediate',
  'clearImmediate',
  'setInterval',
  'clearInterval',
  'setTimeout',
  'clearTimeout',
] as const;

export type FakeableApi = (typeof FAKEABLE)[number];

/**
 * Options for `jest.useFakeTimers` that fake only `apis`. Jest fakes them all by default, nextTick and
 * microtasks included, which stalls a Redis client or an HTTP server the test still talks to.
 */
export function fakingOnly(...apis: FakeableApi[]): { doNotFake: FakeableApi[] } {
  return { doNotFake: FAKEABLE.filter((api) => !apis.includes(api)) };
}
