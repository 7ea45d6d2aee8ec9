/**
 * Outside-in attack on graceful degradation (docs/degradation.md) on the paths earlier runs (degradedoc-fifty,
 * degradedoc-fiftyfour, todayfixes-fortyfour/-fortyfive, triggers-thirtythree) used least: `Request` inputs by body
 * kind, the level moving while calls are in flight (retry, hedge, spare, redirect hop, body read, proxy), query
 * rules across the library's redirect to another host, per-endpoint rules with a `transform`, ky, the proxy.
 *
 * Docs:
 * - docs/degradation.md: "Without it every call goes out at `full`, untouched, `health().degradationLevel` is
 *   `"full"` and `resilience.degradation` is `undefined`."; "non-JSON bodies are left alone (bytes or a Blob labelled
 *   as neither JSON nor text, such as `image/png` or `application/octet-stream`, are taken as such unread …)";
 *   "bytes or a Blob labelled with a charset other than UTF-8 … are sent as you wrote them, unrewritten"; "So is a
 *   body sent as a stream (… or a `Request` body larger than `maxReplayBytes` that is not `keepalive`, outside a page
 *   …): it goes once, as it is, unread, so its level header and `degradationLevel` name a level its body does not
 *   show."; "its kind: a string, bytes or a Blob of the same type, so the `content-type` fetch derives from it is the
 *   same"; "A call takes the level it finds when it starts: its rewritten body, its level header and
 *   `getResilienceInfo(res).degradationLevel` all name that level, even when the level moves while a `Request` body
 *   is read."; "A call that goes down a fallback chain is rewritten once, by the rule its own URL selects, before the
 *   chain: every endpoint gets that request …, and an endpoint's `transform` reshapes it for its provider (a rule
 *   that matches another endpoint's URL applies to calls addressed to that URL, never twice to one request)";
 *   "`levelHeader: "x-degradation-level"` sends the level's name, in place of any value the request had for that
 *   header"; "to another origin (a fallback endpoint, a redirect) it goes … only when named in `crossOriginHeaders`";
 *   "the other query parameters, stay as you wrote them"; "Automatic triggers are fed by every call that settles …";
 *   "`setLevel(name)` (pins the level …)".
 * - docs/options.md `maxReplayBytes`: "measured as the caller sent it (a degradation rule's edit may lengthen a kept
 *   one); larger ones go once".
 * - docs/health-and-events.md: "`degradation` fires on every level change (`from`, `to`, `percentage`, `reason`"
 * - docs/cloudflare.md: the proxy "adds `x-resilience-endpoint` …, `x-resilience-attempts` and `x-degradation-level`
 *   to the responses the upstreams gave (its own 502, 503 and 504 carry none of the three)".
 * - docs/retry.md: "a hop's is read from the URL the redirect names, as it names it: a query parameter a rule
 *   rewrote that the server echoes in its `Location` is keyed as echoed".
 *
 * How: `createResilience`, `getResilienceInfo` (root), `degradation` (./degradation), `fallback` (./fallback),
 * `createClient` (./ky), `resilientProxy` (./cloudflare, stub `ctx`), `TestClock` (./testing); two node:http servers
 * on 127.0.0.1 that record every request (test/helpers/http-upstream.ts), the second also reached as `localhost` (a
 * third origin) and one refused origin; answers held by the test to move the level while a call is out; levels moved
 * by `setLevel` or by triggers (`minSamples: 1`, `stepInterval: 0`) fed by other calls' 500/503.
 *
 * Paths: `Request` input (URLSearchParams, FormData, `image/png` Blob, Blob labelled `charset=latin1`, JSON Blob typed
 * and untyped, string, a stream read while the level moves, a JSON Blob and a string past `maxReplayBytes`, one at
 * the limit lengthened by the rewrite); `init` Blob/string past the limit; retry after `setLevel` and after a
 * trigger's step; hedged chain whose hedge starts after a drop; chain spare tried after a drop; same-host 307 after a
 * drop; query rule across a library-followed 307 to `localhost`; per-endpoint rules with a spare's `transform`; ky
 * `json` + `searchParams` with the layer's retry after a drop; `resilientProxy` upstream route (body, query, client's
 * own level header, upstream's own `x-degradation-level`, in-flight step down, body past the limit, own 502); no
 * stage (plain, ky, proxy).
 *
 * Defects pinned (`it.fails`, asserting the documented behaviour):
 * - none found on these paths.
 *
 * Held (plain `it`):
 * - `Request` bodies at `medium`: URLSearchParams, FormData, `image/png` and `charset=latin1` Blobs arrive byte for
 *   byte with their `content-type`, level header and `degradationLevel` `medium`; a JSON Blob typed, untyped and a
 *   string are rewritten (`application/json`, none, `text/plain;charset=UTF-8` kept).
 * - A `Request` JSON Blob past `maxReplayBytes` goes once unread (a 503 PUT not retried), header `medium`; its URL's
 *   query is still rewritten; an `init` Blob or string past it is rewritten and sent once; a `Request` at the limit
 *   that the rewrite lengthens is retried with the rewritten body.
 * - Level moved in flight: a retry (after `setLevel`, or after another call's 500 stepped `full` → `high`, one event
 *   with `from`/`to`/`percentage`/`reason`), a hedge started after the drop, a spare tried after it, a 307 hop after
 *   it and a `Request` stream read across it: all carry the start level's body and header, `degradationLevel` the
 *   start level, while `health()` reads the new one; the next call takes the new level.
 * - Query rule, library-followed 307 to another host: the first hop carries the rewritten query; no rule is applied
 *   to the hop (a `Location` echoing `model=standard` goes as is, not `basic`); a rule whose `match` is the hop's URL
 *   rewrites only calls addressed there.
 * - Chain: the spare gets the first rule's rewrite (`quality` 0.8) reshaped by its `transform` (which sees the
 *   rewritten object), never its own rule's on top (not 0.64); a direct call to the spare's URL takes that rule.
 * - ky `json` + `searchParams` rewritten once (`a=x+y` kept), the same on the layer's retry after a drop.
 * - Proxy: the upstream gets the level's body, query and level header in place of the client's own; the client sees
 *   the level the request started at (also when a step down came while it was out), replacing an upstream's own
 *   `x-degradation-level`; a body past the limit goes unread; its own 502 has no `x-degradation-level`.
 * - No stage: bodies untouched, `full` everywhere (`health()`, the response, the proxy's header).
 *
 * Docs-silent when found, in degradation.md since the fifty-eighth session (asserted below):
 * - On a library-followed 307 to another host at `medium`, a `Location` that echoes the caller's `model=premium`
 *   sends the un-degraded value to the new host (hops are not rewritten), while `degradationLevel` says `medium`;
 *   docs/retry.md speaks only of how such a hop is keyed.
 *
 * Docs-silent (not pinned):
 * - A `Request` made from a string with `content-type: application/json; charset=iso-8859-1` is bytes to the layer
 *   (the "string body … is rewritten" sentence is about `init.body`); not driven here.
 * - `init.headers` that relabel a `Request`'s JSON body as `image/png` leave it unread (seen while probing).
 */
import { readFile } from "node:fs/promises";
import { afterEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const up = httpUpstream();
const other = httpUpstream();
serveDuringFile(up, other);

const calm = { triggers: { cpuUsage: 1, memoryUsage: 1 }, browserSignals: false } as const;
const J = '{"steps":50}';
const R = '{"steps":30}';
const enc = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text);
const ctx = { waitUntil() {} };

/** Pending work every test settles in `afterEach`. */
const open: Array<Promise<unknown>> = [];
afterEach(async () => {
  await Promise.allSettled(open.splice(0));
});

function track<T>(promise: Promise<T>): Promise<T> {
  open.push(promise);
  return promise;
}

async function drain(response: Response): Promise<Response> {
  await response.text();
  return response;
}

/** Answers every request that reaches a held path later, when the test says. */
function holder(server: typeof up, answer: (hit: Hit) => void = (hit) => hit.res.end("ok")) {
  const held: Hit[] = [];
  server.on((hit) => {
    if (hit.path.includes("/hold")) held.push(hit);
    else answer(hit);
  });
  return held;
}

function reply(hit: Hit | undefined, status: number, headers: Record<string, string> = {}): void {
  if (!hit) throw new Error("no such hit");
  hit.res.writeHead(status, headers);
  hit.res.end(status === 200 ? "ok" : "no");
}

/** A layer at `level` (pinned with `setLevel`), level header `x-level`. */
function layerAt(level: "full" | "high" | "medium" | "low", extra: Record<string, unknown> = {}) {
  const layer = createResilience({
    retry: false,
    ...extra,
    degradation: degradation({ ...calm, levelHeader: "x-level" }),
  });
  layer.degradation.setLevel(level);
  return layer;
}

describe("held: a `Request` input's body, by kind, at `medium`", () => {
  it("URLSearchParams, FormData and an `image/png` Blob go byte for byte; the level still names `medium`", async () => {
    const layer = layerAt("medium");
    const form = new FormData();
    form.set("p", J);
    form.set("f", new Blob([J], { type: "application/json" }), "p.json");
    const requests = [
      new Request(`${up.base}/a`, { method: "POST", body: new URLSearchParams({ steps: "50", q: J }) }),
      new Request(`${up.base}/b`, { method: "POST", body: form }),
      new Request(`${up.base}/c`, { method: "POST", body: new Blob([J], { type: "image/png" }) }),
      new Request(`${up.base}/d`, { method: "POST", body: new Blob([J], { type: "application/json;charset=latin1" }) }),
    ];
    const expected = await Promise.all(requests.map((r) => r.clone().arrayBuffer()));
    const types = requests.map((r) => r.headers.get("content-type"));
    for (const request of requests) {
      const res = await drain(await layer.fetch(request));
      expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
    }
    expect(up.hits.map((h) => h.bytes.equals(Buffer.from(expected[h.n - 1] as ArrayBuffer)))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(up.hits.map((h) => h.headers["content-type"])).toEqual(types);
    expect(up.hits.map((h) => h.headers["x-level"])).toEqual(["medium", "medium", "medium", "medium"]);
  });

  it("a JSON Blob (typed and untyped) and a string are rewritten, each with the `content-type` it came with", async () => {
    const layer = layerAt("medium");
    await drain(
      await layer.fetch(
        new Request(`${up.base}/a`, { method: "POST", body: new Blob([J], { type: "application/json" }) }),
      ),
    );
    await drain(await layer.fetch(new Request(`${up.base}/b`, { method: "POST", body: new Blob([J]) })));
    await drain(await layer.fetch(new Request(`${up.base}/c`, { method: "POST", body: J })));
    expect(up.hits.map((h) => [h.body, h.headers["content-type"]])).toEqual([
      [R, "application/json"],
      [R, undefined],
      [R, "text/plain;charset=UTF-8"],
    ]);
  });

  it("a `Request` made of a JSON Blob past `maxReplayBytes` goes once, unread; its level header names `medium`", async () => {
    const layer = layerAt("medium", { maxReplayBytes: 1024, retry: { maxAttempts: 3 } });
    const big = `{"steps":50,"pad":"${"x".repeat(2000)}"}`;
    up.on((hit) => reply(hit, 503));
    const res = await drain(
      await layer.fetch(
        new Request(`${up.base}/big`, { method: "PUT", body: new Blob([big], { type: "application/json" }) }),
      ),
    );
    expect(res.status).toBe(503);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
    expect(up.hits.map((h) => [h.body === big, h.headers["x-level"]])).toEqual([[true, "medium"]]);
  });

  it("an `init` Blob or string past `maxReplayBytes` is in memory, no stream: rewritten, and sent once", async () => {
    const clock = new TestClock();
    const layer = layerAt("medium", { clock, maxReplayBytes: 1024, retry: { maxAttempts: 3, jitter: "none" } });
    const big = `{"steps":50,"pad":"${"x".repeat(2000)}"}`;
    const small = `{"steps":30,"pad":"${"x".repeat(2000)}"}`;
    up.on((hit) => reply(hit, 503));
    for (const body of [new Blob([big], { type: "application/json" }), big]) {
      const res = await drain(await clock.run(layer.fetch(`${up.base}/big`, { method: "PUT", body })));
      expect(res.status).toBe(503);
    }
    expect(up.hits.map((h) => h.body === small)).toEqual([true, true]);
  });
  it("a `Request` past the limit has its query rewritten, its body not; one at the limit that the edit lengthens is retried", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      maxReplayBytes: 14,
      retry: { maxAttempts: 2, initialDelay: 10, jitter: "none" },
      degradation: degradation({ ...calm, rules: [{ params: { quality: "quality", model: { query: "model" } } }] }),
    });
    layer.degradation.setLevel("medium");
    const big = `{"quality":1,"pad":"${"x".repeat(100)}"}`;
    up.on((hit) => reply(hit, hit.path === "/r" && hit.n === 2 ? 503 : 200));
    const headers = { "content-type": "application/json" };
    await drain(await layer.fetch(new Request(`${up.base}/b?model=premium`, { method: "POST", body: big, headers })));
    const atLimit = '{"quality":1} ';
    expect(enc(atLimit).length).toBe(14);
    const res = await drain(
      await clock.run(layer.fetch(new Request(`${up.base}/r`, { method: "PUT", body: atLimit }))),
    );
    expect(getResilienceInfo(res)?.attempts).toBe(2);
    expect(up.hits.map((h) => [h.path, h.body === big ? "big" : h.body])).toEqual([
      ["/b?model=standard", "big"],
      ["/r", '{"quality":0.8} '],
      ["/r", '{"quality":0.8} '],
    ]);
  });
});

describe("held: a call keeps the level it started at while the level moves", () => {
  it("a retry after `setLevel` goes at the level the call started at (body, header, `degradationLevel`)", async () => {
    const clock = new TestClock();
    const layer = layerAt("medium", { clock, retry: { maxAttempts: 2, initialDelay: 1000, jitter: "none" } });
    up.on((hit) => reply(hit, hit.n === 1 ? 503 : 200));
    const call = track(layer.fetch(`${up.base}/r`, { method: "PUT", body: J }));
    await up.nth(1);
    layer.degradation.setLevel("minimal");
    await clock.waitForTimers(1);
    await clock.advance(1000);
    const res = await drain(await call);
    expect(up.hits.map((h) => [h.body, h.headers["x-level"]])).toEqual([
      [R, "medium"],
      [R, "medium"],
    ]);
    expect(getResilienceInfo(res)).toMatchObject({ attempts: 2, degradationLevel: "medium" });
    expect(layer.health().degradationLevel).toBe("minimal");
    await drain(await layer.fetch(`${up.base}/r2`, { method: "PUT", body: J }));
    expect(up.hits[2]?.body).toBe('{"steps":10}');
  });

  it("a retry after a trigger's step down (another call's 500) goes at `full`, untouched", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 1000, jitter: "none" },
      degradation: degradation({ ...calm, minSamples: 1, stepInterval: 0, levelHeader: "x-level" }),
    });
    const events: unknown[] = [];
    layer.on("degradation", (e) => events.push(e));
    up.on((hit) => reply(hit, hit.path === "/fail" || hit.n === 1 ? 500 : 200));
    const call = track(layer.fetch(`${up.base}/r`, { method: "PUT", body: J }));
    await up.nth(1);
    await drain(await layer.fetch(`${up.base}/fail`, { method: "POST", body: J }));
    expect(layer.degradation.currentLevel().name).toBe("high");
    await clock.waitForTimers(1);
    await clock.advance(1000);
    const res = await drain(await call);
    expect(up.hits.map((h) => [h.path, h.body, h.headers["x-level"]])).toEqual([
      ["/r", J, "full"],
      ["/fail", J, "full"],
      ["/r", J, "full"],
    ]);
    expect(getResilienceInfo(res)?.degradationLevel).toBe("full");
    // The retry's own settle (its first 500 still in the window) steps once more, as `stepInterval: 0` lets it.
    expect(events[0]).toEqual({ from: "full", to: "high", percentage: 80, reason: "error rate 1.00 > 0.1" });
  });

  it("a hedge started after the level dropped sends the start level's body and header", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: false,
      crossOriginHeaders: ["x-level"],
      fallback: fallback([
        {
          name: "gen",
          hedge: { delay: 1000 },
          endpoints: [
            { name: "a", url: `${up.base}/hold` },
            { name: "b", url: `${other.base}/v2` },
          ],
        },
      ]),
      degradation: degradation({ ...calm, levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("medium");
    holder(up);
    const call = track(layer.fetch(`${up.base}/hold/x`, { method: "PUT", body: J }));
    await up.nth(1);
    layer.degradation.setLevel("minimal");
    await clock.waitForTimers(1);
    await clock.advance(1000);
    const res = await drain(await call);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", degradationLevel: "medium" });
    expect([...up.hits, ...other.hits].map((h) => [h.body, h.headers["x-level"]])).toEqual([
      [R, "medium"],
      [R, "medium"],
    ]);
  });

  it("a chain's spare, tried after the level dropped, and a redirect hop get the start level", async () => {
    const layer = createResilience({
      retry: false,
      crossOriginHeaders: ["x-level"],
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: `${up.base}/hold` },
            { name: "b", url: `${other.base}/v2` },
          ],
        },
      ]),
      degradation: degradation({ ...calm, levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("medium");
    const held = holder(up);
    const call = track(layer.fetch(`${up.base}/hold`, { method: "POST", body: J }));
    await up.nth(1);
    layer.degradation.setLevel("low");
    reply(held[0], 503);
    expect(getResilienceInfo(await drain(await call))).toMatchObject({ endpoint: "b", degradationLevel: "medium" });
    // A 307 on the same host after the level dropped.
    layer.degradation.setLevel("medium");
    const hop = track(layer.fetch(`${up.base}/hold-r`, { method: "POST", body: J }));
    await up.nth(2);
    layer.degradation.setLevel("minimal");
    reply(held[1], 307, { location: "/done" });
    expect(getResilienceInfo(await drain(await hop))?.degradationLevel).toBe("medium");
    expect([...up.hits, ...other.hits].map((h) => [h.path, h.body, h.headers["x-level"]])).toEqual([
      ["/hold", R, "medium"],
      ["/hold-r", R, "medium"],
      ["/done", R, "medium"],
      ["/v2", R, "medium"],
    ]);
  });

  it("a `Request` stream body read while the level moves is rewritten for the level the call found", async () => {
    const layer = layerAt("medium");
    let push: ((text: string | null) => void) | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (text) => (text === null ? controller.close() : controller.enqueue(enc(text)));
      },
    });
    const request = new Request(`${up.base}/s`, { method: "POST", body, duplex: "half" } as RequestInit);
    const call = track(layer.fetch(request));
    push?.('{"steps":');
    await new Promise((r) => setTimeout(r, 5));
    layer.degradation.setLevel("minimal");
    push?.("50}");
    push?.(null);
    const res = await drain(await call);
    expect([up.hits[0]?.body, up.hits[0]?.headers["x-level"], getResilienceInfo(res)?.degradationLevel]).toEqual([
      R,
      "medium",
      "medium",
    ]);
  });
});

describe("held: the ky client, and a layer without the stage", () => {
  it("ky `json` and `searchParams` are rewritten once; the layer's retry after a drop keeps them", async () => {
    const clock = new TestClock();
    const layer = createResilience({
      clock,
      retry: { maxAttempts: 2, initialDelay: 1000, jitter: "none" },
      degradation: degradation({ ...calm, rules: [{ params: { steps: "steps", model: { query: "model" } } }] }),
    });
    layer.degradation.setLevel("medium");
    const api = createClient({ prefix: up.base, resilience: layer });
    up.on((hit) => reply(hit, hit.n === 1 ? 503 : 200));
    const call = track(
      api.put("gen", { json: { steps: 50, seed: 7 }, searchParams: { model: "premium", a: "x y" } }).text(),
    );
    await up.nth(1);
    layer.degradation.setLevel("minimal");
    await clock.waitForTimers(1);
    await clock.advance(1000);
    expect(await call).toBe("ok");
    expect(up.hits.map((h) => [h.path, h.body])).toEqual([
      ["/gen?model=standard&a=x+y", '{"steps":30,"seed":7}'],
      ["/gen?model=standard&a=x+y", '{"steps":30,"seed":7}'],
    ]);
  });

  it("without `degradation`: untouched, `full` in `health()`, the response, ky and the proxy's header", async () => {
    const layer = createResilience({ retry: false });
    expect(layer.degradation).toBeUndefined();
    const res = await drain(await layer.fetch(`${up.base}/a`, { method: "POST", body: J }));
    expect([getResilienceInfo(res)?.degradationLevel, layer.health().degradationLevel]).toEqual(["full", "full"]);
    const api = createClient({ prefix: up.base, resilience: layer });
    await api.post("b", { json: { steps: 50 } }).text();
    const proxy = resilientProxy({ routes: [{ path: "/p", upstream: `${up.base}/c` }], resilience: { retry: false } });
    const viaProxy = await drain(
      await proxy.fetch(new Request("https://p.example/p", { method: "POST", body: J }), {}, ctx),
    );
    expect(viaProxy.headers.get("x-degradation-level")).toBe("full");
    expect(up.hits.map((h) => h.body)).toEqual([J, J, J]);
  });
});

describe("query rules and the library's redirects to another host", () => {
  const rule = (match: string) => [{ match, params: { model: { query: "model" } } }];
  const toOther = (query: string) =>
    up.on((hit) => reply(hit, 307, { location: `http://localhost:${other.port}/gen${query}` }));

  it("the first hop carries the rewritten query; the hop goes as its `Location` names it, no rule applied again", async () => {
    const layer = createResilience({
      redirects: "library",
      retry: false,
      degradation: degradation({ ...calm, rules: rule(`${up.base}/gen`) }),
    });
    layer.degradation.setLevel("medium");
    toOther("?model=premium&x=1");
    const first = await drain(await layer.fetch(`${up.base}/gen?model=premium&x=1`));
    toOther("?model=standard&x=1");
    const second = await drain(await layer.fetch(`${up.base}/gen?model=premium&x=1`));
    expect(up.hits.map((h) => h.path)).toEqual(["/gen?model=standard&x=1", "/gen?model=standard&x=1"]);
    expect(other.hits.map((h) => h.path)).toEqual(["/gen?model=premium&x=1", "/gen?model=standard&x=1"]);
    expect([first.redirected, getResilienceInfo(first)?.degradationLevel]).toEqual([true, "medium"]);
    expect(getResilienceInfo(second)?.degradationLevel).toBe("medium");
    const guide = (await readFile(new URL("../../docs/degradation.md", import.meta.url), "utf8")).replace(/\s+/g, " ");
    expect(guide).toContain(
      "a redirect hop the library follows goes as its `Location` names it, no rule applied again (a `Location` that echoes `model=premium` sends that to its host), while `degradationLevel` still names the call's level",
    );
  });

  it("a rule whose `match` is the hop's URL applies to calls addressed there, not to a hop of another call", async () => {
    const layer = createResilience({
      redirects: "library",
      retry: false,
      degradation: degradation({ ...calm, rules: rule(`http://localhost:${other.port}/gen`) }),
    });
    layer.degradation.setLevel("medium");
    toOther("?model=premium");
    await drain(await layer.fetch(`${up.base}/gen?model=premium`));
    other.on((hit) => reply(hit, 200));
    await drain(await layer.fetch(`http://localhost:${other.port}/gen?model=premium`));
    expect(up.hits.map((h) => h.path)).toEqual(["/gen?model=premium"]);
    expect(other.hits.map((h) => h.path)).toEqual(["/gen?model=premium", "/gen?model=standard"]);
  });
});

describe("held: a chain with a rule per endpoint and a `transform`", () => {
  it("the spare gets the first rule's rewrite, reshaped by its `transform`, never its own rule's on top", async () => {
    const seen: unknown[] = [];
    const layer = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "a", url: `${up.base}/v1` },
            {
              name: "b",
              url: `${other.base}/v2`,
              transform: (req) => {
                seen.push(req.body);
                return { ...req, body: { input: req.body } };
              },
            },
          ],
        },
      ]),
      degradation: degradation({
        ...calm,
        rules: [
          { match: `${up.base}/v1`, params: { quality: "quality" } },
          { match: `${other.base}/v2`, params: { quality: "input.quality" } },
        ],
      }),
    });
    layer.degradation.setLevel("medium");
    up.on((hit) => reply(hit, 503));
    const res = await drain(await layer.fetch(`${up.base}/v1`, { method: "POST", body: '{"quality":1}' }));
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "b", fromFallback: true, degradationLevel: "medium" });
    expect(up.hits[0]?.body).toBe('{"quality":0.8}');
    expect(seen).toEqual([{ quality: 0.8 }]);
    expect(JSON.parse(other.hits[0]?.body ?? "")).toEqual({ input: { quality: 0.8 } });
    // A call addressed to the spare's URL takes that URL's rule.
    await drain(await layer.fetch(`${other.base}/v2`, { method: "POST", body: '{"input":{"quality":1}}' }));
    expect(other.hits[1]?.body).toBe('{"input":{"quality":0.8}}');
  });
});

describe("resilientProxy with degradation", () => {
  function proxyOf(clock: TestClock, extra: Record<string, unknown> = {}) {
    return resilientProxy({
      routes: [{ path: "/gen", upstream: `${up.base}/v1` }],
      resilience: {
        clock,
        retry: false,
        ...extra,
        degradation: degradation({
          ...calm,
          minSamples: 1,
          stepInterval: 0,
          levelHeader: "x-degradation-level",
          rules: [{ params: { quality: "quality", steps: { query: "steps" } } }],
        }),
      },
    });
  }
  const post = (path: string, body: BodyInit, headers: Record<string, string> = {}) =>
    new Request(`https://p.example${path}`, {
      method: "POST",
      body,
      headers: { "content-type": "application/json", ...headers },
    });

  it("the upstream gets the level's body, query and header in place of the client's; the client sees the level", async () => {
    const clock = new TestClock();
    const proxy = proxyOf(clock);
    up.on((hit) =>
      hit.n === 1 ? reply(hit, 503) : reply(hit, 200, { "x-degradation-level": "bogus", "x-resilience-attempts": "9" }),
    );
    const first = await drain(await proxy.fetch(post("/gen", '{"quality":1}'), {}, ctx));
    expect([first.status, first.headers.get("x-degradation-level")]).toEqual([503, "full"]);
    await clock.advance(1000);
    const second = await drain(
      await proxy.fetch(post("/gen/x?steps=50&k=1", '{"quality":1}', { "x-degradation-level": "full" }), {}, ctx),
    );
    expect(second.headers.get("x-degradation-level")).toBe("high");
    expect(second.headers.get("x-resilience-attempts")).toBe("1");
    expect(up.hits.map((h) => [h.path, h.body, h.headers["x-degradation-level"]])).toEqual([
      ["/v1", '{"quality":1}', "full"],
      ["/v1/x?steps=50&k=1", '{"quality":0.9}', "high"],
    ]);
  });

  it("a client request started before a step down is answered with the level it started at", async () => {
    const clock = new TestClock();
    const proxy = proxyOf(clock);
    const held = holder(up, (hit) => reply(hit, 503));
    const slow = track(proxy.fetch(post("/gen/hold", '{"quality":1}'), {}, ctx));
    await up.nth(1);
    await drain(await proxy.fetch(post("/gen/fail", '{"quality":1}'), {}, ctx));
    reply(held[0], 200);
    const res = await drain(await slow);
    expect(res.headers.get("x-degradation-level")).toBe("full");
    expect(up.hits.map((h) => h.body)).toEqual(['{"quality":1}', '{"quality":1}']);
    await clock.advance(1000);
    const after = await drain(await proxy.fetch(post("/gen/late", '{"quality":1}'), {}, ctx));
    expect(after.headers.get("x-degradation-level")).toBe("high");
  });

  it("a client body past `maxReplayBytes` goes unread at a degraded level, the header naming that level", async () => {
    const clock = new TestClock();
    const proxy = proxyOf(clock, { maxReplayBytes: 256 });
    up.on((hit) => reply(hit, hit.n === 1 ? 503 : 200));
    await drain(await proxy.fetch(post("/gen", "{}"), {}, ctx));
    await clock.advance(1000);
    const big = `{"quality":1,"pad":"${"x".repeat(600)}"}`;
    const res = await drain(await proxy.fetch(post("/gen/big?steps=50", big), {}, ctx));
    expect(res.headers.get("x-degradation-level")).toBe("high");
    expect([up.hits[1]?.body === big, up.hits[1]?.path]).toEqual([true, "/v1/big?steps=50"]);
  });

  it("the proxy's own 502 at a degraded level carries no `x-degradation-level`", async () => {
    const clock = new TestClock();
    const dead = await refusedOrigin();
    const proxy = resilientProxy({
      routes: [
        { path: "/gen", upstream: `${up.base}/v1` },
        { path: "/dead", upstream: dead },
      ],
      resilience: {
        clock,
        retry: false,
        degradation: degradation({ ...calm, minSamples: 1, stepInterval: 0 }),
      },
    });
    up.on((hit) => reply(hit, 503));
    await drain(await proxy.fetch(post("/gen", "{}"), {}, ctx));
    await clock.advance(1000);
    const res = await drain(await proxy.fetch(post("/dead", "{}"), {}, ctx));
    expect(res.status).toBeGreaterThanOrEqual(502);
    expect(res.headers.get("x-degradation-level")).toBeNull();
  });
});
