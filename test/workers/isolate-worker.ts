/**
 * An "isolate" for the cross-isolate tests: this file is bundled (see
 * vitest.config.ts) and loaded by Miniflare as separate Worker scripts,
 * `isolate-a` and `isolate-b`. workerd runs each Worker script in its own
 * isolate with its own global scope and module instances, so the two share
 * nothing but the Durable Object namespaces they are bound to (the objects
 * live in a third script, `breaker-state`, built from this same file). The
 * test runner reaches each one through a service binding.
 *
 * Each request builds what it needs from the JSON it receives and answers
 * what it saw: probe grants, upstream calls, store events.
 */

import { type DurableObjectNamespaceLike, durableObjectStore } from "../../src/cloudflare/index.ts";
import type { ResolvedBreakerPolicy } from "../../src/core/options/breaker-options.ts";
import { createResilience, type StoreEvent } from "../../src/index.ts";
import { TestClock } from "../../src/testing/test-clock.ts";

export { BreakerStateObject } from "../../src/cloudflare/index.ts";

/**
 * A Durable Object slower than any wait bound: it holds every answer until
 * `/release`, then answers "closed" (which would grant the probe had it come
 * in time).
 */
export class SlowStateObject {
  readonly #held: (() => void)[] = [];

  async fetch(request: Request): Promise<Response> {
    if (new URL(request.url).pathname === "/release") {
      const released = this.#held.splice(0);
      for (const answer of released) answer();
      return Response.json({ released: released.length });
    }
    await new Promise<void>((resolve) => this.#held.push(resolve));
    return Response.json({ state: "closed", gen: 0, openUntil: null, reason: null, lease: null });
  }
}

/** A Durable Object that cannot serve: every call throws inside the object. */
export class BrokenStateObject {
  fetch(): Response {
    throw new Error("object crashed");
  }
}

interface IsolateEnv {
  ISOLATE_NAME: string;
  BREAKER_STATE: DurableObjectNamespaceLike;
  SLOW_STATE: DurableObjectNamespaceLike;
  BROKEN_STATE: DurableObjectNamespaceLike;
}

interface Ctx {
  waitUntil(promise: Promise<unknown>): void;
}

/** What every request names: which object namespace, which scope and key, which thresholds. */
interface Setup {
  namespace: "BREAKER_STATE" | "SLOW_STATE" | "BROKEN_STATE";
  scope: string;
  key: string;
  policy: ResolvedBreakerPolicy;
  /** The store's wait bound, fired on an injected clock (no real waiting). */
  timeout?: number;
  /**
   * The store's wait bound in real time, for tests about what the object
   * grants: the 250 ms default, on two cores busy with a whole test run, can
   * give up on an answer the object sent, and its lease goes unseen.
   */
  waitBound?: number;
}

/** The first isolate to write it owns it: another script's write would show up here if globals were shared. */
const marker = "__resilientFetchIsolate";

export default {
  async fetch(request: Request, env: IsolateEnv, ctx: Ctx): Promise<Response> {
    const path = new URL(request.url).pathname;
    const g = globalThis as Record<string, unknown>;
    g[marker] ??= env.ISOLATE_NAME;
    if (path === "/whoami") return Response.json({ name: env.ISOLATE_NAME, globalOwner: g[marker] });
    const setup = (await request.json()) as Setup & { n?: number };
    if (path === "/trip") return Response.json(await trip(env, ctx, setup));
    if (path === "/acquire") return Response.json(await acquire(env, ctx, setup, setup.n ?? 1));
    if (path === "/layer") return Response.json(await layer(env, ctx, setup, setup.n ?? 1));
    return new Response("unknown path", { status: 404 });
  },
};

/** A context whose background work this request can await before answering. */
function collecting(ctx: Ctx) {
  const pending: Promise<unknown>[] = [];
  return {
    ctx: {
      waitUntil(promise: Promise<unknown>) {
        pending.push(promise);
        ctx.waitUntil(promise);
      },
    },
    /** Awaits every background task; with a clock, keeps firing the store's wait bound meanwhile. */
    settle: async (clock?: TestClock, step = 0) => {
      while (pending.length > 0) {
        let done = false;
        const all = Promise.allSettled(pending.splice(0)).then(() => {
          done = true;
        });
        while (clock && !done) await clock.advance(step);
        await all;
      }
    },
  };
}

function storeFor(env: IsolateEnv, ctx: Ctx, setup: Setup, clock?: TestClock) {
  const store = durableObjectStore(env[setup.namespace], {
    ctx,
    scope: setup.scope,
    flushThreshold: setup.policy.failureThreshold,
    ...(setup.timeout !== undefined ? { timeout: setup.timeout } : {}),
    ...(setup.waitBound !== undefined ? { timeout: setup.waitBound } : {}),
    ...(clock ? { clock } : {}),
  });
  store.configure(setup.policy);
  const events: StoreEvent[] = [];
  store.connect?.((e) => events.push(e));
  return { store, events };
}

/** Reports `failureThreshold` failures through the store and waits until the object has them. */
async function trip(env: IsolateEnv, ctx: Ctx, setup: Setup) {
  const bg = collecting(ctx);
  const { store, events } = storeFor(env, bg.ctx, setup);
  for (let i = 0; i < setup.policy.failureThreshold; i++) store.record?.(setup.key, true, Date.now());
  await bg.settle();
  return { events, verdict: store.peek(setup.key, Date.now()) ?? null };
}

/**
 * `n` concurrent `acquireProbe` calls from this isolate's store. With
 * `timeout` set, the store waits on an injected clock whose timers fire once
 * every call is waiting: the object answers only after the bound by
 * construction (a slow object never answers before it is released).
 */
async function acquire(env: IsolateEnv, ctx: Ctx, setup: Setup, n: number) {
  const bg = collecting(ctx);
  const clock = setup.timeout !== undefined ? new TestClock(Date.now()) : undefined;
  const { store, events } = storeFor(env, bg.ctx, setup, clock);
  const calls = Array.from({ length: n }, () => store.acquireProbe?.(setup.key, Date.now()) ?? Promise.resolve());
  if (clock && setup.timeout !== undefined) {
    await clock.waitForTimers(n);
    await clock.advance(setup.timeout);
  }
  const grants = (await Promise.all(calls)).map((g) => (g === undefined ? "undefined" : g));
  const released = setup.namespace === "SLOW_STATE" ? await releaseSlow(env, setup) : null;
  await bg.settle(clock, setup.timeout);
  return { grants, events, released };
}

/**
 * The whole layer in this isolate: trip the local breaker with
 * `failureThreshold` failing calls, then `n` concurrent calls while it is
 * half-open. Upstream answers are held until every call has either reached
 * the upstream or been refused, so no probe's result can close the breaker
 * while others are still being decided.
 */
async function layer(env: IsolateEnv, ctx: Ctx, setup: Setup, n: number) {
  const bg = collecting(ctx);
  const clock = setup.timeout !== undefined ? new TestClock(Date.now()) : undefined;
  const { store, events } = storeFor(env, bg.ctx, setup, clock);
  const { failureRate: _rate, ...thresholds } = setup.policy; // JSON carried no rate: the count rule applies
  let failing = true;
  let arrived = 0;
  let refused = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const settledOrArrived = () => {
    if (arrived + refused === n) release();
  };
  const resilience = createResilience({
    store,
    retry: false,
    breaker: thresholds,
    fetch: async () => {
      if (failing) return new Response("down", { status: 503 });
      arrived++;
      settledOrArrived();
      await gate;
      return new Response("ok");
    },
  });
  const url = `https://${setup.key}/generate`;
  for (let i = 0; i < setup.policy.failureThreshold; i++) await resilience.fetch(url);
  await bg.settle(clock, setup.timeout);
  const tripped = resilience.health().breakers[setup.key]?.state;
  failing = false;
  const calls = Array.from({ length: n }, () =>
    resilience.fetch(url).then(
      (r) => r.status,
      (e: Error) => {
        refused++;
        settledOrArrived();
        return e.name;
      },
    ),
  );
  if (clock && setup.timeout !== undefined) {
    // Fire the store's wait bound once every admitted probe is waiting on it.
    while (arrived + refused < n) {
      await clock.advance(setup.timeout);
    }
  }
  const outcomes = await Promise.all(calls);
  if (setup.namespace === "SLOW_STATE") await releaseSlow(env, setup);
  await bg.settle(clock, setup.timeout);
  return { tripped, upstreamCalls: arrived, outcomes, events };
}

/** Lets the slow object answer what it held (after the store stopped waiting); returns how many it held. */
async function releaseSlow(env: IsolateEnv, setup: Setup): Promise<number> {
  const ns = env.SLOW_STATE;
  const stub = ns.get(ns.idFromName(`cb:${setup.scope}:${setup.key}`) as never);
  const answer = (await (await stub.fetch("https://breaker-state/release", { method: "POST" })).json()) as {
    released: number;
  };
  return answer.released;
}
