/**
 * Outside-in attack on the sixty-sixth session's fixes: the ky client's first `init` hook at every level (refusing
 * a hook that adds or removes init hooks) and its last (pinning `fetch` and `retry: 0` as data), its naming of a
 * refused field after a reentrant call, the testing kit's argument-less builders and `status` bodies, and
 * `resilientProxy` called with no `env`.
 *
 * Docs:
 * - docs/retry.md (ky): "an `init` hook that sets either, or `resilience` or a key one or two letters from it, is
 *   refused when the call is made (the client adds its own `init` hook, the last to run, so a call's
 *   `hooks: { init: undefined }` no longer clears the instance's `init` hooks; a hook that adds or removes `init`
 *   hooks while ky runs them is refused as it returns, a `ConfigError` at `hooks.init`, so none runs after the
 *   client's)"; "its last cuts what yours wrote"; "a value that is no plain word is named `a string` there too".
 *   src/ky JSDoc of `createClient`: "… and when an `init` hook sets them, so no call leaves the layer or retries
 *   twice". SECURITY.md: "and so do the message and stack of ky's own errors through `createClient`".
 * - docs/testing.md: "or any argument given to `malformedJson()`, `networkError()` or `hang()`, which take none";
 *   "a `body` given to `status` with a 204, 205 or 304, which carries none"; "Timers due at the same instant fire
 *   in the order they were set".
 * - docs/cloudflare.md: "Without a token it is open: … or with no `env` at all, as Hono's `app.fetch(request)`
 *   hands on when given no bindings"; "A `store` factory that throws (a binding missing from the env) makes the
 *   request reject with its error … and is called again on the next request".
 *
 * How: ./ky `createClient` (`extend` object and function forms, `create`, ky's exported `replaceOption`), ./testing
 * (`hang`, `networkError`, `malformedJson`, `status` called as faults directly, `TestClock`), ./cloudflare
 * `resilientProxy`; one node:http server on 127.0.0.1 (httpUpstream). No clock waits (retries off, ky's delay 1 ms).
 *
 * Paths: ky client (createClient, extend, extend(fn), create, call, init hooks, stringifyJson), testing kit
 * builders, Cloudflare proxy (health GET/HEAD, route, store factory) with `env` undefined and null.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-sixth session both were
 * fixed, so plain `it`: ky's `replaceOption` wrapper is told by ky's own mark, read off one ky makes, never by a
 * `value` key, and the guard compares each entry of the list as it stands, by its descriptor):
 * 1. retry.md "the client adds its own `init` hook, the last to run"; JSDoc "so no call leaves the layer or retries
 *    twice". Observed: the client tells ky's `replaceOption(hooks)` wrapper by `"value" in hooks`, so a plain
 *    `hooks` object with a `value` key (or a Proxy whose `has` says yes) gets the guard and the check put under
 *    `value`, which ky never reads: at call level `api.get(url, { hooks: { value: undefined, init: [(o) => {
 *    o.fetch = mine }] } })` answers from `mine` (nothing at the server); `o.retry = { limit: 2 }` makes 3 requests
 *    with the layer's `retry: false`; `mode: "sk/live+SECRET=="` beside it is quoted whole; a `beforeError` hook's
 *    URL write-back is left uncut (`?key=…` in the HTTPError message). At `createClient` level the instance's own
 *    init hooks then run before any guard: one that cuts the list (`initList(o).length = 1`) and sets `o.fetch`
 *    sends past the layer. Tests "defect 1: …".
 * 2. retry.md "a hook that adds or removes `init` hooks while ky runs them is refused …, so none runs after the
 *    client's". Observed: the guard compares the live list through the list's own `some` and its index
 *    properties; a hook that puts its own hook in the check's place and gives the list an own `some` returning
 *    false, or a getter at the check's index (the kept entry on the guard's read, its own on ky's), is not
 *    refused, and its hook, run in the check's place, sets `o.fetch`: past the layer. Plain in-place replacement
 *    is refused (held). Test "defect 2: …".
 *
 * Held (plain `it`):
 * - Pushing or popping init hooks is refused at `hooks.init` from hooks given to extend (object and function),
 *   create and the call; ky's `replaceOption(hooks)` at call, extend and create keeps the check (`o.fetch` refused);
 *   `hooks: { init: undefined }` at extend clears the parent's hooks as in ky and still refuses `o.fetch`, at call
 *   level the instance's hooks still run; in-place `o.hooks.init[i] = other` refused; a hook that reassigns
 *   `o.hooks` cannot drop the check; a non-configurable getter for `fetch`/`retry` refused; `o.fetch` set and set
 *   back goes through the layer; Proxy-wrapped call options refused; a hook's throw is thrown as it is and the next
 *   call is served.
 * - Legit hooks (headers, json, searchParams) at every level, five per level, run in order and reach the server;
 *   nothing a hook did leaks into the next call.
 * - A refused `mode` key at createClient, extend, extend(fn), create, call and set by an init hook, with a client
 *   call made inside `stringifyJson` or an init hook: named `a string`, never quoted.
 * - hang/networkError/malformedJson refuse `undefined`, `null`, `0`, `""` (given, they count); a spread of no
 *   arguments is taken. status(204|205|304) refuses `body: ""` and `null`, takes none.
 * - TestClock: timers due at the same instant fire in the order set, whether set at different times, inside a
 *   firing timer, with NaN/negative delays (0), or delays past 2^31 - 1 (clamped), under advance and run.
 * - resilientProxy with env undefined/null: health GET 200 JSON, HEAD 200, POST 405, route served; a custom
 *   healthTokenVar too; a store factory reading `env.KV` rejects with its own TypeError and is called again.
 *
 * Docs-silent (not pinned):
 * - The kit's `status(code, options)` keeps `options` by reference and reads it per answer: `retryAfter` set to -5
 *   after the build is sent as `Retry-After: -5`, and `headers` set to a bad name after it throws inside the
 *   handler (the layer's own options are copied when read; the kit's are not). In the sixty-sixth session every
 *   builder reads what it is given when it is called, and docs/testing.md says so
 *   (test/testing/read-when-built.test.ts).
 */
import { readFileSync } from "node:fs";
import { type Options, replaceOption } from "ky";
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { hang, malformedJson, networkError, status, TestClock } from "../../src/testing/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const K = "sk/live+SECRET==";
const a = httpUpstream();
serveDuringFile(a);

type Hook = NonNullable<NonNullable<Options["hooks"]>["init"]>[number];
/** The live list of `init` hooks ky walks. */
const initList = (o: Options) => o.hooks?.init as unknown[];
const guide = (file: string) =>
  readFileSync(new URL(`../../docs/${file}`, import.meta.url), "utf8").replace(/\s+/g, " ");

/** A call's outcome, thrown at once or rejected: its status and body, or the error. */
async function settle(call: () => Promise<Response>): Promise<{ status?: number; text?: string; error?: unknown }> {
  try {
    const res = await call();
    return { status: res.status, text: await res.text() };
  } catch (error) {
    return { error };
  }
}

function says(e: unknown): string {
  const parts: string[] = [];
  for (let at = e as { message?: unknown; stack?: unknown; cause?: unknown } | undefined, i = 0; at && i < 8; i++) {
    parts.push(String(at.message), String(at.stack));
    at = at.cause as typeof at;
  }
  return parts.join("\n");
}

/** A fetch beside the layer, counting its calls. */
function beside() {
  const self = {
    calls: 0,
    fetch: async () => {
      self.calls++;
      return new Response("beside");
    },
  };
  return self;
}

const setFetch =
  (b: ReturnType<typeof beside>): Hook =>
  (o) => {
    o.fetch = b.fetch;
  };
const hits = (path: string) => a.hits.filter((hit) => hit.path.split("?")[0] === path).length;

describe("ky client: a hooks object with a `value` key is taken for ky's replaceOption", () => {
  it("defect 1: a call's hooks with a `value` key cannot set ky's fetch", async () => {
    a.reset();
    const b = beside();
    const api = createClient({ resilience: { retry: false } });
    const out = await settle(() =>
      api.get(`${a.base}/v1`, { hooks: { value: undefined, init: [setFetch(b)] } as never }),
    );
    expect(b.calls).toBe(0);
    expect(out.error).toMatchObject({ name: "ConfigError", path: "fetch" });
  });

  it("defect 1: a Proxy hooks whose `has` says yes cannot set ky's fetch", async () => {
    const b = beside();
    const api = createClient({ resilience: { retry: false } });
    const hooks = new Proxy({ init: [setFetch(b)] }, { has: () => true });
    const out = await settle(() => api.get(`${a.base}/v2`, { hooks: hooks as never }));
    expect(b.calls).toBe(0);
    expect(out.error).toMatchObject({ name: "ConfigError", path: "fetch" });
  });

  it("defect 1: a call's hooks with a `value` key cannot make ky retry the layer's final answer", async () => {
    a.reset();
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("no");
    });
    const api = createClient({ resilience: { retry: false } });
    const retry: Hook = (o) => {
      o.retry = { limit: 2, delay: () => 1 };
    };
    const out = await settle(() => api.get(`${a.base}/r`, { hooks: { value: undefined, init: [retry] } as never }));
    const sent = hits("/r");
    a.reset();
    // Today 3 (ky's 2 retries over the layer's one attempt).
    expect(sent).toBe(0);
    expect(out.error).toMatchObject({ name: "ConfigError", path: "retry" });
  });

  it("defect 1: createClient's hooks with a `value` key run before the guard, cut the list and leave the layer", async () => {
    a.reset();
    const b = beside();
    const cut: Hook = (o) => {
      initList(o).length = 1;
      o.fetch = b.fetch;
    };
    const api = createClient({ resilience: { retry: false }, hooks: { value: undefined, init: [cut] } as never });
    const out = await settle(() => api.get(`${a.base}/c`));
    expect(b.calls).toBe(0);
    expect(out.error).toMatchObject({ name: "ConfigError" });
  });

  it("defect 1: beside a `value` key, a refused mode is quoted whole", () => {
    const api = createClient({ resilience: { retry: false } });
    let error: unknown;
    try {
      void api.get(`${a.base}/m`, { mode: K as RequestMode, hooks: { value: undefined } as never });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect(says(error)).not.toContain("SECRET");
  });

  it("defect 1: beside a `value` key, what a beforeError hook writes is not cut last", async () => {
    a.reset();
    a.on((hit) => {
      hit.res.statusCode = 503;
      hit.res.end("no");
    });
    const writeBack = ({ error }: { error: Error & { request?: Request } }) => {
      error.message = `${error.message} (${error.request?.url})`;
      return error;
    };
    const api = createClient({ resilience: { retry: false } });
    const url = `${a.base}/e?key=QUERY-SECRET`;
    const plain = await settle(() => api.get(url, { hooks: { beforeError: [writeBack] } as never }));
    // Control: the last cut holds on the ordinary path.
    expect((plain.error as Error).name).toBe("HTTPError");
    expect(says(plain.error)).not.toContain("QUERY-SECRET");
    const marked = await settle(() => api.get(url, { hooks: { value: undefined, beforeError: [writeBack] } as never }));
    a.reset();
    expect(says(marked.error)).not.toContain("QUERY-SECRET");
  });
});

describe("ky client: the guard's view of the list", () => {
  it("defect 2: a hook in the check's place, hidden from the guard's compare, cannot set ky's fetch", async () => {
    a.reset();
    const api = createClient({ resilience: { retry: false } });
    const viaSome = beside();
    const ownSome: Hook = (o) => {
      const list = initList(o);
      list[list.length - 1] = setFetch(viaSome);
      Object.defineProperty(list, "some", { value: () => false });
    };
    const viaGetter = beside();
    const getter: Hook = (o) => {
      const list = initList(o);
      const at = list.length - 1;
      const kept = list[at];
      let reads = 0;
      Object.defineProperty(list, at, {
        get: () => (reads++ === 0 ? kept : setFetch(viaGetter)),
        enumerable: true,
        configurable: true,
      });
    };
    const first = await settle(() => api.get(`${a.base}/s`, { hooks: { init: [ownSome] } }));
    const second = await settle(() => api.get(`${a.base}/g`, { hooks: { init: [getter] } }));
    expect([viaSome.calls, viaGetter.calls]).toEqual([0, 0]);
    expect(first.error).toMatchObject({ name: "ConfigError", path: "hooks.init" });
    expect(second.error).toMatchObject({ name: "ConfigError", path: "hooks.init" });
  });
});

describe("ky client: the guard and the check hold on every other way in", () => {
  it("pushing or popping init hooks is refused at hooks.init from extend, extend(fn), create and the call", async () => {
    a.reset();
    const b = beside();
    const push: Hook = (o) => {
      initList(o).push(setFetch(b));
    };
    const pop: Hook = (o) => {
      initList(o).pop();
      o.fetch = b.fetch;
    };
    const api = createClient({ resilience: { retry: false } });
    for (const hook of [push, pop]) {
      const ways = [
        () => api.extend({ hooks: { init: [hook] } }).get(`${a.base}/x`),
        () => api.extend(() => ({ hooks: { init: [hook] } })).get(`${a.base}/x`),
        () => api.create({ hooks: { init: [hook] } }).get(`${a.base}/x`),
        () => api.get(`${a.base}/x`, { hooks: { init: [hook] } }),
        () => api.extend({ hooks: { init: [() => {}, hook, () => {}] } }).get(`${a.base}/x`),
      ];
      for (const way of ways) {
        const out = await settle(way);
        expect(out.error).toMatchObject({ name: "ConfigError", path: "hooks.init" });
      }
    }
    expect(b.calls).toBe(0);
    expect(hits("/x")).toBe(0);
    expect(guide("retry.md")).toContain(
      "an `init` hook that sets either, or `resilience` or a key one or two letters from it, is refused when the call is made",
    );
  });

  it("ky's replaceOption around hooks at call, extend and create keeps the check", async () => {
    const b = beside();
    const api = createClient({ resilience: { retry: false } });
    const ways = [
      () => api.get(`${a.base}/x`, { hooks: replaceOption({ init: [setFetch(b)] }) as never }),
      () => api.extend({ hooks: replaceOption({ init: [setFetch(b)] }) as never }).get(`${a.base}/x`),
      () => api.extend(() => ({ hooks: replaceOption({ init: [setFetch(b)] }) as never })).get(`${a.base}/x`),
      () => api.create({ hooks: replaceOption({ init: [setFetch(b)] }) as never }).get(`${a.base}/x`),
    ];
    for (const way of ways) expect((await settle(way)).error).toMatchObject({ name: "ConfigError", path: "fetch" });
    expect(b.calls).toBe(0);
  });

  it("hooks: { init: undefined } clears the parent's at extend (as ky), not the instance's at a call; fetch refused", async () => {
    a.reset();
    const b = beside();
    const ran: string[] = [];
    const api = createClient({ resilience: { retry: false }, hooks: { init: [() => void ran.push("instance")] } });
    const cleared = api.extend({ hooks: { init: undefined } as never });
    expect((await settle(() => cleared.get(`${a.base}/u1`))).status).toBe(200);
    expect(ran).toEqual([]);
    expect((await settle(() => api.get(`${a.base}/u2`, { hooks: { init: undefined } as never }))).status).toBe(200);
    expect(ran).toEqual(["instance"]);
    const later = cleared.extend({ hooks: { init: [setFetch(b)] } });
    expect((await settle(() => later.get(`${a.base}/u3`))).error).toMatchObject({ name: "ConfigError", path: "fetch" });
    const call = await settle(() => cleared.get(`${a.base}/u4`, { hooks: { init: undefined } as never }));
    expect(call.status).toBe(200);
    expect(b.calls).toBe(0);
    expect(a.hits.map((hit) => hit.path)).toEqual(["/u1", "/u2", "/u4"]);
  });

  it("in-place replacement, a reassigned o.hooks, non-configurable getters: refused; set and set back: the layer", async () => {
    a.reset();
    const b = beside();
    const api = createClient({ resilience: { retry: false } });
    const inPlace: Hook = (o) => {
      initList(o)[initList(o).length - 1] = setFetch(b);
    };
    const earlier: Hook = (o) => {
      initList(o)[0] = () => {};
    };
    const reassigned: Hook = (o) => {
      o.hooks = { init: [] };
      o.fetch = b.fetch;
    };
    // The layer's value on the check's read, the hook's on ky's; an existing key stays configurable unless told.
    const layerFirst = (key: "fetch" | "retry", mine: unknown, configurable = false): Hook => {
      return (o) => {
        const layer = o[key];
        let reads = 0;
        Object.defineProperty(o, key, { get: () => (reads++ === 0 ? layer : mine), enumerable: true, configurable });
      };
    };
    const outcomes = [];
    for (const hook of [inPlace, earlier, reassigned, layerFirst("fetch", b.fetch), layerFirst("retry", 3)])
      outcomes.push((await settle(() => api.get(`${a.base}/p`, { hooks: { init: [hook] } }))).error);
    expect(outcomes).toMatchObject([
      { name: "ConfigError", path: "hooks.init" },
      { name: "ConfigError", path: "hooks.init" },
      { name: "ConfigError", path: "fetch" },
      { name: "ConfigError", path: "fetch" },
      { name: "ConfigError", path: "retry" },
    ]);
    const back: Hook = (o) => {
      const layer = o.fetch as NonNullable<Options["fetch"]>;
      o.fetch = b.fetch;
      o.retry = 5;
      o.fetch = layer;
      o.retry = 0;
    };
    const served = await settle(() => api.extend({ hooks: { init: [back] } }).get(`${a.base}/back`));
    expect(served).toEqual({ status: 200, text: "ok" });
    // A configurable getter is pinned as data by the check: ky sends through the layer.
    const pinned = await settle(() =>
      api.get(`${a.base}/pinned`, { hooks: { init: [layerFirst("fetch", b.fetch, true)] } }),
    );
    expect(pinned).toEqual({ status: 200, text: "ok" });
    expect(b.calls).toBe(0);
    expect(a.hits.map((hit) => hit.path)).toEqual(["/back", "/pinned"]);
  });

  it("Proxy-wrapped options are refused; a hook's throw is thrown as it is, and the next call is served", async () => {
    a.reset();
    const b = beside();
    const api = createClient({ resilience: { retry: false } });
    const wrapped = new Proxy({ hooks: new Proxy({ init: [setFetch(b)] }, {}) }, {});
    expect((await settle(() => api.get(`${a.base}/w`, wrapped as never))).error).toMatchObject({ path: "fetch" });
    const own = new RangeError(`hook failed ${K}`);
    const throwing: Hook = () => {
      throw own;
    };
    expect((await settle(() => api.get(`${a.base}/t`, { hooks: { init: [throwing] } }))).error).toBe(own);
    expect((await settle(() => api.extend({ hooks: { init: [throwing] } }).get(`${a.base}/t`))).error).toBe(own);
    expect((await settle(() => api.get(`${a.base}/after`))).status).toBe(200);
    expect(b.calls).toBe(0);
    expect(a.hits.map((hit) => hit.path)).toEqual(["/after"]);
  });
});

describe("ky client: legit hooks at every level", () => {
  const tag =
    (name: string, ran: string[]): Hook =>
    (o) => {
      ran.push(name);
      const headers = new Headers(o.headers as HeadersInit);
      headers.append("x-ran", name);
      o.headers = headers;
    };
  const five = (level: string, ran: string[]) => [1, 2, 3, 4, 5].map((i) => tag(`${level}${i}`, ran));

  it("five hooks per level run in order, edit headers, json and searchParams; nothing leaks to the next call", async () => {
    a.reset();
    const ran: string[] = [];
    const api = createClient({ resilience: { retry: false }, hooks: { init: five("c", ran) } });
    const withJson: Hook = (o) => {
      o.json = { ...(o.json as object), seen: true };
      const params = new URLSearchParams(o.searchParams as string);
      params.append("n", "1");
      o.searchParams = params;
    };
    const ext = api.extend({ hooks: { init: [...five("e", ran), withJson] } });
    const fnExt = ext.extend(() => ({ hooks: { init: five("f", ran) } }));
    const once: Hook = (o) => {
      const headers = new Headers(o.headers as HeadersInit);
      headers.set("x-once", "1");
      o.headers = headers;
    };
    const first = await fnExt.post(`${a.base}/j`, {
      json: { a: 1 },
      searchParams: { q: "x" },
      hooks: { init: [...five("k", ran), once] },
    });
    expect(first.status).toBe(200);
    const order = ["c", "e", "f", "k"].flatMap((level) => [1, 2, 3, 4, 5].map((i) => `${level}${i}`));
    expect(ran).toEqual(order);
    ran.length = 0;
    const second = await fnExt.post(`${a.base}/j`, { json: { a: 2 }, searchParams: { q: "y" } });
    expect(second.status).toBe(200);
    expect(ran).toEqual(order.slice(0, 15));
    const created = api.create({ hooks: { init: five("n", ran) } });
    ran.length = 0;
    expect((await created.get(`${a.base}/n`)).status).toBe(200);
    expect(ran).toEqual(five("n", []).map((_, i) => `n${i + 1}`));
    const [one, two, three] = a.hits;
    expect(JSON.parse(one?.body ?? "")).toEqual({ a: 1, seen: true });
    expect(JSON.parse(two?.body ?? "")).toEqual({ a: 2, seen: true });
    expect(one?.path).toBe("/j?q=x&n=1");
    expect(two?.path).toBe("/j?q=y&n=1");
    expect(one?.headers["x-once"]).toBe("1");
    expect(two?.headers["x-once"]).toBeUndefined();
    expect(String(one?.headers["x-ran"]).split(", ")).toEqual(order);
    expect(String(two?.headers["x-ran"]).split(", ")).toEqual(order.slice(0, 15));
    expect(three?.headers["x-ran"]).toBe("n1, n2, n3, n4, n5");
  });
});

describe("ky client: a refused mode at every level, a client call made inside", () => {
  it("is named `a string`, never quoted, with a call inside stringifyJson or an init hook", () => {
    const api = createClient({ resilience: { retry: false } });
    const log = () => void api.get(`${a.base}/log`).catch(() => undefined);
    const setMode: Hook = (o) => {
      o.mode = K as RequestMode;
    };
    const inner = {
      stringifyJson: (value: unknown) => {
        log();
        return JSON.stringify(value);
      },
    };
    const logHook: Hook = () => log();
    const mode = K as RequestMode;
    const ways: Array<() => unknown> = [];
    for (const extra of [inner, { hooks: { init: [logHook] } }]) {
      ways.push(
        () => createClient({ resilience: { retry: false }, mode, ...extra }).post(`${a.base}/x`, { json: 1 }),
        () => api.extend({ mode, ...extra }).post(`${a.base}/x`, { json: 1 }),
        () => api.extend(() => ({ mode, ...extra })).post(`${a.base}/x`, { json: 1 }),
        () => api.create({ mode, ...extra }).post(`${a.base}/x`, { json: 1 }),
        () => api.post(`${a.base}/x`, { mode, json: 1, ...extra }),
        () => api.extend(extra).post(`${a.base}/x`, { json: 1, hooks: { init: [setMode] } }),
      );
    }
    for (const way of ways) {
      let error: unknown;
      try {
        void way();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect(says(error)).toContain("a string");
      expect(says(error)).not.toContain("SECRET");
    }
  });
});

describe("testing kit: builders that take nothing, and status bodies", () => {
  it("hang, networkError and malformedJson refuse any argument given, undefined too; no arguments are taken", () => {
    const builders = { hang, networkError, malformedJson } as unknown as Record<
      string,
      (...args: unknown[]) => unknown
    >;
    for (const [name, build] of Object.entries(builders)) {
      for (const arg of [undefined, null, 0, "", {}]) {
        expect(() => build(arg)).toThrow(new TypeError(`${name}(): takes no arguments, got 1`));
      }
      expect(() => build(undefined, undefined)).toThrow(`${name}(): takes no arguments, got 2`);
      expect(typeof build(...[])).toBe("function");
    }
    expect(guide("testing.md")).toContain("or any argument given to `malformedJson()`, `networkError()` or `hang()`");
  });

  it("status(204|205|304) refuses an empty or null body and answers bodiless without one", async () => {
    for (const code of [204, 205, 304]) {
      for (const body of ["", null, "x"])
        expect(() => status(code, { body } as never)).toThrow(`status(code, { body }): a ${code} carries no body`);
      const res = await status(code, { body: undefined } as never)(new Request("https://kit.example/"), { attempt: 1 });
      expect(res.status).toBe(code);
      expect(res.body).toBeNull();
    }
    expect(guide("testing.md")).toContain("a `body` given to `status` with a 204, 205 or 304, which carries none");
  });
});

describe("testing kit: timers due at the same instant", () => {
  it("fire in the order set: set at different times, inside a timer, NaN/negative delays, clamped delays", async () => {
    expect(guide("testing.md")).toContain("Timers due at the same instant fire in the order they were set");
    const clock = new TestClock();
    const fired: string[] = [];
    clock.setTimer(() => fired.push("a@20"), 20);
    clock.setTimer(() => fired.push("z@0"), Number.NaN);
    clock.setTimer(() => fired.push("y@0"), -5);
    clock.setTimer(() => {
      fired.push("b@10");
      clock.setTimer(() => fired.push("d@10 (set in b)"), 0);
    }, 10);
    clock.setTimer(() => fired.push("c@10"), 10);
    await clock.advance(5);
    expect(fired).toEqual(["z@0", "y@0"]);
    clock.setTimer(() => fired.push("e@20 (set at 5)"), 15);
    clock.setTimer(() => fired.push("f@10 (set at 5)"), 5);
    await clock.advance(15);
    expect(fired).toEqual([
      "z@0",
      "y@0",
      "b@10",
      "c@10",
      "f@10 (set at 5)",
      "d@10 (set in b)",
      "a@20",
      "e@20 (set at 5)",
    ]);
    const far = new TestClock();
    const order: string[] = [];
    far.setTimer(() => order.push("past max, set first"), 2 ** 31 + 10);
    far.setTimer(() => order.push("at max"), 2 ** 31 - 1);
    await far.run(new Promise<void>((resolve) => far.setTimer(resolve, 2 ** 31 - 1)));
    await far.advance(0);
    expect(order).toEqual(["past max, set first", "at max"]);
    expect(far.now()).toBe(2 ** 31 - 1);
  });
});

describe("resilientProxy with no env", () => {
  const req = (path: string, init?: RequestInit) => new Request(`https://worker.example${path}`, init);

  it("env undefined or null: health open (GET, HEAD), POST 405, a route served, a custom token var too", async () => {
    a.reset();
    for (const healthTokenVar of [undefined, "MY_TOKEN"]) {
      const proxy = resilientProxy({
        routes: [{ path: "/v1", upstream: `${a.base}/up` }],
        resilience: { retry: false },
        ...(healthTokenVar ? { healthTokenVar } : {}),
      });
      for (const env of [undefined, null]) {
        const health = await proxy.fetch(req("/__resilience/health"), env as never, undefined as never);
        expect(health.status).toBe(200);
        expect(Object.keys((await health.json()) as object)).toContain("breakers");
        const head = await proxy.fetch(
          req("/__resilience/health", { method: "HEAD" }),
          env as never,
          undefined as never,
        );
        expect([head.status, head.body]).toEqual([200, null]);
        const post = await proxy.fetch(
          req("/__resilience/health", { method: "POST" }),
          env as never,
          undefined as never,
        );
        expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"]);
        const routed = await proxy.fetch(req("/v1/x?q=1"), env as never, undefined as never);
        expect([routed.status, await routed.text()]).toEqual([200, "ok"]);
      }
    }
    expect(a.hits.map((hit) => hit.path)).toEqual(Array(4).fill("/up/x?q=1"));
    expect(guide("cloudflare.md")).toContain("or with no `env` at all, as Hono's `app.fetch(request)` hands on");
  });

  it("a store factory: one guarding env serves; one reading env.KV rejects with its error and is called again", async () => {
    a.reset();
    let calls = 0;
    const guarded = resilientProxy<{ KV?: unknown }>({
      routes: [{ path: "/v1", upstream: `${a.base}/up` }],
      resilience: { retry: false },
      store: (env) => {
        calls++;
        return env?.KV ? undefined : undefined;
      },
    });
    for (const env of [undefined, null])
      expect((await guarded.fetch(req("/v1/s"), env as never, undefined as never)).status).toBe(200);
    expect(calls).toBe(1);
    let reads = 0;
    const reading = resilientProxy<{ KV: unknown }>({
      routes: [{ path: "/v1", upstream: `${a.base}/up` }],
      resilience: { retry: false },
      store: (env) => {
        reads++;
        return env.KV as never;
      },
    });
    for (const env of [undefined, null]) {
      const error = await reading.fetch(req("/v1/r"), env as never, undefined as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(/reading 'KV'/);
    }
    expect(reads).toBe(2);
    expect(a.hits.map((hit) => hit.path)).toEqual(["/up/s", "/up/s"]);
  });
});
