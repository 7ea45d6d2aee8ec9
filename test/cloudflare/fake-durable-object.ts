import type { DurableObjectNamespaceLike, DurableObjectStateLike } from "../../src/cloudflare/index.ts";
import { BreakerStateObject } from "../../src/cloudflare/index.ts";
import type { Clock } from "../../src/core/clock.ts";

/**
 * Durable Object storage as `BreakerStateObject` uses it, in Node: values are
 * cloned on the way in and out (as workerd serializes them), every write and
 * alarm is recorded for the assertions.
 */
export class FakeStorage {
  readonly values = new Map<string, unknown>();
  readonly puts: { key: string; value: unknown }[] = [];
  readonly alarms: number[] = [];

  async get<T>(key: string): Promise<T | undefined> {
    const value = this.values.get(key);
    return value === undefined ? undefined : (structuredClone(value) as T);
  }

  async put(key: string, value: unknown): Promise<void> {
    this.puts.push({ key, value: structuredClone(value) });
    this.values.set(key, structuredClone(value));
  }

  async setAlarm(scheduledTime: number): Promise<void> {
    this.alarms.push(scheduledTime);
  }

  /** The alarm workerd would run: the last one set. */
  get alarm(): number | undefined {
    return this.alarms.at(-1);
  }
}

/**
 * A `DurableObjectState` whose `blockConcurrencyWhile` is tracked: `ready`
 * settles once the constructor's read of storage has, as workerd holds
 * incoming requests until then.
 */
export function fakeState(storage = new FakeStorage()): DurableObjectStateLike & {
  storage: FakeStorage;
  ready: Promise<unknown>;
} {
  let ready: Promise<unknown> = Promise.resolve();
  return {
    storage,
    get ready() {
      return ready;
    },
    blockConcurrencyWhile<T>(callback: () => Promise<T>): Promise<T> {
      const run = callback();
      ready = run;
      return run;
    },
  };
}

/** A `BreakerStateObject` on a fake state, and a helper that POSTs JSON to it. */
export function stateObject(clock: Clock, storage = new FakeStorage()) {
  const state = fakeState(storage);
  const object = new BreakerStateObject(state, {}, clock);
  const post = async (path: string, body: unknown) => {
    await state.ready;
    return object.fetch(new Request(`https://breaker-state${path}`, { method: "POST", body: JSON.stringify(body) }));
  };
  return { object, state, storage, post };
}

/**
 * A Durable Object namespace in one process: one `BreakerStateObject` per
 * name, each on its own storage, reached through `stub.fetch` as workerd
 * would (a `Request` built from the stub's arguments). `answer` can replace
 * the object for a call (a broken, slow or lying object); `names` and
 * `requests` record what the store asked for.
 */
export class FakeNamespace implements DurableObjectNamespaceLike {
  readonly objects = new Map<string, ReturnType<typeof stateObject>>();
  readonly names: string[] = [];
  readonly requests: { name: string; path: string; contentType: string | null; body: Record<string, unknown> }[] = [];
  answer: ((request: Request) => Promise<Response>) | undefined;

  readonly clock: Clock;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  idFromName(name: string): unknown {
    return { name };
  }

  object(name: string): ReturnType<typeof stateObject> {
    let entry = this.objects.get(name);
    if (!entry) {
      entry = stateObject(this.clock);
      this.objects.set(name, entry);
    }
    return entry;
  }

  get(id: never) {
    const { name } = id as { name: string };
    this.names.push(name);
    return {
      fetch: async (input: string, init?: RequestInit): Promise<Response> => {
        const request = new Request(input, init);
        this.requests.push({
          name,
          path: new URL(request.url).pathname,
          contentType: request.headers.get("content-type"),
          body: JSON.parse(await request.clone().text()),
        });
        if (this.answer) return this.answer(request);
        const entry = this.object(name);
        await entry.state.ready;
        return entry.object.fetch(request);
      },
    };
  }
}

/** A Workers `ExecutionContext` that keeps what it is given, so a test can await the background work. */
export function fakeCtx() {
  const tasks: Promise<unknown>[] = [];
  return {
    tasks,
    waitUntil(promise: Promise<unknown>) {
      tasks.push(promise);
    },
    /** Settles every task handed over so far, and those they started. */
    async settle() {
      for (let done = 0; done < tasks.length; ) {
        const end = tasks.length;
        await Promise.all(tasks.slice(done, end));
        done = end;
      }
    },
  };
}
