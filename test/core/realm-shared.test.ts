import { afterEach, expect, it, vi } from "vitest";

const KEY = Symbol.for("@storycore/resilient-fetch/realm@1");
const global = globalThis as Record<symbol, unknown>;
const saved = Object.getOwnPropertyDescriptor(globalThis, KEY);

/** A fresh copy of the module, as a second copy of the package would load it. */
async function freshCopy() {
  vi.resetModules();
  return (await import("../../src/core/realm-shared.ts")).realm;
}

afterEach(() => {
  delete global[KEY];
  if (saved) Object.defineProperty(globalThis, KEY, saved);
});

it("gives two copies of the module one object, kept under a registered symbol", async () => {
  delete global[KEY];
  const first = (await freshCopy())();
  const second = (await freshCopy())();
  expect(second).toBe(first);
  expect(global[KEY]).toBe(first);
  const marked = {};
  first.afterSent.add(marked);
  expect(second.afterSent.has(marked)).toBe(true);
});

it("keeps its own when the global holds something else there, or takes no property", async () => {
  Object.defineProperty(globalThis, KEY, { value: 1, writable: false, configurable: true });
  const taken = (await freshCopy())();
  expect(taken.afterOthers).toBeInstanceOf(WeakSet);
  expect(global[KEY]).toBe(1);
  delete global[KEY];
  Object.defineProperty(globalThis, KEY, { value: { afterOthers: "not a set" }, configurable: true });
  expect((await freshCopy())().beneath).toBeInstanceOf(WeakMap);
  delete global[KEY];
  // A global that takes no property there (frozen, say): the assignment throws, the copy keeps its own.
  Object.defineProperty(globalThis, KEY, {
    get: () => undefined,
    set: () => {
      throw new TypeError("Cannot add property, object is not extensible");
    },
    configurable: true,
  });
  expect((await freshCopy())().afterSent).toBeInstanceOf(WeakSet);
  delete global[KEY];
  // A getter that throws, and a shaped object frozen (`sending` could not be written): each its own.
  Object.defineProperty(globalThis, KEY, {
    get: () => {
      throw new Error("hostile");
    },
    configurable: true,
  });
  expect((await freshCopy())().beneath).toBeInstanceOf(WeakMap);
  delete global[KEY];
  const frozen = Object.freeze({
    afterOthers: new WeakSet(),
    afterSent: new WeakSet(),
    beneath: new WeakMap(),
    sending: undefined,
  });
  Object.defineProperty(globalThis, KEY, { value: frozen, configurable: true });
  const own = (await freshCopy())();
  expect(own).not.toBe(frozen);
  own.sending = "writable";
  expect(own.sending).toBe("writable");
});
