/**
 * Outside-in attack on the fix b8041bf: a retry whose redirect's later hop an open breaker refused is that
 * retry's failure (the call rejects with that `CircuitOpenError`, `afterRedirect: true`), no longer the layer
 * settling with the attempt before it (src/http/send/send-with-retries.ts `retried()`).
 *
 * Docs: CHANGELOG.md's newest Fixed entry ("The refused hop is now that retry's failure: the call rejects with its
 * `CircuitOpenError` (`afterRedirect: true`), a chain stops there for a keyless POST, and the proxy answers
 * 502"); docs/retry.md "Redirects" ("A hop to another host whose breaker refuses calls (open, here or in the
 * shared store, or half-open with every probe slot taken) is refused as a call to it would be, with a
 * `CircuitOpenError` … its `afterRedirect` `true` (the first host had the request: a POST without a key must not
 * be sent again …)", "with `durableObjectStore`, it also asks the object for one of its leases … and is refused
 * when another isolate holds them all"), its error table ("`CircuitOpenError` | … with `afterRedirect: true`, a
 * redirect's later hop was refused: the first host had the request"), "Fetch semantics are kept" ("Each class has
 * a cross-realm guard (`isRetryExhaustedError(e)` …) that works across bundles and iframes"), "Bodies" ("when the
 * layer itself refuses the retry (the host's breaker opened during the wait, its bulkhead is full), the call
 * settles with that response"), "Idempotency" ("A layer used as another's `fetch` … takes the request as not sent
 * only when nothing the inner layer tried may have had it"); docs/fallback.md ("Moving on follows the rule of a
 * retry … a POST without an `Idempotency-Key` goes to the next endpoint only when it surely was not processed",
 * "rejects with `FallbackExhaustedError` … if an endpoint tried after it may have processed a request that is not
 * safe to send twice"); SECURITY.md "A paid request is never processed twice" ("never after … a redirect
 * (whatever its target answers)") and "Nothing outlives its call" ("a body the layer drops (a response retried
 * past …) is drained in the background for at most 1 s"); src/core/errors.ts JSDoc ("Each `isX()` guard checks
 * the stable `name` too, so it works across realms and duplicated copies of the package", `afterRedirect`: "a
 * POST without a key must not be sent again"); src/cloudflare/failure-response.ts JSDoc ("`502`, a redirect's
 * later hop refused by its open circuit included: the first upstream had the request, and a `503` would tell the
 * client it was declined and may be sent again").
 *
 * How: `createResilience`, `getResilienceInfo`, `isCircuitOpenError` (root), `fallback` (./fallback),
 * `createClient` (./ky), `resilientProxy`, `failureResponse`, `durableObjectStore`, `BreakerStateObject`
 * (./cloudflare, as plain handlers in Node), `TestClock` (./testing); three node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts): A declines with 503 and then answers with a 307 to B, B is the target whose
 * breaker is open (or half-open with its probe taken), C a spare. A Durable Object namespace over the real
 * `BreakerStateObject`, one storage per object (the helper's namespace shares one storage between objects, so A's
 * object would read B's state). A second copy of the package: `vi.resetModules()` and `import("../../src/index.ts")`
 * again (the "duplicated copies" the guards are for). One scenario runs in a child `node --experimental-strip-types`
 * importing src/index.ts, to time the process's exit.
 *
 * Paths: plain call (GET, keyless POST, keyed POST) with the refused hop on the 2nd, 3rd and 4th attempt; `Request`
 * input; B half-open and re-opened by the same call's first attempt (its hop was B's probe); a Durable Object's
 * only lease held by another isolate; the caller's abort while the retry's hop waits for that lease; events
 * (`retry`, `request`, `redirect`, `breaker`), `health()`, `debugInfo()`, the retry budget; the kept 503's
 * connection (reused) and a kept 503 whose body stalls (child process); chains (GET and keyed POST move on, a
 * keyless POST after an earlier endpoint's 503), a hedged chain; `resilientProxy` (GET); the ky client;
 * `execute`; nested layers of one copy (the outer follows, or the inner); nested layers of two copies (plain,
 * chain), and `failureResponse` on the other copy's error.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: the three):
 * 1. The fix's own case, through a layer of another copy of the package. docs/retry.md says a refused later hop
 *    rejects with `afterRedirect: true` ("a POST without a key must not be sent again"), errors.ts that the guards
 *    work "across … duplicated copies of the package", docs/retry.md that an outer layer "takes the request as not
 *    sent only when nothing the inner layer tried may have had it". Observed: an outer layer (`redirects:
 *    "platform"`) over an inner layer of another copy; a keyless POST, A declines it (503), the outer retries, A has
 *    it again and answers the redirect, whose hop the inner layer refuses (B open) with a `CircuitOpenError`
 *    carrying `afterRedirect: true`: the outer call *resolves with the first 503* (`redirected` false), "declined,
 *    send again" of a job A had. Source: src/http/send/send-with-retries.ts `retried()`: it tells a refused hop
 *    from a refused retry by `failedAfterRedirect` (src/http/send/follow-redirects.ts), a WeakSet of this copy's
 *    module, never by the error's own public `afterRedirect`; `isCircuitOpenError` (name-based) says "refusal".
 * 2. The same cause in a chain, SECURITY.md "A paid request is never processed twice": an outer chain `[a, c]` over
 *    an inner layer of another copy; a's keyless POST reaches A, whose redirect hop the inner layer refuses
 *    (`afterRedirect: true`); the chain moves on and c processes the job too (resolves 200 from c). Source:
 *    src/http/send/classify.ts `maySendAgain`: `failureReason` calls any `CircuitOpenError` "circuit open",
 *    `notSent: true`, and only this copy's `failedAfterRedirect` overrides it.
 * 3. `failureResponse` on that error: its JSDoc promises a `502` for "a redirect's later hop refused by its open
 *    circuit"; given the other copy's `CircuitOpenError` with `afterRedirect: true` it answers `503` with
 *    `Retry-After` (a client may send it again). Source: src/cloudflare/failure-response.ts `declined`, again the
 *    WeakSet, not the field.
 *
 * Held (plain `it`):
 * - GET with the refused hop on the 3rd attempt (503, 503, then the redirect): rejects with B's `CircuitOpenError`
 *   flagged, no 4th attempt; 2 `retry` events, 1 `redirect`, a `request` event (error `CircuitOpenError`, 3
 *   attempts); A's breaker closed (the redirect its success), B open; `retriesAllowed` 2; `debugInfo()` lists the
 *   error under A's key.
 * - Keyed POST with the refused hop on the 4th attempt: rejects flagged, A had it 4 times, B nothing.
 * - B half-open, its probe taken by this call's own first attempt (B's 503 re-opens it, A's answer is that 503):
 *   the GET's retry is refused at the hop, flagged; B was sent one request.
 * - `durableObjectStore`, another isolate holding the only lease: the keyless POST's retry is refused at the hop,
 *   flagged, B sent nothing more; the caller's abort while that hop waits for the lease rejects with its reason.
 * - The kept 503 is dropped without holding its connection: the retry goes on the same socket; a kept 503 whose
 *   body stalls: the call rejects at once (flagged), the process exits within the 1 s drain bound, no unhandled
 *   rejection, the server sees that exchange closed.
 * - `Request` input (keyless POST): flagged, A had the body twice ("job").
 * - Chains: GET and keyed POST move on to c after a's retry's refused hop (200 from c); chain `[c, a]`, keyless
 *   POST: c declines, a's retry's hop refused: `FallbackExhaustedError` (a flagged), never c's 503, proxy-style 502;
 *   hedged keyed-POST chain: settles with c's own answer, a's retry did not resend past its refusal.
 * - `resilientProxy`, GET: 502 without `Retry-After`. ky: the flagged error itself. `execute`: its work ran once
 *   (an open breaker is not retried), rejects with the flagged error.
 * - Nested layers of one copy (outer `redirects: "platform"`, or the outer following): flagged, A had it twice.
 *
 * Docs-silent (not pinned):
 * - A hop to B never takes B's bulkhead slot (docs/breakers.md: "a redirect's hop to another host runs inside the
 *   attempt that holds the first host's slot"), so a full bulkhead at B never refuses a hop in one layer; through a
 *   nested layer it does, as a `BulkheadRejectedError` ("nothing was sent", says the table) with no
 *   `afterRedirect` field, though the first host had the request (the layer itself tells it by its WeakSet).
 * - The chain's `fallback` event names a's refused hop "circuit open", as for an endpoint skipped unsent.
 * - test/helpers/object-namespace.ts shares one storage among all objects, so a second host's object reads the
 *   first host's state (A half-open there after B opened): this file uses a namespace of its own.
 */
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it, vi } from "vitest";
import {
  BreakerStateObject,
  type DurableObjectNamespaceLike,
  durableObjectStore,
  failureResponse,
  resilientProxy,
} from "../../src/cloudflare/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  type CircuitOpenError,
  createResilience,
  type FallbackExhaustedError,
  getResilienceInfo,
  isCircuitOpenError,
  isFallbackExhaustedError,
  type RequestEvent,
  type RetryEvent,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, type HttpUpstream, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { Storage } from "../helpers/object-namespace.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream(); // declines (503), then answers with a redirect to B
const B = httpUpstream(); // the redirect's target: open, or half-open with its probe taken
const C = httpUpstream(); // a spare
serveDuringFile(A, B, C);

const ROOT = resolve(import.meta.dirname, "../..");
const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const, maxAttempts: 4 };
/** Three failures open a host: A's one or two 503s leave it closed, so the layer retries. */
const breaker3 = { failureThreshold: 3, timeout: 60_000 };
const T0 = Date.UTC(2026, 0, 1);

const redirectTo =
  (target: () => string, status = 307) =>
  (h: Hit) => {
    h.res.statusCode = status;
    h.res.setHeader("location", target());
    h.res.end();
  };
const decline = (h: Hit) => {
  h.res.statusCode = 503;
  h.res.end("busy");
};
/** A declines its first `busy` requests, then redirects to B. */
const busyThenRedirect =
  (busy = 1) =>
  (h: Hit) =>
    h.n <= busy ? decline(h) : redirectTo(() => `${B.base}/x`)(h);
/** Odd requests declined, even ones redirected (each call: a 503, then a redirect). */
const alternate = (h: Hit) => (h.n % 2 === 1 ? decline(h) : redirectTo(() => `${B.base}/x`)(h));

/** Opens `host` in `layer`: a call whose attempts all get 503 (3 of them: failureThreshold 3). */
async function open(layer: { fetch: typeof fetch }, host: HttpUpstream = B) {
  host.on((h) => {
    h.res.statusCode = 503;
    h.res.end("down");
  });
  await (await layer.fetch(`${host.base}/trip`)).text();
  host.reset();
}

const settle = (promise: Promise<Response>) =>
  promise.then(
    (res) => res,
    (error: unknown) => error,
  );
const sent = (h: HttpUpstream) => h.hits.map((hit) => `${hit.method} ${hit.path} ${hit.body}`);

/** A Durable Object namespace over the real `BreakerStateObject`, one storage per object, as in workerd. */
function namespaceOf(
  clock: TestClock,
  onAsk?: (path: string) => Promise<void> | undefined,
): DurableObjectNamespaceLike {
  const objects = new Map<string, { object: BreakerStateObject; ready: Promise<unknown> }>();
  return {
    idFromName: (name: string) => name,
    get: (id: never) => ({
      fetch: async (input: string, init?: RequestInit) => {
        const name = id as unknown as string;
        let entry = objects.get(name);
        if (!entry) {
          const made: { ready: Promise<unknown> } = { ready: Promise.resolve() };
          const object = new BreakerStateObject(
            {
              storage: new Storage(),
              blockConcurrencyWhile: (callback) => {
                const run = callback();
                made.ready = run;
                return run;
              },
            },
            {},
            clock,
          );
          entry = { object, ready: made.ready };
          objects.set(name, entry);
        }
        await entry.ready;
        const hold = onAsk?.(new URL(input).pathname);
        if (hold) await hold;
        return entry.object.fetch(new Request(input, init));
      },
    }),
  } as DurableObjectNamespaceLike;
}

function ctxOf() {
  const tasks: Promise<unknown>[] = [];
  return {
    waitUntil(promise: Promise<unknown>) {
      tasks.push(promise);
    },
    async settle() {
      for (let done = 0; done < tasks.length; ) {
        const end = tasks.length;
        await Promise.all(tasks.slice(done, end));
        done = end;
      }
    },
  };
}

describe("plain calls: the refused hop on a later attempt", () => {
  it("GET on the 3rd attempt: rejects flagged, no 4th; events, health, budget and debugInfo say so", async () => {
    const layer = createResilience({ retry: fast, breaker: breaker3 });
    await open(layer);
    const retries: RetryEvent[] = [];
    const requests: RequestEvent[] = [];
    const redirects: unknown[] = [];
    layer.on("retry", (e) => retries.push(e));
    layer.on("request", (e) => requests.push(e));
    layer.on("redirect", (e) => redirects.push(e));
    A.on(busyThenRedirect(2));
    const error = await rejection(layer.fetch(`${A.base}/get`));
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect(A.hits.length).toBe(3);
    expect(B.hits).toEqual([]);
    expect(retries.map((e) => [e.key, e.attempt, e.reason])).toEqual([
      [A.host, 1, "status 503"],
      [A.host, 2, "status 503"],
    ]);
    expect(redirects.length).toBe(1);
    expect(requests).toEqual([
      expect.objectContaining({ key: A.host, error: "CircuitOpenError", attempts: 3, outcome: "error" }),
    ]);
    const health = layer.health();
    expect(health.breakers[A.host]?.state ?? "closed").toBe("closed");
    expect(health.breakers[B.host]?.state).toBe("open");
    // The B trip's 2 retries and the GET's 2.
    expect(health.budget?.retriesAllowed).toBe(4);
    const recent = layer.debugInfo().recentErrors.filter((e) => e.key === A.host);
    expect(recent.map((e) => e.error)).toEqual(["CircuitOpenError"]);
  });

  it("keyed POST on the 4th attempt: rejects flagged; A had it 4 times, B nothing", async () => {
    const layer = createResilience({ retry: fast, breaker: { failureThreshold: 4, timeout: 60_000 } });
    B.on(decline);
    await (await layer.fetch(`${B.base}/trip`)).text();
    expect(layer.health().breakers[B.host]?.state).toBe("open");
    B.reset();
    A.on(busyThenRedirect(3));
    const error = await rejection(
      layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job", headers: { "idempotency-key": "k4" } }),
    );
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect(sent(A)).toEqual(Array(4).fill("POST /jobs job"));
    expect(B.hits).toEqual([]);
  });

  it("a Request input (keyless POST): flagged; A had the body twice, B nothing", async () => {
    const layer = createResilience({ retry: fast, breaker: breaker3 });
    await open(layer);
    A.on(busyThenRedirect(1));
    const error = await rejection(layer.fetch(new Request(`${A.base}/jobs`, { method: "POST", body: "job" })));
    expect(error).toMatchObject({ name: "CircuitOpenError", afterRedirect: true });
    expect(sent(A)).toEqual(["POST /jobs job", "POST /jobs job"]);
    expect(B.hits).toEqual([]);
  });

  it("B re-opened by this call's own first attempt (its hop was B's probe): the GET's retry is refused flagged", async () => {
    const clock = new TestClock(T0);
    const oneProbe = { failureThreshold: 2, timeout: 10_000, halfOpenMaxCalls: 1, failureRate: undefined } as never;
    const layer = createResilience({ clock, retry: fast, breaker: oneProbe });
    B.on(decline);
    await (await clock.run(layer.fetch(`${B.base}/trip`))).text();
    await clock.advance(10_001);
    expect(layer.health().breakers[B.host]?.state).toBe("half_open");
    B.reset();
    B.on(decline);
    A.on(redirectTo(() => `${B.base}/x`));
    const error = await rejection(clock.run(layer.fetch(`${A.base}/get`)));
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect(A.hits.length).toBe(2);
    expect(B.hits.map((h) => h.path)).toEqual(["/x"]);
  });

  it("the kept 503 is dropped without holding its connection: the retry goes on the same socket", async () => {
    const layer = createResilience({ retry: { ...fast, initialDelay: 20, maxDelay: 20 }, breaker: breaker3 });
    await open(layer);
    A.on(busyThenRedirect(1));
    const error = await rejection(layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    expect(error).toMatchObject({ afterRedirect: true });
    expect(A.hits.length).toBe(2);
    expect(A.hits[1]?.req.socket).toBe(A.hits[0]?.req.socket);
  });

  it("a kept 503 whose body stalls: the call rejects at once, the process exits within the 1 s drain bound", async () => {
    A.on((h) => {
      if (h.path.startsWith("/trip")) {
        h.res.statusCode = 503;
        h.res.end("down");
      } else if (h.path === "/jobs" && A.hits.filter((x) => x.path === "/jobs").length === 1) {
        h.res.writeHead(503, { "content-type": "text/plain" });
        h.res.write("busy, and more to come");
      } else redirectTo(() => `${B.base}/x`)(h);
    });
    B.on(decline);
    const script = `
const { createResilience } = await import(${JSON.stringify(pathToFileURL(resolve(ROOT, "src/index.ts")).href)});
const unhandled = [];
process.on("unhandledRejection", (r) => unhandled.push(String(r)));
const layer = createResilience({ retry: { initialDelay: 1, maxDelay: 2, jitter: "none", maxAttempts: 4 }, breaker: { failureThreshold: 3, timeout: 60000 } });
await (await layer.fetch(process.env.B + "/trip")).text();
const t0 = Date.now();
const outcome = await layer.fetch(process.env.A + "/jobs", { method: "POST", body: "job" }).then(
  (r) => "resolved " + r.status,
  (e) => e.name + " " + e.afterRedirect,
);
console.log("REPORT " + JSON.stringify({ outcome, settledMs: Date.now() - t0 }));
process.on("exit", () => console.log("EXIT " + unhandled.length));
`;
    const run = await new Promise<{ stdout: string; lagMs: number }>((done, fail) => {
      const child = spawn(
        process.execPath,
        ["--experimental-strip-types", "--no-warnings", "--input-type=module", "-e", script],
        { cwd: ROOT, env: { ...process.env, A: A.base, B: B.base }, stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      let reportedAt = 0;
      child.stdout.on("data", (d: Buffer) => {
        stdout += d.toString();
        if (reportedAt === 0 && stdout.includes("REPORT ")) reportedAt = Date.now();
      });
      const kill = setTimeout(() => child.kill("SIGKILL"), 8_000);
      child.on("error", fail);
      child.on("exit", () => {
        clearTimeout(kill);
        done({ stdout, lagMs: reportedAt ? Date.now() - reportedAt : Number.POSITIVE_INFINITY });
      });
    });
    const line = run.stdout.split("\n").find((l) => l.startsWith("REPORT ")) ?? "REPORT {}";
    const report = JSON.parse(line.slice(7)) as { outcome?: string; settledMs?: number };
    expect(report.outcome).toBe("CircuitOpenError true");
    expect(report.settledMs).toBeLessThan(500);
    expect(run.stdout).toContain("EXIT 0");
    expect(run.lagMs).toBeLessThan(1_800);
    const stalled = A.hits.find((h) => h.path === "/jobs");
    await stalled?.closed;
    expect(A.hits.filter((h) => h.path === "/jobs").length).toBe(2);
  }, 15_000);
});

describe("half-open B in a Durable Object: the only lease held by another isolate", () => {
  const oneProbe = { failureThreshold: 2, timeout: 10_000, halfOpenMaxCalls: 1, failureRate: undefined } as never;

  async function twoIsolates(onAsk?: (path: string) => Promise<void> | undefined) {
    const clock = new TestClock(T0);
    const namespace = namespaceOf(clock, onAsk);
    const isolate = () => {
      const ctx = ctxOf();
      const layer = createResilience({
        clock,
        retry: fast,
        breaker: oneProbe,
        store: durableObjectStore(namespace, { clock, ctx }),
      });
      return { ctx, layer };
    };
    const one = isolate();
    const two = isolate();
    await (await one.layer.fetch(`${B.base}/0`)).text();
    await (await two.layer.fetch(`${B.base}/0`)).text();
    await one.ctx.settle();
    await two.ctx.settle();
    await clock.advance(1_000);
    B.on((h) => {
      h.res.statusCode = 500;
      h.res.end("down");
    });
    await (await clock.run(one.layer.fetch(`${B.base}/trip`))).text();
    await one.ctx.settle();
    await clock.advance(11_000);
    two.layer.health();
    await two.ctx.settle();
    expect(two.layer.health().breakers[B.host]?.state).toBe("half_open");
    const held: { release: () => void } = { release: () => {} };
    B.on((h) => {
      held.release = () => h.res.end("ok");
    });
    const probe = one.layer.fetch(`${B.base}/probe`);
    await B.nth(5);
    return { clock, two, held, probe };
  }

  it("the keyless POST's retry is refused at the hop, flagged; B sent nothing more", async () => {
    const { clock, two, held, probe } = await twoIsolates();
    A.on(busyThenRedirect(1));
    const error = await rejection(clock.run(two.layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" })));
    held.release();
    expect((await probe).status).toBe(200);
    expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    expect(sent(A)).toEqual(["POST /jobs job", "POST /jobs job"]);
    expect(B.hits.map((h) => h.path)).toEqual(["/0", "/0", "/trip", "/trip", "/probe"]);
  });

  it("the caller's abort while the retry's hop waits for the lease rejects with its reason, B sent nothing", async () => {
    const controller = new AbortController();
    const reason = new Error("caller gone");
    let armed = false;
    const { clock, two, held, probe } = await twoIsolates((path) => {
      if (!armed || !path.includes("probe")) return undefined;
      // The object is asked for B's lease by the retry's hop: the caller gives up now, the object never answers.
      controller.abort(reason);
      return new Promise<void>(() => {});
    });
    armed = true;
    A.on(busyThenRedirect(1));
    const outcome = await settle(
      clock.run(two.layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job", signal: controller.signal })),
    );
    held.release();
    await probe;
    expect(outcome).toBe(reason);
    expect(A.hits.length).toBe(2);
    expect(B.hits.map((h) => h.path)).toEqual(["/0", "/0", "/trip", "/trip", "/probe"]);
  });
});

describe("chains, the proxy, ky, execute, nested layers of one copy", () => {
  const chainOf = (endpoints: Array<{ name: string; url: string }>, extra: object = {}) =>
    createResilience({ retry: fast, breaker: breaker3, fallback: fallback([{ name: "jobs", endpoints, ...extra }]) });

  it("GET and keyed POST move on to c after a's retry's refused hop", async () => {
    const layer = chainOf([
      { name: "a", url: `${A.base}/v1` },
      { name: "c", url: `${C.base}/v1` },
    ]);
    await open(layer);
    A.on(alternate);
    const get = await layer.fetch(`${A.base}/v1/get`);
    expect(get.status).toBe(200);
    expect(getResilienceInfo(get)?.endpoint).toBe("c");
    const keyed = await layer.fetch(`${A.base}/v1/jobs`, {
      method: "POST",
      body: "job",
      headers: { "idempotency-key": "k" },
    });
    expect(keyed.status).toBe(200);
    expect(sent(A)).toEqual(["GET /v1/get ", "GET /v1/get ", "POST /v1/jobs job", "POST /v1/jobs job"]);
    expect(sent(C)).toEqual(["GET /v1/get ", "POST /v1/jobs job"]);
  });

  it("chain [c, a], keyless POST: c declines, a's retry's hop is refused: rejects, never with c's 503", async () => {
    const layer = chainOf([
      { name: "c", url: `${C.base}/v1` },
      { name: "a", url: `${A.base}/v1` },
    ]);
    await open(layer);
    C.on(decline);
    A.on(alternate);
    const outcome = await settle(layer.fetch(`${C.base}/v1/jobs`, { method: "POST", body: "job" }));
    expect(isFallbackExhaustedError(outcome)).toBe(true);
    expect((outcome as FallbackExhaustedError).errors.a).toMatchObject({
      name: "CircuitOpenError",
      afterRedirect: true,
    });
    expect(sent(A)).toEqual(["POST /v1/jobs job", "POST /v1/jobs job"]);
    expect(failureResponse(outcome).status).toBe(502);
  });

  it("a hedged keyed-POST chain settles with c's own answer; a was not resent past its refused hop", async () => {
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 3, initialDelay: 30, maxDelay: 30 },
      breaker: breaker3,
      fallback: fallback([
        {
          name: "jobs",
          hedge: { delay: 10 },
          endpoints: [
            { name: "a", url: `${A.base}/v1` },
            { name: "c", url: `${C.base}/v1` },
          ],
        },
      ]),
    });
    await open(layer);
    A.on(alternate);
    C.on((h) => {
      h.res.statusCode = 201;
      h.res.end("c took it");
    });
    const res = await layer.fetch(`${A.base}/v1/jobs`, {
      method: "POST",
      body: "job",
      headers: { "idempotency-key": "k" },
    });
    expect(res.status).toBe(201);
    expect(getResilienceInfo(res)?.endpoint).toBe("c");
    expect(A.hits.length).toBeLessThanOrEqual(2);
  });

  it("resilientProxy, GET: the refused hop on the retry is a 502 without Retry-After", async () => {
    const proxy = resilientProxy({
      routes: [
        { path: "/a", upstream: A.base },
        { path: "/b", upstream: B.base },
      ],
      resilience: { retry: fast, breaker: breaker3 },
    });
    const ctx = { waitUntil: () => {} };
    B.on(decline);
    await (await proxy.fetch(new Request("https://proxy.example/b/trip"), {}, ctx)).text();
    B.reset();
    A.on(busyThenRedirect(1));
    const res = await proxy.fetch(new Request("https://proxy.example/a/get"), {}, ctx);
    expect(res.status).toBe(502);
    expect(res.headers.get("retry-after")).toBeNull();
    expect(A.hits.length).toBe(2);
    expect(B.hits).toEqual([]);
  });

  it("ky: the flagged error itself; execute: its work ran once and rejects with it", async () => {
    const layer = createResilience({ retry: fast, breaker: breaker3 });
    await open(layer);
    A.on(alternate);
    const api = createClient({ resilience: layer, prefix: A.base });
    const viaKy = await rejection(api.post("jobs", { json: { prompt: "cat" } }));
    expect(viaKy).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
    let runs = 0;
    const viaExecute = await rejection(
      layer.execute(async () => {
        runs++;
        return (await layer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" })).status;
      }),
    );
    expect(viaExecute).toMatchObject({ name: "CircuitOpenError", afterRedirect: true });
    expect(runs).toBe(1);
    expect(A.hits.length).toBe(4);
  });

  it("nested layers of one copy (the inner follows, or the outer): flagged, A had the keyless POST twice", async () => {
    const inner = createResilience({ retry: false, breaker: breaker3 });
    for (let i = 0; i < 3; i++) await open(inner);
    expect(inner.health().breakers[B.host]?.state).toBe("open");
    for (const redirects of ["platform", "library"] as const) {
      A.reset();
      A.on(alternate);
      const outer = createResilience({ retry: fast, fetch: inner.fetch, redirects });
      const error = await rejection(outer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
      expect(error).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
      expect(sent(A)).toEqual(["POST /jobs job", "POST /jobs job"]);
    }
    expect(B.hits).toEqual([]);
  });
});

describe("an inner layer of another copy of the package (defects)", () => {
  let other: typeof import("../../src/index.ts");
  beforeAll(async () => {
    vi.resetModules();
    other = await import("../../src/index.ts");
  });

  /** An inner layer of the other copy, B open there (two 503s, `failureThreshold: 2`). */
  async function otherInner() {
    expect(other.createResilience).not.toBe(createResilience);
    const inner = other.createResilience({ retry: false, breaker: { failureThreshold: 2, timeout: 60_000 } });
    B.on(decline);
    await (await inner.fetch(`${B.base}/trip`)).text();
    await (await inner.fetch(`${B.base}/trip`)).text();
    B.reset();
    // The other copy's error is a CircuitOpenError by this copy's guard, with the field set.
    A.on(redirectTo(() => `${B.base}/x`));
    const flagged = await rejection(inner.fetch(`${A.base}/probe`, { method: "POST", body: "probe" }));
    expect(isCircuitOpenError(flagged)).toBe(true);
    expect((flagged as CircuitOpenError).afterRedirect).toBe(true);
    A.reset();
    return { inner, flagged };
  }

  it("1. the outer's retry: rejects flagged, never with the 503 before it (A had the keyless POST)", async () => {
    const { inner } = await otherInner();
    A.on(alternate);
    const outer = createResilience({ retry: fast, fetch: inner.fetch, redirects: "platform" });
    const outcome = await settle(outer.fetch(`${A.base}/jobs`, { method: "POST", body: "job" }));
    expect(sent(A)).toEqual(["POST /jobs job", "POST /jobs job"]);
    // Observed: resolves with the first attempt's 503 (`redirected` false), which says "declined, send again".
    expect(outcome).toMatchObject({ name: "CircuitOpenError", key: B.host, afterRedirect: true });
  });

  it("2. an outer chain does not move a keyless POST on after a's refused hop: c never gets it", async () => {
    const { inner } = await otherInner();
    A.on(redirectTo(() => `${B.base}/x`));
    const outer = createResilience({
      retry: fast,
      fetch: inner.fetch,
      redirects: "platform",
      fallback: fallback([
        {
          name: "jobs",
          endpoints: [
            { name: "a", url: `${A.base}/v1` },
            { name: "c", url: `${C.base}/v1` },
          ],
        },
      ]),
    });
    const outcome = await settle(outer.fetch(`${A.base}/v1/jobs`, { method: "POST", body: "job" }));
    expect(sent(A)).toEqual(["POST /v1/jobs job"]);
    // Observed: resolves 200 from c: c processed the job A had.
    expect(sent(C)).toEqual([]);
    expect(isFallbackExhaustedError(outcome)).toBe(true);
  });

  it("3. failureResponse answers the other copy's flagged refusal with 502, not a 503 to resend on", async () => {
    const { flagged } = await otherInner();
    const res = failureResponse(flagged);
    // Observed: 503 with Retry-After.
    expect(res.status).toBe(502);
    expect(res.headers.get("retry-after")).toBeNull();
  });
});
