/**
 * A Durable Object namespace for tests in Node: its stubs call real
 * `BreakerStateObject`s (one per name), each on `objectClock`, over a storage
 * that clones values as workerd does, and that a test may fill beforehand
 * (a state another version wrote).
 */
import type { DurableObjectNamespaceLike } from "../../src/cloudflare/index.ts";
import { BreakerStateObject } from "../../src/cloudflare/index.ts";
import type { Clock } from "../../src/policies/index.ts";

export class Storage {
  readonly values = new Map<string, unknown>();
  async get<T>(key: string): Promise<T | undefined> {
    const value = this.values.get(key);
    return value === undefined ? undefined : (structuredClone(value) as T);
  }
  async put(key: string, value: unknown): Promise<void> {
    this.values.set(key, structuredClone(value));
  }
  async setAlarm(_scheduledTime: number): Promise<void> {}
}

export interface ObjectNamespace extends DurableObjectNamespaceLike {
  /** The paths the objects were asked, in order. */
  paths: string[];
  /** When set, every stub call waits for this promise first (an object that hangs or is slow). */
  gate: Promise<unknown> | undefined;
}

export function objectNamespace(objectClock: Clock, storage = new Storage()): ObjectNamespace {
  const objects = new Map<string, { object: BreakerStateObject; ready: Promise<unknown> }>();
  const ns: ObjectNamespace = {
    paths: [],
    gate: undefined,
    idFromName: (name: string) => name,
    get: (id: never) => ({
      fetch: async (input: string, init?: RequestInit) => {
        const name = id as unknown as string;
        let entry = objects.get(name);
        if (!entry) {
          let ready: Promise<unknown> = Promise.resolve();
          const object = new BreakerStateObject(
            {
              storage,
              blockConcurrencyWhile: (callback) => {
                const run = callback();
                ready = run;
                return run;
              },
            },
            {},
            objectClock,
          );
          entry = { object, ready };
          objects.set(name, entry);
        }
        if (ns.gate) await ns.gate;
        await entry.ready; // workerd holds requests until the constructor's read of storage settled
        ns.paths.push(new URL(input).pathname);
        return entry.object.fetch(new Request(input, init));
      },
    }),
  };
  return ns;
}
