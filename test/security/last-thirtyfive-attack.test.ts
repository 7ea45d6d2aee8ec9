/**
 * Outside-in attack on the last commit's changes: inputs made text once as fetch makes them (URL objects on every
 * path), the chain rule that only endpoints passed over join platform-refused ones, and the ky client's
 * `beforeError: undefined` and headers inside ky's `replaceOption(…)`.
 * Docs: docs/retry.md ("The input may be a string, a `URL`, … or anything fetch turns into its URL text"; "Messages
 * never show the URL's userinfo, query or fragment"; ky: "ky's own errors (`HTTPError`, `NetworkError`,
 * `TimeoutError`) name the URL in their message without its query, userinfo and fragment", "A header value no
 * request can carry is a `TypeError` naming the header, never quoting the value, … in a call's `headers` when the
 * call is made …, in the `headers` of `createClient`, `extend` or `create` at once"); docs/fallback.md ("A request
 * whose URL starts with a chain's first endpoint `url` goes down that chain … The rest of the path and the query
 * are rebased onto each endpoint's `url`"); CHANGELOG.md ("made text once, as fetch makes it (a `URL` subclass's
 * own `toString` too)", "`beforeError: undefined` in `extend` or a call removes the instance's `beforeError`
 * hooks, as in ky (the URL cut in messages stays); headers wrapped in ky's `replaceOption(…)` are checked as any
 * others", "only endpoints passed over join refused ones").
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback), `degradation` (./degradation),
 * `createClient` (./ky) beside plain `ky` and ky's `replaceOption`; node:http servers on 127.0.0.1
 * (test/helpers/http-upstream.ts), a refused origin.
 * Paths: plain call, chain (priority, hedge, adaptive order), degradation `match`, redirect follower, `data:` URL,
 * ky client (call, `extend`, `extend(fn)`, `create`, `createClient`).
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - A `URL` whose `href` was set after creation goes where its text says; a `URL` subclass's own `toString` wins
 *   (as Node's fetch), on a plain call and for a chain's routing; a `URL` input is routed down a chain and rebased
 *   (`/v1/models?q=1` → `/w2/models?q=1`); a degradation `match` takes a `URL` input as its text (same body as
 *   the string input, steps lowered); the redirect follower resolves a relative `location` against the `URL`
 *   input's text; a `data:` `URL` answers as fetch answers it; a refused call's message and stack keep a `URL`
 *   input's query out.
 * - A platform-refused endpoint beside one whose breaker is open rejects with the platform's `TypeError`, with a
 *   hedge and with `order: "adaptive"` alike; nothing sent.
 * - ky: `beforeError: undefined` in `extend`, in `extend(fn)`, in `create`, in a call, and inside
 *   `replaceOption(…)` in `extend` or a call: the parent's hooks no longer run, and `HTTPError`, `TimeoutError`
 *   (ky's `timeout`) and the network failure keep the query out of the message.
 * - ky: headers inside `replaceOption(…)` as a record, pairs, a `Map`, beside an `undefined` value, with a NUL, a
 *   character above U+00FF or a value object whose text has CR/LF: refused at once by `extend`, `create` and
 *   `createClient`, and per call with a `TypeError` that never quotes the value (message and stack);
 *   `replaceOption(new Headers(…))` replaces and `replaceOption(undefined)` behaves as in plain ky.
 */
import ky, { HTTPError, replaceOption } from "ky";
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

/** ky's way to drop the instance's `beforeError` hooks (its types, under `exactOptionalPropertyTypes`, say no). */
const noBeforeError = { beforeError: undefined } as never;

const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
serveDuringFile(a, b, c);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };

describe("URL objects on every path", () => {
  it("plain call: a URL whose href was changed after creation goes where its text says", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 } });
    const url = new URL(`${a.base}/first?x=1`);
    url.href = `${b.base}/second?y=2`;
    const res = await layer.fetch(url);
    await res.text();
    expect(a.hits).toHaveLength(0);
    expect(b.hits.map((h) => h.path)).toEqual(["/second?y=2"]);
    expect(getResilienceInfo(res)?.endpoint).toBe(b.host);
  });

  it("plain call: a URL subclass's own toString wins, as fetch", async () => {
    class Other extends URL {
      override toString() {
        return `${b.base}/sub`;
      }
    }
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 } });
    const res = await layer.fetch(new Other(`${a.base}/href`));
    await res.text();
    const plain = await fetch(new Other(`${a.base}/href`));
    await plain.text();
    expect(a.hits).toHaveLength(0);
    expect(b.hits.map((h) => h.path)).toEqual(["/sub", "/sub"]);
  });

  it("chain: a URL object input is routed and rebased as its text", async () => {
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("a down");
    });
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "one", url: `${a.base}/v1` },
            { name: "two", url: `${b.base}/w2` },
          ],
        },
      ]),
    });
    const url = new URL(`${a.base}/zz`);
    url.pathname = "/v1/models";
    url.search = "?q=1";
    const res = await layer.fetch(url);
    expect(await res.text()).toBe("ok");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "two", fromFallback: true });
    expect(b.hits.map((h) => h.path)).toEqual(["/w2/models?q=1"]);
  });

  it("chain: a URL subclass's own toString decides the route", async () => {
    class Other extends URL {
      override toString() {
        return `${b.base}/elsewhere`;
      }
    }
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "one", url: `${a.base}/v1` },
            { name: "two", url: `${c.base}/w2` },
          ],
        },
      ]),
    });
    const res = await layer.fetch(new Other(`${a.base}/v1/x`));
    await res.text();
    expect(a.hits).toHaveLength(0);
    expect(b.hits.map((h) => h.path)).toEqual(["/elsewhere"]);
  });

  it("degradation match: a URL object input takes the rule its text matches", async () => {
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      degradation: degradation({
        rules: [{ match: `${a.base}/v1`, params: { steps: "steps" } }],
      }),
    });
    layer.degradation?.degrade("test");
    layer.degradation?.degrade("test");
    const res = await layer.fetch(new URL(`${a.base}/v1/gen`), {
      method: "POST",
      body: JSON.stringify({ steps: 50 }),
      headers: { "content-type": "application/json" },
    });
    await res.text();
    const plain = await layer.fetch(`${a.base}/v1/gen`, {
      method: "POST",
      body: JSON.stringify({ steps: 50 }),
      headers: { "content-type": "application/json" },
    });
    await plain.text();
    expect(a.hits).toHaveLength(2);
    expect(a.hits[0]?.body).toBe(a.hits[1]?.body);
    expect(JSON.parse(a.hits[0]?.body ?? "{}").steps).toBeLessThan(50);
  });

  it("redirect follower: a URL object input's redirect is followed, the hop relative to its text", async () => {
    a.on((hit) => {
      if (hit.path === "/from/here") {
        hit.res.statusCode = 302;
        hit.res.setHeader("location", "next?z=1");
        hit.res.end();
      } else hit.res.end(`at ${hit.path}`);
    });
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 } });
    const res = await layer.fetch(new URL(`${a.base}/from/here`), { headers: { authorization: "Bearer s" } });
    expect(await res.text()).toBe("at /from/next?z=1");
    expect(res.redirected).toBe(true);
    expect(res.url).toBe(`${a.base}/from/next?z=1`);
  });

  it("data: URL as a URL object: as fetch answers it", async () => {
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 } });
    const url = new URL("data:text/plain,hello");
    const outcome = await layer.fetch(url).then(
      async (r) => ({ ok: await r.text() }),
      (e: unknown) => ({ error: (e as Error).name }),
    );
    const plain = await fetch(url).then(
      async (r) => ({ ok: await r.text() }),
      (e: unknown) => ({ error: (e as Error).name }),
    );
    expect(outcome).toEqual(plain);
    expect(outcome).toEqual({ ok: "hello" });
  });

  it("errors: a URL object's query never shows in a refused call's message", async () => {
    const dead = await refusedOrigin();
    const layer = createResilience({ retry: { ...fast, maxAttempts: 1 } });
    const error = (await rejection(layer.fetch(new URL(`${dead}/x?key=sk-secret`)))) as Error;
    expect(String(error.message)).not.toContain("sk-secret");
    expect(String(error.stack)).not.toContain("sk-secret");
  });
});

describe("chain rule: only passed-over endpoints join refused ones", () => {
  it("hedge: refused + breaker open → platform TypeError", async () => {
    b.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("b down");
    });
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "one", url: `${a.base}/v1` },
            { name: "two", url: `${b.base}/v1` },
          ],
          hedge: { delay: 5 },
        },
      ]),
    });
    await (await layer.fetch(`${b.base}/open`)).text();
    expect(layer.health().breakers[b.host]?.state).toBe("open");
    b.reset();
    const error = await rejection(layer.fetch(`${a.base}/v1/x`, { headers: { "keep-alive": "1" } }));
    expect(error).toBeInstanceOf(TypeError);
    expect(a.hits).toHaveLength(0);
    expect(b.hits).toHaveLength(0);
  });

  it("adaptive order: refused + breaker open → platform TypeError", async () => {
    b.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("b down");
    });
    const layer = createResilience({
      retry: { ...fast, maxAttempts: 1 },
      breaker: { failureThreshold: 1 },
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "one", url: `${a.base}/v1` },
            { name: "two", url: `${b.base}/v1` },
          ],
          order: "adaptive",
        },
      ]),
    });
    await (await layer.fetch(`${b.base}/open`)).text();
    expect(layer.health().breakers[b.host]?.state).toBe("open");
    b.reset();
    const error = await rejection(layer.fetch(`${a.base}/v1/x`, { headers: { "keep-alive": "1" } }));
    expect(error).toBeInstanceOf(TypeError);
    expect(a.hits).toHaveLength(0);
    expect(b.hits).toHaveLength(0);
  });
});

describe("ky: beforeError undefined and the cut", () => {
  const query = "?key=sk-secret";
  it("extend({ hooks: noBeforeError }): HTTPError message still cut; instance hooks gone", async () => {
    a.on((hit) => {
      hit.res.statusCode = 404;
      hit.res.end("no");
    });
    const seen: string[] = [];
    const api = createClient({
      hooks: {
        beforeError: [
          ({ error }) => {
            seen.push("parent");
            return error;
          },
        ],
      },
      resilience: { retry: { ...fast, maxAttempts: 1 } },
    });
    const child = api.extend({ hooks: noBeforeError });
    const error = (await rejection(child.get(`${a.base}/x${query}`))) as HTTPError;
    expect(error).toBeInstanceOf(HTTPError);
    expect(error.message).not.toContain("sk-secret");
    expect(seen).toEqual([]);
  });

  it("extend with replaceOption({ beforeError: undefined }): cut, parent hooks gone", async () => {
    a.on((hit) => {
      hit.res.statusCode = 404;
      hit.res.end("no");
    });
    const seen: string[] = [];
    const api = createClient({
      hooks: {
        beforeError: [
          ({ error }) => {
            seen.push("parent");
            return error;
          },
        ],
      },
      resilience: { retry: { ...fast, maxAttempts: 1 } },
    });
    const child = api.extend({ hooks: replaceOption({ beforeError: undefined }) as never });
    const error = (await rejection(child.get(`${a.base}/x${query}`))) as HTTPError;
    expect(error.message).not.toContain("sk-secret");
    expect(seen).toEqual([]);
  });

  it("call with replaceOption({ beforeError: undefined }): cut", async () => {
    a.on((hit) => {
      hit.res.statusCode = 404;
      hit.res.end("no");
    });
    const api = createClient({ resilience: { retry: { ...fast, maxAttempts: 1 } } });
    const error = (await rejection(
      api.get(`${a.base}/x${query}`, { hooks: replaceOption({ beforeError: undefined }) as never }),
    )) as HTTPError;
    expect(error.message).not.toContain("sk-secret");
  });

  it("create({ hooks: noBeforeError }): cut", async () => {
    a.on((hit) => {
      hit.res.statusCode = 404;
      hit.res.end("no");
    });
    const api = createClient({ resilience: { retry: { ...fast, maxAttempts: 1 } } });
    const made = api.create({ hooks: noBeforeError });
    const error = (await rejection(made.get(`${a.base}/x${query}`))) as HTTPError;
    expect(error.message).not.toContain("sk-secret");
  });

  it("call beforeError undefined: TimeoutError (ky timeout) message cut", async () => {
    a.on(() => {});
    const api = createClient({ resilience: { retry: { ...fast, maxAttempts: 1 } } });
    const error = (await rejection(api.get(`${a.base}/slow${query}`, { timeout: 50, hooks: noBeforeError }))) as Error;
    expect(error.name).toBe("TimeoutError");
    expect(error.message).not.toContain("sk-secret");
  });

  it("extend beforeError undefined: TimeoutError cut", async () => {
    a.on(() => {});
    const api = createClient({ resilience: { retry: { ...fast, maxAttempts: 1 } } });
    const child = api.extend({ hooks: noBeforeError, timeout: 50 });
    const error = (await rejection(child.get(`${a.base}/slow${query}`))) as Error;
    expect(error.name).toBe("TimeoutError");
    expect(error.message).not.toContain("sk-secret");
  });

  it("call beforeError undefined: NetworkError message cut", async () => {
    const dead = await refusedOrigin();
    const api = createClient({ resilience: { retry: { ...fast, maxAttempts: 1 } } });
    const error = (await rejection(api.get(`${dead}/x${query}`, { hooks: noBeforeError }))) as Error;
    expect(error.message).not.toContain("sk-secret");
    expect(String(error.stack)).not.toContain("sk-secret");
  });

  it("extend(fn) returning beforeError undefined: HTTPError cut", async () => {
    a.on((hit) => {
      hit.res.statusCode = 500;
      hit.res.end("no");
    });
    const api = createClient({ resilience: { retry: { ...fast, maxAttempts: 1 } } });
    const child = api.extend(() => ({ hooks: noBeforeError }));
    const error = (await rejection(child.get(`${a.base}/x${query}`))) as HTTPError;
    expect(error.message).not.toContain("sk-secret");
  });
});

describe("ky: replaceOption headers", () => {
  const bad = "Bearer sk-secret\r\nx: y";
  const forms: Array<[string, () => unknown]> = [
    ["record", () => ({ authorization: bad })],
    ["pairs", () => [["authorization", bad]]],
    ["map", () => new Map([["authorization", bad]])],
    ["record with undefined beside", () => ({ "x-gone": undefined, authorization: bad })],
    ["non-latin1", () => ({ authorization: "Bearer sk-secret\u0100" })],
    ["NUL", () => ({ authorization: "Bearer sk-secret\u0000" })],
    ["value object", () => ({ authorization: { toString: () => bad } })],
  ];
  for (const [label, make] of forms) {
    it(`extend replaceOption(${label}) refused naming the header`, () => {
      const api = createClient({});
      let error: unknown;
      try {
        api.extend({ headers: replaceOption(make()) as never });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect(String((error as Error).message)).toContain("authorization");
      expect(String((error as Error).message)).not.toContain("sk-secret");
    });
    it(`call replaceOption(${label}) refused naming the header`, async () => {
      const api = createClient({ resilience: { retry: { ...fast, maxAttempts: 1 } } });
      let error: unknown;
      try {
        await api.get(`${a.base}/x`, { headers: replaceOption(make()) as never });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect(String((error as Error).message)).not.toContain("sk-secret");
      expect(String((error as Error).stack)).not.toContain("sk-secret");
    });
    it(`createClient/create replaceOption(${label}) refused`, () => {
      const errs: unknown[] = [];
      try {
        createClient({ headers: replaceOption(make()) as never });
      } catch (e) {
        errs.push(e);
      }
      try {
        createClient({}).create({ headers: replaceOption(make()) as never });
      } catch (e) {
        errs.push(e);
      }
      expect(errs).toHaveLength(2);
      for (const e of errs) expect(String((e as Error).message)).not.toContain("sk-secret");
    });
  }
  it("replaceOption(Headers) and replaceOption(undefined) pass, as ky", async () => {
    const api = createClient({ headers: { "x-a": "1" }, resilience: { retry: { ...fast, maxAttempts: 1 } } });
    const child = api.extend({ headers: replaceOption(new Headers({ "x-b": "2" })) as never });
    await (await child.get(`${a.base}/h`)).text();
    expect(a.hits[0]?.headers["x-b"]).toBe("2");
    expect(a.hits[0]?.headers["x-a"]).toBeUndefined();
    const plain = ky.create({ headers: { "x-a": "1" } }).extend({ headers: replaceOption(undefined) as never });
    const ours = api.extend({ headers: replaceOption(undefined) as never });
    await (await plain.get(`${a.base}/p`)).text();
    await (await ours.get(`${a.base}/o`)).text();
    expect(a.hits[2]?.headers["x-a"]).toBe(a.hits[1]?.headers["x-a"]);
  });
});
