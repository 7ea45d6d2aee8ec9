/**
 * Outside-in attack on docs/fallback.md, sentence by sentence (`validate`, adaptive order, hedging,
 * routing/rebasing, `transform`, `respond`, what counts against which breaker, `FallbackExhaustedError`, events),
 * the README's fallback quick start and the JSDoc of `@storycore/resilient-fetch/fallback`.
 *
 * Docs:
 * - docs/fallback.md: "`validate` reads at most `maxReplayBytes` of the body, within `timeout.attempt` (else 30 s):
 *   a body that stalls or never ends fails validation (…), and so does one whose schema throws or rejects, or has
 *   not settled within that time again once the body was read (the answer is kept, as for any other failed
 *   body; …)"; "So does a 2xx that fails `validate`: the endpoint took the job, and the call resolves with that
 *   answer as it is (`getResilienceInfo(res)` names the endpoint)."
 * - docs/fallback.md `hedge`: "once a `transform` has made one that may not be sent twice, a POST without a key, no
 *   hedge starts while it is out (until its answer is judged, `validate` included), and no endpoint is sent beside
 *   one: such an endpoint is held back, not counted, and tried once nothing else runs"; "an endpoint that fails
 *   while another still runs is left for the next one at once, as without a hedge; the first acceptable answer
 *   wins and the others are aborted (their upstreams see the connection closed); all are counted"; `order:
 *   "adaptive"`: "A hedge that lost counts there as a call that did not serve, as in `statistics()` (its host's
 *   breaker does not count it): an endpoint that keeps losing to its hedge moves down."
 * - docs/fallback.md `respond`: "One that throws or rejects sent nothing, so the call moves on to the next endpoint
 *   whatever its method, as after a `transform` that fails; so does one that answers with no `Response` fetch would
 *   give (`undefined`, the Cache API's miss; `Response.error()`; any other value), a `TypeError` naming the
 *   endpoint."
 * - docs/fallback.md: "A body sent once (a stream, or larger than `maxReplayBytes`) goes to one endpoint only";
 *   "and the body is replayed"; "Moving on follows the rule of a retry … after a 500, a reset or a timeout the
 *   chain ends there"; "When every endpoint failed, the call resolves with the last response any endpoint gave …,
 *   or rejects with `FallbackExhaustedError` (`errors` per endpoint; its message lists them in the order they
 *   failed, its `cause` is the last one's error) … (a chain that stopped early says after which endpoint and why
 *   …); an endpoint skipped for its open breaker has that breaker's `CircuitOpenError` there, with `retryAt`";
 *   "Credentials never cross origins … An endpoint's own `headers` … are sent … The same holds for hedges and
 *   redirects"; "then that of the host the `transform` sends it to"; "Outside a chain `endpoint` is the host the
 *   call was sent to, the first one when the layer followed redirects (its breaker counted the answer); `res.url`
 *   says where they ended"; docs/retry.md "## Redirects" (301/302/303 turn a POST into a GET, 307/308 replay,
 *   "the final status counts against the first host's breaker", credentials dropped at a change of origin);
 *   SECURITY.md "never after … a redirect (whatever its target answers)"; docs/degradation.md "A call that goes
 *   down a fallback chain is rewritten once …" and the level header "to another origin (a fallback endpoint, a
 *   redirect) it goes … only when named in `crossOriginHeaders`"; docs/health-and-events.md `fallback` (`chain`,
 *   `from`, `reason`, `next`); README quick start ("with no Idempotency-Key, a dropped connection does not move on
 *   to the backup: set `retry: { idempotencyKey: true }` …"); docs/retry.md "## ky".
 *
 * How: `createResilience`, `getResilienceInfo`, `FallbackExhaustedError`, `isCircuitOpenError` (root), `fallback`
 * (./fallback), `degradation` (./degradation), `createClient` (./ky), `TestClock`, `recordEvents` (./testing); three
 * node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts) and a refused origin; Standard Schemas written
 * inline (one whose `validate` throws what a test gives).
 *
 * Paths: plain chain call (GET, keyless and keyed POST, PUT), `Request` input (FormData, JSON, a stream past
 * `maxReplayBytes`), `init` bodies (FormData, Blob, stream), redirects 301/302/303/307/308 from an endpoint to
 * another local server, hedged chains (adaptive order, a `respond` beside a `transform`-made POST, a hedge's 307
 * onward), a degradation rewrite with a level header on top, the ky client, a plain call beside a chain.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; fixed in the fifty-second session, so plain
 * `it`):
 * 1. docs/fallback.md "and so does one whose schema throws or rejects … (the answer is kept, as for any other
 *    failed body" / "the call resolves with that answer as it is". Observed: a schema that throws (or rejects with)
 *    a value `String()` cannot read, a null-prototype object or a revoked Proxy, loses the answer: a GET whose only
 *    endpoint answered 200 rejects with `FallbackExhaustedError` "… failed (a: Cannot convert object to primitive
 *    value)" (event reason "TypeError: …", not "invalid body: …"); a keyless POST rejects with "stopped after "a",
 *    which may have processed the request … (a: Cannot perform 'get' on a proxy that has been revoked)" instead of
 *    resolving with the 200. An `Error` thrown or rejected keeps the answer (held). Source:
 *    src/fallback/validate-response.ts `validateResponse`: the catch around the schema builds
 *    `invalid body: validate failed (${String(error)})`, and that `String()` throws out of the catch; the verdict
 *    rejects, and src/policies/fallback-chain.ts `#attempt` takes it as the endpoint's error, discarding the answer.
 * 2. docs/fallback.md `hedge` "no endpoint is sent beside one: such an endpoint is held back, not counted, and
 *    tried once nothing else runs". Observed: chain a (503) → `cache` (`respond`, still running) → b (a `transform`
 *    turning the GET into a POST without a key): at the hedge delay b's POST is sent beside the running `respond`;
 *    when the `respond` answers it wins and b's POST is aborted mid-flight (b's upstream had the job, then the
 *    connection closed), b counted as a call without success. Beside a running network endpoint the same b is held
 *    back (held). Source: src/fallback/hedge-ledger.ts: a `respond` is only `answered` (added to `#tried`), never
 *    put in `#out`, so `send(name, unsafe)` sees nothing out.
 * 3. docs/fallback.md `respond` "… any other value), a `TypeError` naming the endpoint". Observed: a `respond` that
 *    answers a revoked Proxy fails with "Cannot perform 'get' on a proxy that has been revoked", which names no
 *    endpoint (the chain does move on). Source: src/fallback/try-endpoints.ts `tryEndpoint`:
 *    `.then((view) => respond(view))` resolves the promise with the value, which reads its `then` before
 *    `answerOf` can look at it.
 *
 * Held (plain `it`):
 * - `validate` throwing or rejecting with an `Error`: a GET moves on (event reason "invalid body: validate failed
 *   (Error: boom)"), a keyless POST resolves with the answer as it is, headers and body whole, endpoint "a".
 * - Hedge: the loser counted once (1 call, 0 successes), its breaker untouched, no `breaker` or `fallback` event,
 *   its connection closed, adaptive order then ["b", "a"], no timer left; a primary's 503 while `validate` reads the
 *   hedge's body: counted, event `next` the running hedge, the hedge then wins; a `transform`-made keyless POST is
 *   held back beside a running network endpoint and sent once that one failed.
 * - Redirects: a keyed FormData POST (a `Request`) redirected 301/302/303 (GET, no body) or 307/308 (POST, the
 *   form) to a 503: the next endpoint gets the POST with the same bytes and multipart label, the key, no
 *   `authorization`; one `fallback` event; the first host's breaker counts the 503, the target has none. A keyless
 *   POST redirected to a 503 ends there with that answer (`url`, `redirected`, endpoint "a"), the next sent
 *   nothing, no event. A Blob PUT's bytes and type reach the hop and the next endpoint.
 * - Bodies sent once: an `init` stream goes to one endpoint, no hedge, its 503 the answer; a `Request` stream past
 *   `maxReplayBytes` whose endpoint refused the connection: `FallbackExhaustedError` "stopped after "r", … (its body
 *   could be sent only once)", `errors` only "r", `cause` it, no query in the message.
 * - `FallbackExhaustedError`: open breaker's `CircuitOpenError` (`retryAt` the breaker's `openUntil`), then refused,
 *   then reset: `errors` a, r, c; message in that order; `cause` c's; no URL secret; events "circuit open" → r → c;
 *   the passed-over endpoint not counted; `request` event `key` "j". Every endpoint failing with one response: the
 *   last response (502, `Retry-After`), endpoint "b" whose `transform` sent it to C, C's breaker counting, B's none.
 * - Credentials: a hedge to another origin sends the allowlist, `crossOriginHeaders`, its own `authorization`, not
 *   `cookie`, `x-api-key`, `proxy-authorization`, others; its 307 onward drops its own key (`redirect` event
 *   `dropped: ["authorization"]`) and replays the body. Degradation on top: every endpoint gets the rewritten body,
 *   the level header and `authorization` stay home, the `transform` sees the rewritten body.
 * - ky: a FormData POST replayed with its label, a `transform`'s JSON body sent as `application/json`, the
 *   client's `authorization` kept home; `validate` moves a GET on; every endpoint declining gives `HTTPError` whose
 *   `response` keeps `Retry-After` and names the last endpoint.
 * - `respond` that rejects, answers `undefined` or `Response.error()`: a keyless POST moves on, the `TypeError`s
 *   name the endpoint. README: a keyless POST whose connection dropped stops at the primary; with
 *   `retry.idempotencyKey` it moves on to the backup under the same key. A plain call beside a chain: `endpoint`
 *   the first host of a followed redirect, its breaker counting, `res.url` where it ended.
 *
 * Docs-silent (not pinned):
 * - A 2xx that fails `validate` is its host breaker's success (after a 307 to another host too: the first host
 *   counts no failure while the chain moves on).
 * - A held-back endpoint's `transform` runs again when it is tried: twice in one call.
 * - A 301/302/303 hop of a keyed POST to another origin carries the `Idempotency-Key` (allowlisted) on the GET it
 *   becomes: a server that keys on it sees one key for two different requests.
 * - `getResilienceInfo(res).attempts` after a hedge win counts the loser's attempt (2).
 */
import { afterEach, describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  createResilience,
  FallbackExhaustedError,
  getResilienceInfo,
  isCircuitOpenError,
  type StandardSchemaLike,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const busy = (hit: Hit): void => {
  hit.res.writeHead(503, { "content-type": "text/plain" }).end("busy");
};
const json =
  (value: unknown) =>
  (hit: Hit): void => {
    hit.res.writeHead(200, { "content-type": "application/json", "x-from": "upstream" }).end(JSON.stringify(value));
  };
const hang = (_hit: Hit): void => {};

type Chain = Parameters<typeof fallback>[0][number];
type Options = Omit<NonNullable<Parameters<typeof createResilience>[0]>, "fallback">;

function chainLayer(
  endpoints: Chain["endpoints"],
  extra: Omit<Chain, "name" | "endpoints"> = {},
  options: Options = {},
) {
  return createResilience({ retry: false, ...options, fallback: fallback([{ name: "j", endpoints, ...extra }]) });
}

/** Real I/O turns (the TestClock does not move) until `done()`. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  if (!done()) throw new Error("condition never met");
}
async function turns(n = 25): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setTimeout(resolve, 2));
}

/** A Standard Schema accepting `{ ok: true }`. */
const okSchema: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "test",
    validate: (value: unknown) =>
      (value as { ok?: unknown } | null)?.ok === true ? { value } : { issues: [{ message: "not ok" }] },
  },
};

/** A Standard Schema whose `validate` throws (or rejects with) what `make` gives. */
function throwingSchema(make: () => unknown, rejects = false): StandardSchemaLike {
  return {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: () => {
        if (rejects) return Promise.reject(make());
        throw make();
      },
    },
  } as StandardSchemaLike;
}

const revoked = (): unknown => {
  const { proxy, revoke } = Proxy.revocable(new Error("x"), {});
  revoke();
  return proxy;
};

const SECRET = "Bearer sk-live-0123456789abcdef";

afterEach(() => {
  a.reset();
  b.reset();
  c.reset();
});

async function outcome(call: Promise<Response>): Promise<string> {
  return call.then(
    async (res) => `${res.status} ${getResilienceInfo(res)?.endpoint} ${await res.text()}`,
    (error: unknown) => `${(error as Error).name}: ${(error as Error).message}`,
  );
}

// ---------------------------------------------------------------------------

describe("validate that throws or rejects: the answer is kept", () => {
  it("held: a schema that throws an Error (or rejects with one) fails the body: a GET moves on, a keyless POST resolves with the answer", async () => {
    for (const rejects of [false, true]) {
      a.reset();
      b.reset();
      a.on(json({ ok: 1 }));
      b.on(json({ ok: 2 }));
      const layer = chainLayer([
        { name: "a", url: `${a.base}/v1`, validate: throwingSchema(() => new Error("boom"), rejects) },
        { name: "b", url: `${b.base}/v2` },
      ]);
      const recorder = recordEvents(layer);
      expect(await outcome(layer.fetch(`${a.base}/v1/x`))).toBe('200 b {"ok":2}');
      expect(recorder.of("fallback")).toEqual([
        { chain: "j", from: "a", reason: "invalid body: validate failed (Error: boom)", next: "b" },
      ]);
      // A keyless POST: the endpoint took the job, so the call resolves with its answer as it is.
      const res = await layer.fetch(`${a.base}/v1/x`, { method: "POST", body: "{}" });
      expect([rejects, res.status, res.headers.get("x-from")]).toEqual([rejects, 200, "upstream"]);
      expect(getResilienceInfo(res)?.endpoint).toBe("a");
      expect(await res.text()).toBe('{"ok":1}');
      expect(b.hits.length).toBe(1);
      expect(recorder.of("fallback")).toHaveLength(1);
    }
  });

  it("a schema that throws a value String() cannot read (a null-prototype object) fails the body: the GET resolves with the answer", async () => {
    a.on(json({ ok: 1 }));
    const layer = chainLayer([{ name: "a", url: `${a.base}/v1`, validate: throwingSchema(() => Object.create(null)) }]);
    const recorder = recordEvents(layer);
    // Observed: FallbackExhaustedError "every endpoint of fallback chain "j" failed (a: Cannot convert object to
    // primitive value)", the event's reason "TypeError: Cannot convert object to primitive value".
    expect(await outcome(layer.fetch(`${a.base}/v1/x`))).toBe('200 a {"ok":1}');
    expect(recorder.of("fallback")[0]?.reason).toMatch(/^invalid body/);
  });

  it("a schema that rejects with a revoked Proxy fails the body: a keyless POST resolves with that answer, the spare is sent nothing", async () => {
    a.on(json({ ok: 1 }));
    b.on(json({ ok: 2 }));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1`, validate: throwingSchema(revoked, true) },
      { name: "b", url: `${b.base}/v2` },
    ]);
    // Observed: FallbackExhaustedError "fallback chain "j" stopped after "a", which may have processed the
    // request (only one with an Idempotency-Key moves on) (a: Cannot perform 'get' on a proxy that has been revoked)".
    expect(await outcome(layer.fetch(`${a.base}/v1/x`, { method: "POST", body: "{}" }))).toBe('200 a {"ok":1}');
    expect(b.hits.length).toBe(0);
  });
});

// ---------------------------------------------------------------------------

describe("hedging: losers, counting, requests that may not be sent twice", () => {
  it("held: a hedge that lost is counted once as a call that did not serve, its host's breaker counts nothing, and adaptive order moves it down", async () => {
    const clock = new TestClock();
    a.on(hang);
    b.on(json({ ok: true }));
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1`, validate: okSchema },
        { name: "b", url: `${b.base}/v2`, validate: okSchema },
      ],
      { hedge: { delay: 100 }, order: "adaptive" },
      { clock },
    );
    const recorder = recordEvents(layer);
    const call = layer.fetch(`${a.base}/v1/x`);
    await a.nth(1);
    await clock.advance(100);
    const res = await call;
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true });
    expect(await res.json()).toEqual({ ok: true });
    // The loser's upstream sees the connection closed; nothing is counted twice once it has gone.
    await a.hits[0]?.closed;
    await turns(5);
    const stats = layer.fallback.chain("j").statistics();
    expect(stats.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(stats.fallbacks.b).toMatchObject({ calls: 1, successes: 1 });
    expect(layer.health().breakers[a.host]).toMatchObject({ failureCount: 0, consecutiveFailures: 0, state: "closed" });
    expect(recorder.of("breaker")).toEqual([]);
    expect(recorder.of("fallback")).toEqual([]);
    expect(layer.fallback.chain("j").ordered()).toEqual(["b", "a"]);
    expect(clock.pending()).toBe(0);
  });

  it("held: an endpoint that fails beside a running hedge is counted and left at once, its event naming the hedge", async () => {
    const clock = new TestClock();
    a.on(hang);
    b.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/json" });
      hit.res.write('{"ok":');
    });
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v2`, validate: okSchema },
      ],
      { hedge: { delay: 100 } },
      { clock },
    );
    const recorder = recordEvents(layer);
    const call = layer.fetch(`${a.base}/v1/x`);
    const first = await a.nth(1);
    await clock.advance(100);
    const second = await b.nth(1);
    // The first endpoint's 503 comes while `validate` still reads the hedge's body.
    busy(first);
    await until(() => recorder.of("fallback").length > 0);
    expect(recorder.of("fallback")).toEqual([{ chain: "j", from: "a", reason: "status 503", next: "b" }]);
    second.res.end("true}");
    const res = await call;
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(await res.json()).toEqual({ ok: true });
    const stats = layer.fallback.chain("j").statistics();
    expect(stats.fallbacks.a).toMatchObject({ calls: 1, successes: 0 });
    expect(stats.fallbacks.b).toMatchObject({ calls: 1, successes: 1 });
    expect(layer.health().breakers[a.host]?.failureCount).toBe(1);
  });

  it("a POST without a key that a transform made is not sent beside a running `respond`: it waits until nothing else runs", async () => {
    const clock = new TestClock();
    a.on(busy);
    b.on(hang);
    let answer: (() => void) | undefined;
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        {
          name: "cache",
          respond: () =>
            new Promise<Response>((resolve) => {
              answer = () => resolve(new Response("cached"));
            }),
        },
        {
          name: "b",
          url: `${b.base}/v2`,
          // A paid job: a GET turned into a POST without an Idempotency-Key.
          transform: (req) => ({ ...req, method: "POST", body: { job: 1 } }),
        },
      ],
      { hedge: { delay: 100 } },
      { clock },
    );
    const call = outcome(layer.fetch(`${a.base}/v1/x`));
    try {
      await until(() => answer !== undefined);
      // The `respond` still runs when the hedge's delay passes: "b" is held back.
      await clock.advance(100);
      await turns();
      // Observed: b has the POST already (["POST"]), and the `respond`'s answer then aborts it mid-flight.
      expect(b.hits.map((hit) => hit.method)).toEqual([]);
      answer?.();
      expect(await call).toBe("200 cache cached");
      expect(b.hits).toEqual([]);
      expect(layer.fallback.chain("j").statistics().fallbacks.b?.calls).toBe(0);
    } finally {
      answer?.();
      await call;
    }
  });

  it("held: the same POST made by a transform is held back beside a running network endpoint (sent nowhere while it runs)", async () => {
    const clock = new TestClock();
    let shaped = 0;
    a.on(hang);
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        {
          name: "b",
          url: `${b.base}/v2`,
          transform: (req) => {
            shaped++;
            return { ...req, method: "POST", body: { job: 1 } };
          },
        },
      ],
      { hedge: { delay: 100 } },
      { clock },
    );
    const call = outcome(layer.fetch(`${a.base}/v1/x`));
    const first = await a.nth(1);
    await clock.advance(100);
    await turns();
    expect(b.hits).toEqual([]);
    // Once "a" failed (nothing else runs), "b" is tried.
    busy(first);
    expect(await call).toBe("200 b ok");
    expect(b.hits.map((hit) => [hit.method, hit.body])).toEqual([["POST", '{"job":1}']]);
    expect(layer.fallback.chain("j").statistics().fallbacks.b).toMatchObject({ calls: 1, successes: 1 });
    // Docs-silent: its `transform` ran twice, once when held back and once when tried.
    expect(shaped).toBe(2);
  });
});

// ---------------------------------------------------------------------------

describe("redirects from an endpoint, and bodies replayed to the next one", () => {
  const form = (): FormData => {
    const body = new FormData();
    body.append("prompt", "cat");
    body.append("file", new Blob(["PNGDATA"], { type: "image/png" }), "x.png");
    return body;
  };
  const sent = (hit: Hit | undefined) => hit && { method: hit.method, path: hit.path, auth: hit.headers.authorization };

  it("held: a keyed FormData POST (a Request) redirected 301/302/303/307/308 to a 503: the next endpoint gets the POST and the whole form, no credential", async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      a.reset();
      b.reset();
      c.reset();
      a.on((hit) => hit.res.writeHead(status, { location: `${c.base}/done?q=1` }).end());
      c.on(busy);
      const layer = chainLayer([
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v2` },
      ]);
      const recorder = recordEvents(layer);
      const request = new Request(`${a.base}/v1/gen?seed=7`, {
        method: "POST",
        body: form(),
        headers: { "idempotency-key": "job-1", authorization: SECRET },
      });
      const res = await layer.fetch(request);
      expect([status, res.status, getResilienceInfo(res)?.endpoint]).toEqual([status, 200, "b"]);
      await res.text();
      // A 301/302/303 POST goes on as a GET without its body; a 307/308 replays it.
      const replayed = status === 307 || status === 308;
      expect([status, sent(c.hits[0])]).toEqual([
        status,
        { method: replayed ? "POST" : "GET", path: "/done?q=1", auth: undefined },
      ]);
      expect(c.hits[0]?.body.includes("PNGDATA")).toBe(replayed);
      const [first, next] = [a.hits[0] as Hit, b.hits[0] as Hit];
      expect(sent(next)).toEqual({ method: "POST", path: "/v2/gen?seed=7", auth: undefined });
      expect(next.headers["idempotency-key"]).toBe("job-1");
      // The same bytes under the same multipart label, to the next endpoint too.
      expect(next.headers["content-type"]).toBe(first.headers["content-type"]);
      expect(next.body).toBe(first.body);
      expect(next.body).toContain("PNGDATA");
      expect(recorder.of("fallback")).toEqual([{ chain: "j", from: "a", reason: "status 503", next: "b" }]);
      // The final status counts against the first host's breaker; the redirect's target has none of its own.
      expect(layer.health().breakers[a.host]?.failureCount).toBe(1);
      expect(layer.health().breakers[c.host]).toBeUndefined();
    }
  });

  it("held: a keyless POST redirected to a 503 ends the chain there with that answer (url, redirected), the next endpoint sent nothing", async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      a.reset();
      b.reset();
      c.reset();
      a.on((hit) => hit.res.writeHead(status, { location: `${c.base}/done` }).end());
      c.on(busy);
      const layer = chainLayer([
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v2` },
      ]);
      const recorder = recordEvents(layer);
      const res = await layer.fetch(`${a.base}/v1/gen`, { method: "POST", body: form() });
      expect([status, res.status, res.url, res.redirected]).toEqual([status, 503, `${c.base}/done`, true]);
      expect(getResilienceInfo(res)).toMatchObject({ endpoint: "a", fromFallback: false });
      expect(await res.text()).toBe("busy");
      expect(b.hits).toEqual([]);
      expect(recorder.of("fallback")).toEqual([]);
    }
  });

  it("held: a Blob PUT redirected 307 to a 503 goes to the hop and the next endpoint with its bytes and its type", async () => {
    a.on((hit) => hit.res.writeHead(307, { location: `${c.base}/done` }).end());
    c.on(busy);
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v2` },
    ]);
    const res = await layer.fetch(`${a.base}/v1/x`, {
      method: "PUT",
      body: new Blob(["BLOB-BYTES"], { type: "application/x-thing" }),
    });
    expect(res.status).toBe(200);
    await res.text();
    for (const hit of [a.hits[0], c.hits[0], b.hits[0]]) {
      expect([hit?.method, hit?.body, hit?.headers["content-type"]]).toEqual([
        "PUT",
        "BLOB-BYTES",
        "application/x-thing",
      ]);
    }
  });

  it("held: a stream body goes to one endpoint only: the 503 is the answer, no hedge and no next endpoint", async () => {
    const clock = new TestClock();
    a.on((hit) => {
      setTimeout(() => busy(hit), 1);
    });
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v2` },
      ],
      { hedge: { delay: 10 } },
      { clock },
    );
    const stream = new Blob(["streamed"]).stream();
    const call = layer.fetch(`${a.base}/v1/x`, {
      method: "PUT",
      body: stream,
      duplex: "half",
      headers: { "idempotency-key": "k" },
    } as RequestInit);
    await a.nth(1);
    await clock.advance(50);
    const res = await call;
    expect([res.status, await res.text(), getResilienceInfo(res)?.endpoint]).toEqual([503, "busy", "a"]);
    expect(a.hits[0]?.body).toBe("streamed");
    expect(b.hits).toEqual([]);
  });

  it("held: a Request body past maxReplayBytes whose endpoint refused the connection stops the chain there: FallbackExhaustedError says why", async () => {
    const refused = await refusedOrigin();
    const layer = chainLayer(
      [
        { name: "r", url: `${refused}/v1` },
        { name: "b", url: `${b.base}/v2` },
      ],
      {},
      { maxReplayBytes: 16 },
    );
    const error = await layer
      .fetch(
        new Request(`${refused}/v1/x?token=SECRETQ`, {
          method: "PUT",
          body: new Blob(["x".repeat(64)]).stream(),
          duplex: "half",
        } as RequestInit),
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    const exhausted = error as FallbackExhaustedError;
    expect(exhausted.message).toMatch(/^fallback chain "j" stopped after "r", .*\(its body could be sent only once\)/);
    expect(Object.keys(exhausted.errors)).toEqual(["r"]);
    expect(exhausted.cause).toBe(exhausted.errors.r);
    expect(exhausted.message).not.toContain("SECRETQ");
    expect(b.hits).toEqual([]);
  });
});

// ---------------------------------------------------------------------------

describe("FallbackExhaustedError and events", () => {
  it("held: errors per endpoint (the open breaker's CircuitOpenError with retryAt, then each failure), listed in the order they failed, cause the last; one event per pass-over", async () => {
    const refused = await refusedOrigin();
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1?key=OWNKEY1` },
        { name: "r", url: `${refused}/v2` },
        { name: "c", url: `${c.base}/v3` },
      ],
      {},
      { breaker: { failureThreshold: 1 } },
    );
    // A plain call outside the chain opens a's host.
    a.on((hit) => hit.res.writeHead(500).end());
    await (await layer.fetch(`${a.base}/other`)).text();
    expect(layer.health().breakers[a.host]?.state).toBe("open");
    c.on((hit) => hit.res.destroy());
    const recorder = recordEvents(layer);
    const error = await layer.fetch(`${a.base}/v1/x?token=SECRETQ`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    const exhausted = error as FallbackExhaustedError;
    expect(exhausted.chain).toBe("j");
    expect(Object.keys(exhausted.errors)).toEqual(["a", "r", "c"]);
    expect(isCircuitOpenError(exhausted.errors.a)).toBe(true);
    expect((exhausted.errors.a as { retryAt: number }).retryAt).toBe(layer.health().breakers[a.host]?.openUntil);
    expect(exhausted.errors.r).toBeInstanceOf(TypeError);
    expect(exhausted.errors.c).toBeInstanceOf(TypeError);
    expect(exhausted.cause).toBe(exhausted.errors.c);
    expect(exhausted.message).toMatch(/^every endpoint of fallback chain "j" failed \(a: circuit .*; r: .*; c: .*\)$/);
    expect(`${exhausted.message}${exhausted.stack}`).not.toMatch(/SECRETQ|OWNKEY1/);
    expect(a.hits.length).toBe(1);
    expect(recorder.of("fallback").map((e) => [e.from, e.reason.split(":")[0], e.next])).toEqual([
      ["a", "circuit open", "r"],
      ["r", "TypeError", "c"],
      ["c", "TypeError", undefined],
    ]);
    expect(recorder.of("request")).toMatchObject([{ key: "j", error: "FallbackExhaustedError" }]);
    // The endpoint passed over for its open breaker is not counted.
    const stats = layer.fallback.chain("j").statistics();
    expect(stats.fallbacks.a?.calls).toBe(0);
    expect([stats.fallbacks.r?.calls, stats.fallbacks.c?.calls]).toEqual([1, 1]);
  });

  it("held: when every endpoint failed and one gave a response, the call resolves with the last response; a transform to another host counts there", async () => {
    a.on(busy);
    c.on((hit) => hit.res.writeHead(502, { "retry-after": "7" }).end("bad gateway"));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      {
        name: "b",
        url: `${b.base}/v2`,
        transform: (req) => ({ ...req, url: req.url.replace(b.base, c.base) }),
      },
      { name: "none", respond: () => Promise.reject(new Error("cache miss")) },
    ]);
    const recorder = recordEvents(layer);
    const res = await layer.fetch(`${a.base}/v1/x`);
    expect([res.status, res.headers.get("retry-after"), await res.text()]).toEqual([502, "7", "bad gateway"]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true });
    expect(c.hits.map((hit) => hit.path)).toEqual(["/v2/x"]);
    expect(b.hits).toEqual([]);
    const breakers = layer.health().breakers;
    expect(breakers[a.host]?.failureCount).toBe(1);
    expect(breakers[c.host]?.failureCount).toBe(1);
    expect(breakers[b.host]).toBeUndefined();
    expect(recorder.of("fallback").map((e) => [e.from, e.reason, e.next])).toEqual([
      ["a", "status 503", "b"],
      ["b", "status 502", "none"],
      ["none", "Error: cache miss", undefined],
    ]);
  });
});

// ---------------------------------------------------------------------------

describe("credentials across origins: hedge, redirect, Request input", () => {
  it("held: a hedge to another origin sends the allowlist, what crossOriginHeaders names and its own headers; its 307 onward drops its own key too", async () => {
    const clock = new TestClock();
    a.on(hang);
    b.on((hit) => hit.res.writeHead(307, { location: `${c.base}/final` }).end());
    c.on(json({ ok: true }));
    const layer = chainLayer(
      [
        { name: "a", url: `${a.base}/v1` },
        { name: "b", url: `${b.base}/v2`, headers: { authorization: "Bearer B-OWN-KEY-123" } },
      ],
      { hedge: { delay: 100 } },
      { clock, crossOriginHeaders: ["x-trace"] },
    );
    const recorder = recordEvents(layer);
    const request = new Request(`${a.base}/v1/jobs`, {
      method: "POST",
      body: JSON.stringify({ prompt: "cat" }),
      headers: {
        authorization: SECRET,
        cookie: "session=COOKIE-SESSION-99",
        "x-api-key": "XAPIKEY-SECRET-77",
        "proxy-authorization": "Basic UFJPWFktU0VDUkVU",
        "idempotency-key": "job-7",
        "content-type": "application/json",
        accept: "application/json",
        "x-trace": "trace-1",
        "x-other": "stays-home-value",
      },
    });
    const call = layer.fetch(request);
    const first = await a.nth(1);
    expect(first.headers.authorization).toBe(SECRET);
    await clock.advance(100);
    const res = await call;
    expect(getResilienceInfo(res)?.endpoint).toBe("b");
    expect(res.url).toBe(`${c.base}/final`);
    await res.text();
    const hedge = b.hits[0] as Hit;
    expect(hedge.headers.authorization).toBe("Bearer B-OWN-KEY-123");
    for (const name of ["cookie", "x-api-key", "proxy-authorization", "x-other"])
      expect(hedge.headers[name]).toBeUndefined();
    expect([hedge.headers["idempotency-key"], hedge.headers.accept, hedge.headers["x-trace"]]).toEqual([
      "job-7",
      "application/json",
      "trace-1",
    ]);
    expect(hedge.body).toBe('{"prompt":"cat"}');
    const hop = c.hits[0] as Hit;
    expect(hop.headers.authorization).toBeUndefined();
    expect([hop.method, hop.body, hop.headers["idempotency-key"], hop.headers["x-trace"]]).toEqual([
      "POST",
      '{"prompt":"cat"}',
      "job-7",
      "trace-1",
    ]);
    expect(recorder.of("redirect")).toMatchObject([{ status: 307, crossOrigin: true, dropped: ["authorization"] }]);
    await first.closed;
  });

  it("held: a degradation rewrite on top: every endpoint gets the rewritten body once, the level header stays home, a transform reshapes it", async () => {
    a.on(busy);
    b.on(busy);
    c.on(json({ ok: true }));
    const seen: unknown[] = [];
    const layer = createResilience({
      retry: false,
      degradation: degradation({
        levelHeader: "x-degradation-level",
        rules: [{ match: `${a.base}/v1`, params: { steps: "steps" } }],
      }),
      fallback: fallback([
        {
          name: "j",
          endpoints: [
            { name: "a", url: `${a.base}/v1` },
            { name: "b", url: `${b.base}/v2` },
            {
              name: "c",
              url: `${c.base}/v3`,
              transform: (req) => {
                seen.push(req.body);
                return { ...req, body: { input: { num_steps: req.body?.steps } } };
              },
            },
          ],
        },
      ]),
    });
    layer.degradation?.setLevel("medium");
    const res = await layer.fetch(
      new Request(`${a.base}/v1/gen`, {
        method: "POST",
        headers: { "content-type": "application/json", "idempotency-key": "k-9", authorization: SECRET },
        body: JSON.stringify({ steps: 50, prompt: "cat" }),
      }),
    );
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "c", fromFallback: true, degradationLevel: "medium" });
    await res.text();
    const [first, second, third] = [a.hits[0] as Hit, b.hits[0] as Hit, c.hits[0] as Hit];
    expect(JSON.parse(first.body)).toEqual({ steps: 30, prompt: "cat" });
    expect(first.headers["x-degradation-level"]).toBe("medium");
    expect(JSON.parse(second.body)).toEqual({ steps: 30, prompt: "cat" });
    expect(seen).toEqual([{ steps: 30, prompt: "cat" }]);
    expect(JSON.parse(third.body)).toEqual({ input: { num_steps: 30 } });
    expect(third.headers["content-type"]).toBe("application/json");
    for (const hit of [second, third]) {
      expect(hit.headers["x-degradation-level"]).toBeUndefined();
      expect(hit.headers.authorization).toBeUndefined();
      expect(hit.headers["idempotency-key"]).toBe("k-9");
    }
  });
});

// ---------------------------------------------------------------------------

describe("the ky client over a chain", () => {
  it("held: a FormData POST through ky is replayed with its label; a transform's JSON body goes as application/json; credentials stay home", async () => {
    a.on(busy);
    b.on(busy);
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "b", url: `${b.base}/v2` },
      { name: "c", url: `${c.base}/v3`, transform: (req) => ({ ...req, body: { prompt: "cat" } }) },
    ]);
    const api = createClient({ resilience: layer, headers: { authorization: SECRET } });
    const body = new FormData();
    body.append("prompt", "cat");
    const res = await api.post(`${a.base}/v1/gen`, { body, headers: { "idempotency-key": "ky-1" } });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "c", fromFallback: true });
    const [first, second, third] = [a.hits[0] as Hit, b.hits[0] as Hit, c.hits[0] as Hit];
    expect(first.headers.authorization).toBe(SECRET);
    expect(second.headers["content-type"]).toBe(first.headers["content-type"]);
    expect(second.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
    expect(second.body).toBe(first.body);
    expect([third.headers["content-type"], third.body]).toEqual(["application/json", '{"prompt":"cat"}']);
    for (const hit of [second, third]) {
      expect(hit.headers.authorization).toBeUndefined();
      expect(hit.headers["idempotency-key"]).toBe("ky-1");
    }
  });

  it("held: through ky, validate moves a GET on, and every endpoint declining gives HTTPError whose response names the last endpoint", async () => {
    a.on(json({ ok: false }));
    b.on(json({ ok: true }));
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1`, validate: okSchema },
      { name: "b", url: `${b.base}/v2`, validate: okSchema },
    ]);
    const api = createClient({ resilience: layer });
    expect(await api.get(`${a.base}/v1/x`).json()).toEqual({ ok: true });
    a.on(busy);
    b.on((hit) => hit.res.writeHead(429, { "retry-after": "3" }).end("slow down"));
    const error = (await api.get(`${a.base}/v1/x`).then(
      () => undefined,
      (e: unknown) => e,
    )) as { name: string; response?: Response };
    expect(error.name).toBe("HTTPError");
    expect(error.response?.status).toBe(429);
    expect(error.response?.headers.get("retry-after")).toBe("3");
    expect(getResilienceInfo(error.response as Response)).toMatchObject({ endpoint: "b", fromFallback: true });
  });
});

// ---------------------------------------------------------------------------

describe("respond: answers that are no Response", () => {
  it("held: a respond that rejects, or answers undefined or Response.error(), moves a keyless POST on; the TypeError names the endpoint", async () => {
    a.on(busy);
    const layer = chainLayer([
      { name: "a", url: `${a.base}/v1` },
      { name: "miss", respond: () => Promise.reject(new Error("cache miss")) },
      { name: "undef", respond: () => undefined as unknown as Response },
      { name: "err", respond: () => Response.error() },
      { name: "ok", respond: () => new Response("placeholder") },
    ]);
    const recorder = recordEvents(layer);
    expect(await outcome(layer.fetch(`${a.base}/v1/x`, { method: "POST", body: "{}" }))).toBe("200 ok placeholder");
    expect(recorder.of("fallback").map((e) => [e.from, e.reason])).toEqual([
      ["a", "status 503"],
      ["miss", "Error: cache miss"],
      [
        "undef",
        'TypeError: network error: fallback endpoint "undef": respond answered with no Response fetch would give',
      ],
      ["err", 'TypeError: network error: fallback endpoint "err": respond answered with no Response fetch would give'],
    ]);
  });

  it("a respond that answers a revoked Proxy (any other value) fails with a TypeError naming the endpoint", async () => {
    const refused = await refusedOrigin();
    const layer = chainLayer([
      { name: "r", url: `${refused}/v1` },
      { name: "odd", respond: () => revoked() as Response },
    ]);
    const error = await layer.fetch(`${refused}/v1/x`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    const odd = (error as FallbackExhaustedError).errors.odd;
    expect(odd).toBeInstanceOf(TypeError);
    // Observed: "Cannot perform 'get' on a proxy that has been revoked" (the promise machinery reads its `then`).
    expect((odd as TypeError).message).toContain('fallback endpoint "odd"');
  });
});

// ---------------------------------------------------------------------------

describe("README quick start and the plain call beside a chain", () => {
  it("held: README: a keyless POST whose connection dropped stops at the primary; with retry.idempotencyKey it moves on to the backup under the same key", async () => {
    a.on((hit) => hit.res.destroy());
    const endpoints: Chain["endpoints"] = [
      { name: "primary", url: `${a.base}/v1/images` },
      { name: "backup", url: `${b.base}/v1/images`, expectedQuality: 0.8 },
    ];
    const plain = chainLayer(endpoints);
    const error = await plain
      .fetch(`${a.base}/v1/images`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "cat", steps: 50 }),
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(FallbackExhaustedError);
    expect((error as Error).message).toMatch(/^fallback chain "j" stopped after "primary"/);
    expect(b.hits).toEqual([]);
    a.reset();
    a.on((hit) => hit.res.destroy());
    const keyed = chainLayer(endpoints, {}, { retry: { maxAttempts: 1, idempotencyKey: true } });
    const res = await keyed.fetch(`${a.base}/v1/images`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "cat", steps: 50 }),
    });
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "backup", fromFallback: true });
    await res.text();
    const key = a.hits[0]?.headers["idempotency-key"];
    expect(typeof key === "string" && key.length > 0).toBe(true);
    expect(b.hits.map((hit) => [hit.method, hit.headers["idempotency-key"], hit.body])).toEqual([
      ["POST", key, '{"prompt":"cat","steps":50}'],
    ]);
  });

  it("held: outside a chain, endpoint is the first host of a followed redirect (its breaker counted the answer), res.url where it ended", async () => {
    a.on((hit) => hit.res.writeHead(302, { location: `${c.base}/there` }).end());
    c.on(busy);
    const layer = chainLayer([
      { name: "x", url: `${a.base}/chain` },
      { name: "y", url: `${b.base}/chain` },
    ]);
    const res = await layer.fetch(`${a.base}/plain`);
    expect([res.status, res.url, res.redirected]).toEqual([503, `${c.base}/there`, true]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: a.host, fromFallback: false });
    await res.text();
    expect(layer.health().breakers[a.host]?.failureCount).toBe(1);
    expect(layer.health().breakers[c.host]).toBeUndefined();
    expect(b.hits).toEqual([]);
  });
});
