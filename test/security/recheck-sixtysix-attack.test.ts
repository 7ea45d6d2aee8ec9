/**
 * Outside-in attack on the sixty-fifth session's last fixes, rechecked: the ky client naming a refused field from
 * the options ky built its `Request` with (module state `lastMerged`), its last `init` hook, the `init` enum
 * refusals on a `Request` input, a chain endpoint's own and transform-set headers on a redirect, a layer installed
 * as the global fetch with a passed `fetch` reading it (real MSW 3), and `on(name)` with odd string names.
 *
 * Docs:
 * - docs/retry.md (ky): "an `init` hook that sets either, or `resilience` or a key one or two letters from it, is
 *   refused when the call is made (the client adds its own `init` hook, the last to run, …)"; src/ky doc of
 *   `createClient` (public JSDoc): "… and when an `init` hook sets them, so no call leaves the layer or retries
 *   twice."
 * - docs/retry.md (ky): "what the platform refuses there (such a header, a method that is no token, an `init` field
 *   no `Request` takes) is thrown by the call … a value that is no plain word is named `a string` there too".
 *   CHANGELOG (Fixed): "The fields are now read as ky built its `Request` with them."
 * - docs/retry.md: "every value fetch takes for `cache`, `mode`, `credentials`, `redirect`, `referrerPolicy`,
 *   `priority` and `duplex` is a plain word, so text that is not one … or no text at all is refused at once in every
 *   build, a `TypeError` naming it by its kind (`init.mode is no value fetch takes, got a string`)".
 * - docs/retry.md (Redirects): "From the first hop to another origin on … only the cross-origin allowlist is sent";
 *   docs/fallback.md: "The same holds for hedges and redirects".
 * - README.md: "(a `fetch` you pass is called as it is: one that reads the global fetch at call time reaches
 *   whatever layer is installed there; this layer, handed back the request it is handing your `fetch`, sends it to
 *   the fetch beneath it)". docs/testing.md: "a layer made before `server.listen()` and installed after it sends
 *   through the fetch that was global when it was made, past MSW, to the network. Made after `listen()`, it sends
 *   through MSW's patch; installed before it, MSW's patch wraps it, and the layer, handed its own request back by
 *   the patch, passes it straight to the fetch beneath it, where MSW meets it."
 * - docs/health-and-events.md: "A name that is not one of the eight below … is a `TypeError` at once, which lists
 *   them."
 *
 * How: root `createResilience`, ./fallback `fallback`, ./ky `createClient` (`extend`, `init` hooks,
 * `stringifyJson`); three node:http servers on 127.0.0.1 (httpUpstream); real `msw/node` `setupServer` (MSW 3).
 * Nothing waits on a clock (retries off or 1 ms; ky's own retry delay set to 1 ms).
 *
 * Paths: plain call, `Request` input (subclass), chain, chain with library-followed redirect, ky client (call,
 * `extend`, `init` hooks, concurrent calls, reentrant call), global-fetch install (MSW before/after, two layers).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-sixth session both were
 * fixed, so plain `it`: the client's first `init` hook at every level refuses a hook that adds or removes hooks,
 * its check pins the layer's `fetch` and `retry: 0` as data, and a call made inside another hands its options back):
 * 1. retry.md "the client adds its own `init` hook, the last to run" / createClient JSDoc "so no call leaves the
 *    layer or retries twice". Observed: ky runs the `init` hooks of an array a hook can edit while ky walks it: an
 *    instance `init` hook that removes the client's check (`o.hooks.init.pop()`) and sets `o.fetch` sends the call
 *    past the layer (the server got nothing, the hook's fetch answered); one that sets ky's `retry` makes ky retry
 *    the layer's final 503 (3 requests with the layer's `retry: false`). Pushing a hook after the check does the
 *    same. Test "defect 1: …".
 * 2. retry.md (ky) "a value that is no plain word is named `a string` there too". Observed: the naming reads module
 *    state that each call clears in its `finally`; a call made by the client while ky builds another call's
 *    `Request` (from a `stringifyJson` that logs through the client, or an `init` hook pushed after the client's)
 *    clears it, and the outer call's refusal of an `extend`-level `mode: "sk/live+SECRET=="` is quoted whole:
 *    `Request constructor: sk/live+SECRET== is not an accepted type…`. Test "defect 2: …".
 *
 * Held (plain `it`):
 * - A `Request` subclass whose `mode`/`cache` getter returns a key: refused at once, kind only, nothing sent, on a
 *   plain call and a chain.
 * - Values fetch takes (`no-store`, `same-origin`, `high`, `no-referrer`) are sent on a plain call, a chain and the
 *   ky client (call and `extend` level).
 * - ky: two calls started together, one refused (its `extend`-level key named `a string`) and one good (200); the
 *   good call after a refused one, and a refused one after an `init` hook that threw (its own error, as thrown).
 * - A chain endpoint on another origin redirecting (library follower) to a third: the endpoint's own header, a
 *   transform-set header and the caller's `authorization` all stay off the third origin.
 * - Real MSW 3 with a layer whose passed `fetch` reads the global fetch: made after `listen()` and installed, or
 *   installed before `listen()`, MSW answers, one `request` event, nothing at the real server; made before and
 *   installed after, the real server gets it once. Another layer installed there runs once for it.
 * - `on("")`, `"__proto__"`, `"constructor"`, `"toString"`, `"Retry"`, `" retry"`, `"retry\0"` are refused
 *   with the eight names; no `Object.prototype` name subscribes.
 *
 * Docs-silent (not pinned):
 * - An `init` hook that throws a `TypeError` whose message holds a field value that is no plain word has its error
 *   replaced by a new `TypeError` (class, stack and cause lost); only the message was promised. In the sixty-sixth
 *   session such an error is thrown as it is (ky never built its `Request`), and retry.md says so (test "an init
 *   hook's own TypeError quoting a field's value is thrown as it is").
 * - MSW 3 in Node meets a request when its socket is made: a request sent over a keep-alive socket that undici
 *   opened to that origin before (a real request) passes MSW whatever the layer does (MSW's, not the layer's;
 *   testing.md's order rules assume a fresh origin).
 */
import { readFileSync } from "node:fs";
import { HttpResponse, http } from "msw";
import { setupServer } from "msw/node";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection, thrown } from "../helpers/settled.ts";

const K = "sk/live+SECRET==";
const NAMES = "retry, request, breaker, fallback, degradation, replay, redirect, store";
const a = httpUpstream();
const b = httpUpstream();
const c = httpUpstream();
/** Used by the MSW test's network case only: a socket opened to it earlier would pass MSW 3 (see there). */
const m = httpUpstream();
serveDuringFile(a, b, c, m);

type Hooked = { hooks: { init: unknown[] }; fetch?: unknown; retry?: unknown };
const chain = () =>
  fallback([
    {
      name: "gen",
      endpoints: [
        { name: "p", url: `${a.base}/p` },
        { name: "q", url: `${b.base}/q` },
      ],
    },
  ]);

describe("ky client: the client's own init hook is the last", () => {
  it("defect 1: an init hook that removes the client's check cannot send past the layer nor retry twice", async () => {
    a.reset();
    const resilience = createResilience({ retry: false });
    let beside = 0;
    const bypass = createClient({
      resilience,
      hooks: {
        init: [
          (o) => {
            (o as unknown as Hooked).hooks.init.pop();
            (o as unknown as Hooked).fetch = async () => {
              beside++;
              return new Response("beside");
            };
          },
        ],
      },
    });
    const outcome = await Promise.resolve()
      .then(() => bypass.get(`${a.base}/x`))
      .then(
        (res) => res.text(),
        (error: unknown) => error,
      );
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("no");
    });
    const twice = createClient({
      resilience,
      hooks: {
        init: [
          (o) => {
            (o as unknown as Hooked).hooks.init.pop();
            (o as unknown as Hooked).retry = { limit: 2, delay: () => 1 };
          },
        ],
      },
    });
    await Promise.resolve()
      .then(() => twice.get(`${a.base}/y`))
      .catch(() => undefined);
    const ys = a.hits.filter((hit) => hit.path === "/y").length;
    a.reset();
    // Documented: refused when the call is made (a ConfigError), nothing beside the layer, one request for /y.
    expect(beside).toBe(0);
    expect(outcome).toMatchObject({ name: "ConfigError" });
    expect(ys).toBeLessThanOrEqual(1);
  });

  it("defect 1: an init hook pushed after the client's check cannot set ky's fetch", async () => {
    a.reset();
    let beside = 0;
    const api = createClient({
      resilience: { retry: false },
      hooks: {
        init: [
          (o) => {
            (o as unknown as Hooked).hooks.init.push((later: Hooked) => {
              later.fetch = async () => {
                beside++;
                return new Response("beside");
              };
            });
          },
        ],
      },
    });
    const error = await Promise.resolve()
      .then(() => api.get(`${a.base}/x`))
      .catch((caught: unknown) => caught);
    expect(beside).toBe(0);
    expect(error).toMatchObject({
      name: "ConfigError",
      path: "hooks.init",
      message: expect.stringContaining("may not add or remove init hooks"),
    });
    expect(a.hits.filter((hit) => hit.path === "/x")).toHaveLength(0);
    const guide = readFileSync(new URL("../../docs/retry.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain(
      "a hook that adds or removes `init` hooks while ky runs them is refused as it returns, a `ConfigError` at `hooks.init`, so none runs after the client's",
    );
  });

  it("an init hook whose fetch getter gives the layer's to the check and its own to ky is refused (sixty-sixth session)", async () => {
    a.reset();
    let beside = 0;
    let reads = 0;
    const api = createClient({ resilience: { retry: false } });
    const sneaky = api.extend({
      hooks: {
        init: [
          (o) => {
            const layerFetch = (o as unknown as Hooked).fetch;
            Object.defineProperty(o, "fetch", {
              get: () =>
                reads++ === 0
                  ? layerFetch
                  : async () => {
                      beside++;
                      return new Response("beside");
                    },
              configurable: true,
              enumerable: true,
            });
          },
        ],
      },
    });
    const res = await sneaky.get(`${a.base}/g`);
    // The check pins the layer's fetch as data: ky sends through the layer.
    expect(beside).toBe(0);
    expect(res.status).toBe(200);
    expect(a.hits.filter((hit) => hit.path === "/g")).toHaveLength(1);
  });
});

describe("ky client: naming a refused field, concurrency and reentrancy", () => {
  it("defect 2: a call made while ky builds another's Request leaves that one's key quoted", () => {
    const api = createClient({ resilience: { retry: false } });
    const logging = api.extend({
      mode: K as RequestMode,
      stringifyJson: (value: unknown) => {
        // A logger that reports through the same client, as apps do.
        api.get(`${a.base}/log`).catch(() => undefined);
        return JSON.stringify(value);
      },
    });
    const error = thrown(() => logging.post(`${a.base}/x`, { json: { n: 1 } }));
    expect(error).toBeInstanceOf(TypeError);
    expect(says(error)).not.toContain("SECRET");
    expect(says(error)).toContain("a string");
  });

  it("defect 2: the same through an init hook that calls the client after the client's own", () => {
    const api = createClient({ resilience: { retry: false } });
    const bad = api.extend({
      mode: K as RequestMode,
      hooks: {
        init: [
          (o) => {
            (o as unknown as Hooked).hooks.init.push(() => {
              api.get(`${a.base}/log`).catch(() => undefined);
            });
          },
        ],
      },
    });
    expect(says(thrown(() => bad.get(`${a.base}/x`)))).not.toContain("SECRET");
  });

  it("two calls at once, one refused and one good: each as it should, the state of the refused one gone", async () => {
    a.reset();
    const api = createClient({ resilience: { retry: false } });
    const bad = api.extend({ credentials: K as RequestCredentials });
    let refused: unknown;
    const good = api.get(`${a.base}/good`);
    try {
      void bad.get(`${a.base}/bad`);
    } catch (error) {
      refused = error;
    }
    const again = api.get(`${a.base}/again`);
    expect(refused).toBeInstanceOf(TypeError);
    expect(says(refused)).not.toContain("SECRET");
    expect(says(refused)).toContain("a string");
    expect(await Promise.all([good, again].map(async (p) => (await p).status))).toEqual([200, 200]);
    const paths = a.hits.map((hit) => hit.path).filter((path) => path !== "/log");
    expect(paths.sort()).toEqual(["/again", "/good"]);
    // A call-level key after the refused one is named too.
    expect(says(thrown(() => api.get(`${a.base}/x`, { referrerPolicy: K as ReferrerPolicy })))).not.toContain("SECRET");
  });

  it("an init hook that throws: its own error, as thrown; the next refused call is still named", () => {
    const own = new Error("hook failed");
    const api = createClient({ resilience: { retry: false } });
    const throwing = api.extend({
      mode: K as RequestMode,
      hooks: {
        init: [
          () => {
            throw own;
          },
        ],
      },
    });
    expect(thrown(() => throwing.get(`${a.base}/x`))).toBe(own);
    const after = thrown(() => api.extend({ mode: K as RequestMode }).get(`${a.base}/x`));
    expect(after).toBeInstanceOf(TypeError);
    expect(says(after)).not.toContain("SECRET");
  });

  it("an init hook's own TypeError quoting a field's value is thrown as it is (sixty-sixth session)", () => {
    const guide = readFileSync(new URL("../../docs/retry.md", import.meta.url), "utf8").replace(/\s+/g, " ");
    expect(guide).toContain("while an error an `init` hook of yours throws is thrown as it is, whatever it quotes");
    for (const level of ["call", "extend"] as const) {
      const own = new TypeError(`bad mode ${K}`);
      const hooks = {
        init: [
          () => {
            throw own;
          },
        ],
      };
      const api = createClient({ resilience: { retry: false } });
      const error =
        level === "call"
          ? thrown(() => api.get(`${a.base}/x`, { mode: K as RequestMode, hooks }))
          : thrown(() => api.extend({ mode: K as RequestMode, hooks }).get(`${a.base}/x`));
      expect(error).toBe(own);
    }
  });

  it("values fetch takes go through the ky client (call and extend level)", async () => {
    a.reset();
    const api = createClient({ resilience: { retry: false } }).extend({ cache: "no-store", priority: "high" });
    const res = await api.get(`${a.base}/ok`, {
      mode: "same-origin",
      credentials: "same-origin",
      referrerPolicy: "no-referrer",
    });
    expect(res.status).toBe(200);
    expect(a.hits).toHaveLength(1);
  });
});

describe("init enum fields: a Request input and fetch's own values", () => {
  class Keyed extends Request {
    override get mode(): RequestMode {
      return K as RequestMode;
    }
    override get cache(): RequestCache {
      return K as RequestCache;
    }
  }

  it("a Request whose field getters return a key: refused at once, kind only, nothing sent (plain and chain)", async () => {
    a.reset();
    b.reset();
    for (const options of [{ retry: false as const }, { retry: false as const, fallback: chain() }]) {
      const resilience = createResilience(options);
      const heard: string[] = [];
      resilience.on("request", () => heard.push("request"));
      const error = await rejection(resilience.fetch(new Keyed(`${a.base}/p/x`)));
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/^resilience\.fetch: init\.(cache|mode) is no value fetch takes/);
      expect(says(error)).not.toContain("SECRET");
      expect(heard).toEqual([]);
    }
    expect(a.hits.length + b.hits.length).toBe(0);
  });

  it("values fetch takes are sent on a plain call and a chain", async () => {
    a.reset();
    const init: RequestInit = {
      cache: "no-store",
      mode: "same-origin",
      credentials: "same-origin",
      priority: "high",
      referrerPolicy: "no-referrer",
      redirect: "follow",
    };
    expect((await createResilience({ retry: false }).fetch(`${a.base}/p/1`, init)).status).toBe(200);
    expect((await createResilience({ retry: false, fallback: chain() }).fetch(`${a.base}/p/2`, init)).status).toBe(200);
    expect(a.hits.map((hit) => hit.path)).toEqual(["/p/1", "/p/2"]);
  });
});

describe("a chain endpoint's headers on a redirect to a third origin", () => {
  it("its own header, a transform-set header and the caller's key stay off the third origin", async () => {
    a.reset();
    b.reset();
    c.reset();
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end();
    });
    b.on((hit) => {
      hit.res.statusCode = 302;
      hit.res.setHeader("location", `${c.base}/z`);
      hit.res.end();
    });
    const resilience = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${a.base}/p` },
            {
              name: "q",
              url: `${b.base}/q`,
              headers: { "x-backup-key": "backup-SECRET-123" },
              transform: (view) => {
                view.headers.set("x-set", "set-SECRET-456");
                return view;
              },
            },
          ],
        },
      ]),
    });
    const res = await resilience.fetch(`${a.base}/p/x`, { headers: { authorization: "Bearer caller-SECRET-789" } });
    expect(res.status).toBe(200);
    expect(b.hits[0]?.headers).toMatchObject({ "x-backup-key": "backup-SECRET-123", "x-set": "set-SECRET-456" });
    expect(b.hits[0]?.headers.authorization).toBeUndefined();
    expect(c.hits).toHaveLength(1);
    expect(JSON.stringify(c.hits[0]?.headers)).not.toContain("SECRET");
    a.reset();
    b.reset();
    c.reset();
  });
});

describe("a layer installed as the global fetch, its passed fetch reading it, under real MSW", () => {
  const readsGlobal = (i: RequestInfo | URL, o?: RequestInit) => globalThis.fetch(i, o);

  it("made after listen or installed before it: MSW answers once; made before, installed after: the network", async () => {
    a.reset();
    const native = globalThis.fetch;
    const server = setupServer(
      http.get("https://msw.example/m", () => HttpResponse.text("mocked")),
      http.get(`${m.base}/m`, () => HttpResponse.text("mocked")),
    );
    const once = async (layer: ReturnType<typeof createResilience>, base: string) => {
      const heard: string[] = [];
      layer.on("request", () => heard.push("request"));
      const text = await (await globalThis.fetch(`${base}/m`)).text();
      return [text, heard.length];
    };
    try {
      // MSW 3 in Node meets a request when its socket is made: one sent over a keep-alive socket opened earlier
      // passes it whatever the layer did, so the mocked cases use a host never reached, the network case a server
      // of its own that MSW also answers for.
      server.listen();
      const after = createResilience({ retry: false, fetch: readsGlobal });
      globalThis.fetch = after.fetch;
      expect(await once(after, "https://msw.example")).toEqual(["mocked", 1]);
      server.close();
      globalThis.fetch = native;

      const installed = createResilience({ retry: false, fetch: readsGlobal });
      globalThis.fetch = installed.fetch;
      server.listen();
      expect(await once(installed, "https://msw.example")).toEqual(["mocked", 1]);
      server.close();
      globalThis.fetch = native;
      const before = createResilience({ retry: false, fetch: readsGlobal });
      server.listen();
      globalThis.fetch = before.fetch;
      expect(await once(before, m.base)).toEqual(["ok", 1]);
      expect(m.hits).toHaveLength(1);
    } finally {
      server.close();
      globalThis.fetch = native;
      a.reset();
    }
  });

  it("another layer installed there runs, once, for a layer whose fetch reads the global one", async () => {
    a.reset();
    const native = globalThis.fetch;
    try {
      const outer = createResilience({ retry: false, fetch: readsGlobal });
      const installed = createResilience({ retry: false });
      const heard: string[] = [];
      outer.on("request", () => heard.push("outer"));
      installed.on("request", () => heard.push("installed"));
      globalThis.fetch = installed.fetch;
      expect((await outer.fetch(`${a.base}/two`)).status).toBe(200);
      expect(heard.sort()).toEqual(["installed", "outer"]);
      expect(a.hits).toHaveLength(1);
    } finally {
      globalThis.fetch = native;
      a.reset();
    }
  });
});

describe("on(name) with odd string names", () => {
  it("is refused with the eight names; no Object.prototype name subscribes", () => {
    const resilience = createResilience({ retry: false });
    for (const name of ["", "__proto__", "constructor", "toString", "hasOwnProperty", "Retry", " retry", "retry\0"]) {
      const error = thrown(() => resilience.on(name as never, () => {}));
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(new RegExp(`unknown event, expected one of ${NAMES}$`));
    }
  });
});

function says(e: unknown): string {
  const parts: string[] = [];
  for (let at = e as { message?: unknown; stack?: unknown; cause?: unknown } | undefined, i = 0; at && i < 8; i++) {
    parts.push(String(at.message), String(at.stack));
    at = at.cause as typeof at;
  }
  return parts.join("\n");
}
