/**
 * Outside-in attack on the ky client (`createClient` from `@storycore/resilient-fetch/ky`) as users of ky 2 drive
 * it: hooks that replace the request or the response, `init` hooks that edit the call's options, ky-built bodies
 * (`URLSearchParams`, `FormData`) under the layer's retry, `extend`/`create` on the client's layer, ky 1's
 * `prefixUrl`.
 *
 * Docs:
 * - docs/retry.md "## ky": "returns a ky instance whose transport is `resilience.fetch`, with ky's own retry off (so
 *   retries happen once, under the budget) and ky's 10 s timeout off unless you pass one"; "ky's own errors
 *   (`HTTPError`, `TimeoutError`) name the URL in their message without its query, userinfo and fragment, as the
 *   layer's errors do: the client's first `beforeError` hook cuts it, so yours see it cut; its last cuts what yours
 *   wrote, and what one of yours throws is cut as well."; "Passing ky's `retry` or `fetch` is a `ConfigError`, at
 *   once, … to `extend` or `create`, whose instances run on the same layer; an `init` hook that sets either is
 *   refused when the call is made (the client adds its own `init` hook, the last to run, …)"; "A header value no
 *   request can carry is a `TypeError` naming the header, never quoting the value, as the layer's own: in a call's
 *   `headers` when the call is made (where the platform would have refused it in ky, quoting it)"; "`getResilienceInfo`
 *   reads the response ky resolves with (or `error.response` of its `HTTPError`)".
 * - SECURITY.md: "and so do the message and stack of ky's own errors through `createClient` …, where a header value
 *   no request can carry is named, never quoted, too".
 * - docs/retry.md "## Bodies": "Strings, bytes, `Blob`, `FormData` and `URLSearchParams` bodies … re-sent so on each
 *   retry"; "a `Request` input's body is read into bytes once and replayed".
 * - src/ky/index.ts JSDoc: "`extend` and `create` refuse ky's `retry` and `fetch` at once …; `create` starts from ky's
 *   defaults, so it gets the layer again"; examples/recipes/ky.ts: "ky 2 calls it `prefix` (ky 1's `prefixUrl` is
 *   rejected)".
 * - docs/options.md: "`createClient` refuses only ky's `retry` and `fetch` … and a key one or two letters from
 *   `resilience` (`resilence`), which would leave the client on a default layer."
 *
 * How: `createClient` (./ky), `createResilience`, `getResilienceInfo`, `isCircuitOpenError`, `ConfigError` (root),
 * `fallback` (./fallback), `recordEvents` (./testing), ky 2.1's `HTTPError`/`TimeoutError`; two node:http servers on
 * 127.0.0.1 (test/helpers/http-upstream.ts) recording every request. Layer backoffs of 1–2 ms are the only timers.
 *
 * Paths: plain ky calls, `beforeRequest` returning a `Request` (plain and down a fallback chain) or a `Response`,
 * `afterResponse` throwing or replacing, `beforeError` returning a new ky error, `init` hooks editing `headers` and
 * `hooks`, `URLSearchParams`/`FormData` bodies, `extend`, `extend(fn)`, `create`, the layer's breaker.
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour; in the sixty-second session both were fixed,
 * the client's last `init` hook naming a header the platform would refuse and putting the cut first and last, so
 * plain `it`):
 * 1. docs/retry.md "A header value no request can carry is a `TypeError` naming the header, never quoting the
 *    value … in a call's `headers` when the call is made (where the platform would have refused it in ky, quoting
 *    it)"; SECURITY.md "where a header value no request can carry is named, never quoted, too". Observed: a call's
 *    `init` hook (ky's documented way to edit a call's options) that sets `options.headers = { authorization:
 *    "Bearer sk-…\r\nx" }` makes the call throw Node's `TypeError: Headers.append: "Bearer sk-…\r\nx" is an invalid
 *    header value.`, the credential in message and stack. The client names a bad header only from the headers it
 *    was given (`redacting` → `namingBadHeader(error, options.headers)`), not from what its `init` hooks leave; its
 *    own last `init` hook (`check`) checks `retry` and `fetch` only. Test "defect 1: …".
 * 2. docs/retry.md "ky's own errors (`HTTPError`, `TimeoutError`) name the URL in their message without its query
 *    … the client's first `beforeError` hook cuts it, so yours see it cut; its last cuts what yours wrote";
 *    SECURITY.md "and so do the message and stack of ky's own errors through `createClient`". Observed: an `init`
 *    hook that sets the call's `hooks` (`options.hooks = { ...options.hooks, beforeError: [logger] }`, or just
 *    `options.hooks = {}`) removes both cuts: the logger sees, and the caller gets, "Request failed with status
 *    code 404 Not Found: GET http://127.0.0.1:…/x?key=SECRET" in message and stack. The client's last `init` hook
 *    (`lastInit`'s `check`) restores the cut only when `beforeError` is an empty array and otherwise wraps throws
 *    (`cutOnThrow`), so a list without `redactMessage`, or none, goes as it is. Test "defect 2: …".
 *
 * Held (plain `it`):
 * - `beforeRequest` returning a new `Request` (other path, own header, keyed body): the layer retries it (three
 *   requests carrying the hook's path, header and body), one `request` event, `attempts` 3; down a fallback chain
 *   the hook's `Request` reaches the spare (its own header kept home, as the cross-origin allowlist says),
 *   `fromFallback` in the info.
 * - `beforeRequest` returning a `Response` (503): nothing sent, the layer hears nothing (no event, no breaker),
 *   `HTTPError` 503 after no retry, no info on its response.
 * - `afterResponse` throwing its own `HTTPError` for a 200 (an error payload): message and stack cut; `beforeError`
 *   returning a fresh ky `TimeoutError(request)`: cut by the client's last hook. `afterResponse` replacing the
 *   layer's final 503 (three requests first) with a 200: resolved with it, no info on it.
 * - `URLSearchParams` and `FormData` bodies on a keyed POST answered 503 then 200: the same bytes twice, the
 *   form's boundary named by its `content-type`, one key.
 * - `create` and `extend` share the client's layer: a breaker opened through the client refuses their calls with
 *   `CircuitOpenError` unwrapped, nothing sent; `create` drops the client's headers, `extend` keeps them. An `init`
 *   hook sees `fetch` the layer's, `retry` 0 and `timeout` false on the client, `extend`, `extend(fn)`, `create`
 *   and a call with `timeout: undefined`.
 * - ky 1's `prefixUrl`: taken by `createClient`, each call throws ky's rename `Error` at once, nothing sent.
 *
 * Docs-silent (not pinned):
 * - A misspelt `resilence` is refused by `createClient` only: per call (percall-sixtytwo noted it), in `extend`
 *   and in `create` (`api.create({ resilence: { retry: false } })`, which a reader may take for a new layer) it is
 *   taken without a word and handed to the layer's fetch as an `init` extension on every call. No doc sentence
 *   says otherwise: docs/options.md scopes the refusal to `createClient`, and CHANGELOG's "refuses `resilience`
 *   given to ky's `extend`, `create` or a call" is about the correct spelling.
 * - A `URLSearchParams` given as `searchParams` to `createClient` is kept by reference (an edit after
 *   `createClient` changes later calls), as options.md says of "other objects … kept as given", though the same
 *   sentence opens "an edit to your objects afterwards changes nothing".
 * - A `beforeError` hook that returns a plain `Error` of its own quoting `request.url` is not cut: the docs cut
 *   ky's own errors only.
 */
import { HTTPError, TimeoutError as KyTimeoutError, type Options } from "ky";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience, getResilienceInfo, isCircuitOpenError } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents } from "../../src/testing/index.ts";
import { type Handler, type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";
import { rejection } from "../helpers/settled.ts";

const A = httpUpstream();
const B = httpUpstream();
serveDuringFile(A, B);

const fast = { initialDelay: 1, maxDelay: 2, jitter: "none" as const };
const reply =
  (code: number, body = "x", headers: Record<string, string> = {}): Handler =>
  (h: Hit) => {
    h.res.writeHead(code, headers);
    h.res.end(body);
  };
/** 503 for the first `n` requests, then 200 "ok". */
const failing =
  (n: number): Handler =>
  (h) =>
    h.n <= n ? reply(503)(h) : reply(200, "ok")(h);
/** A call that may throw at once or reject: what it ends with, either way. */
const settle = (make: () => Promise<unknown>) => rejection((async () => make())());
const textOf = (error: unknown) => `${(error as Error).message}\n${(error as Error).stack}`;

describe("hooks that replace the request or the response", () => {
  it("beforeRequest returning a new Request: the layer retries it, the hook's path, header and body each time", async () => {
    const layer = createResilience({ retry: { maxAttempts: 3, ...fast } });
    const events = recordEvents(layer);
    A.on(failing(2));
    const api = createClient({
      resilience: layer,
      hooks: {
        beforeRequest: [
          ({ request }) =>
            new Request(`${A.base}/moved`, {
              method: "POST",
              headers: {
                "x-hook": "1",
                "idempotency-key": "k1",
                "content-type": request.headers.get("content-type") ?? "",
              },
              body: '{"hook":true}',
            }),
        ],
      },
    });
    const res = await api.post(`${A.base}/orig`, { json: { orig: true } });
    expect(await res.text()).toBe("ok");
    expect(A.hits.map((h) => [h.method, h.path, h.headers["x-hook"], h.headers["idempotency-key"], h.body])).toEqual(
      Array.from({ length: 3 }, () => ["POST", "/moved", "1", "k1", '{"hook":true}']),
    );
    expect(getResilienceInfo(res)?.attempts).toBe(3);
    expect(events.of("request")).toHaveLength(1);
    expect(events.of("retry")).toHaveLength(2);
  });

  it("beforeRequest returning a Request to a chain's URL: it goes down the chain, the spare serves", async () => {
    A.on(reply(503));
    B.on(reply(200, "spare"));
    const layer = createResilience({
      retry: { maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "p", url: `${A.base}/v1` },
            { name: "q", url: `${B.base}/v2` },
          ],
        },
      ]),
    });
    const api = createClient({
      resilience: layer,
      hooks: { beforeRequest: [() => new Request(`${A.base}/v1/jobs?x=1`, { headers: { "x-hook": "1" } })] },
    });
    const res = await api.get(`${A.base}/elsewhere`);
    expect(await res.text()).toBe("spare");
    expect(A.hits.map((h) => [h.path, h.headers["x-hook"]])).toEqual([["/v1/jobs?x=1", "1"]]);
    // Another origin: only the cross-origin allowlist goes (x-hook is not on it), as for any caller's header.
    expect(B.hits.map((h) => [h.path, h.headers["x-hook"]])).toEqual([["/v2/jobs?x=1", undefined]]);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "q", fromFallback: true });
  });

  it("beforeRequest returning a Response: nothing sent, the layer hears nothing, HTTPError 503 without info", async () => {
    const layer = createResilience({ retry: { maxAttempts: 3, ...fast } });
    const events = recordEvents(layer);
    const api = createClient({
      resilience: layer,
      hooks: { beforeRequest: [() => new Response("cached", { status: 503 })] },
    });
    const error = await rejection(api.get(`${A.base}/r`));
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).response.status).toBe(503);
    expect((error as HTTPError).data).toBe("cached");
    expect(getResilienceInfo((error as HTTPError).response)).toBeUndefined();
    expect(A.hits).toHaveLength(0);
    expect(events.events).toHaveLength(0);
    expect(layer.health().breakers).toEqual({});
  });

  it("afterResponse throwing its own HTTPError for a 200, and beforeError returning a new ky TimeoutError: both cut", async () => {
    A.on(reply(200, '{"error":"quota"}', { "content-type": "application/json" }));
    const api = createClient({
      resilience: { retry: false },
      hooks: {
        afterResponse: [
          async ({ request, response, options }) => {
            const body = (await response.json()) as { error?: string };
            if (body.error) throw new HTTPError(response, request, options as never);
          },
        ],
      },
    });
    const thrown = await rejection(api.get(`${A.base}/a?key=SECRET#frag`));
    expect(thrown).toBeInstanceOf(HTTPError);
    expect((thrown as HTTPError).message).toContain(`${A.base}/a`);
    expect(textOf(thrown)).not.toMatch(/SECRET|frag/);

    A.on(reply(404));
    const swapped = await rejection(
      api.get(`${A.base}/b?key=SECRET`, { hooks: { beforeError: [({ request }) => new KyTimeoutError(request)] } }),
    );
    expect(swapped).toBeInstanceOf(KyTimeoutError);
    expect((swapped as Error).message).toBe(`Request timed out: GET ${A.base}/b`);
    expect(textOf(swapped)).not.toContain("SECRET");
  });

  it("afterResponse replacing the layer's final 503 with a 200: three requests first, then the hook's answer", async () => {
    A.on(reply(503));
    const api = createClient({
      resilience: { retry: { maxAttempts: 3, ...fast } },
      hooks: {
        afterResponse: [({ response }) => (response.status === 503 ? new Response("stand-in") : undefined)],
      },
    });
    const res = await api.get(`${A.base}/r`);
    expect(await res.text()).toBe("stand-in");
    expect(A.hits).toHaveLength(3);
    expect(getResilienceInfo(res)).toBeUndefined();
  });
});

describe("init hooks that edit the call's options", () => {
  it("defect 1: an init hook's bad header value is a TypeError naming the header, never quoting the value", async () => {
    const api = createClient({ resilience: { retry: false } });
    const error = await settle(() =>
      api.get(`${A.base}/h`, {
        hooks: {
          init: [
            (options) => {
              options.headers = { authorization: "Bearer sk-SECRET\r\nx" };
            },
          ],
        },
      }),
    );
    expect(A.hits).toHaveLength(0);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(/authorization/i);
    expect(textOf(error)).not.toContain("sk-SECRET");
  });

  it("defect 2: an init hook that sets the call's hooks leaves ky's HTTPError message and stack cut", async () => {
    A.on(reply(404));
    const api = createClient({ resilience: { retry: false } });
    const seen: string[] = [];
    const logger = ({ error }: { error: Error }) => {
      seen.push(error.message);
      return error;
    };
    const edits: Array<NonNullable<NonNullable<Options["hooks"]>["init"]>[number]> = [
      (options) => {
        options.hooks = { ...options.hooks, beforeError: [logger] };
      },
      (options) => {
        options.hooks = {};
      },
    ];
    for (const edit of edits) {
      const error = await rejection(api.get(`${A.base}/x?key=SECRET`, { hooks: { init: [edit] } }));
      expect(error).toBeInstanceOf(HTTPError);
      expect(textOf(error)).not.toContain("SECRET");
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]).not.toContain("SECRET");
  });

  it("for comparison: a call's own beforeError list (no init hook) is cut first and last", async () => {
    A.on(reply(404));
    const api = createClient({ resilience: { retry: false } });
    const seen: string[] = [];
    const error = await rejection(
      api.get(`${A.base}/x?key=SECRET`, {
        hooks: {
          beforeError: [
            ({ error, request }) => {
              seen.push(error.message);
              error.message += ` (${request.url})`;
              return error;
            },
          ],
        },
      }),
    );
    expect(seen[0]).toBe(`Request failed with status code 404 Not Found: GET ${A.base}/x`);
    expect(textOf(error)).not.toContain("SECRET");
  });
});

describe("bodies ky builds, under the layer's retry", () => {
  it("a keyed URLSearchParams POST answered 503 then 200: the same bytes and content-type twice", async () => {
    A.on(failing(1));
    const api = createClient({ resilience: { retry: { maxAttempts: 3, ...fast } } });
    const form = new URLSearchParams({ prompt: "a lighthouse", steps: "30" });
    const res = await api.post(`${A.base}/f`, { body: form, headers: { "idempotency-key": "k-usp" } });
    expect(res.status).toBe(200);
    expect(A.hits.map((h) => [h.body, h.headers["content-type"], h.headers["idempotency-key"]])).toEqual(
      Array.from({ length: 2 }, () => [
        "prompt=a+lighthouse&steps=30",
        "application/x-www-form-urlencoded;charset=UTF-8",
        "k-usp",
      ]),
    );
  });

  it("a keyed FormData POST answered 503 then 200: the same multipart bytes, the boundary its content-type names", async () => {
    A.on(failing(1));
    const api = createClient({ resilience: { retry: { maxAttempts: 3, ...fast } } });
    const form = new FormData();
    form.append("prompt", "a lighthouse");
    form.append("image", new Blob([new Uint8Array([1, 2, 3])], { type: "image/png" }), "i.png");
    const res = await api.post(`${A.base}/f`, { body: form, headers: { "idempotency-key": "k-fd" } });
    expect(res.status).toBe(200);
    expect(A.hits).toHaveLength(2);
    const [first, second] = A.hits as [Hit, Hit];
    expect(second.bytes.equals(first.bytes)).toBe(true);
    for (const hit of A.hits) {
      const boundary = /boundary=(.+)$/.exec(hit.headers["content-type"] ?? "")?.[1];
      expect(boundary).toBeTruthy();
      expect(hit.body.startsWith(`--${boundary}\r\n`)).toBe(true);
      expect(hit.body).toContain('name="prompt"\r\n\r\na lighthouse');
      expect(hit.headers["idempotency-key"]).toBe("k-fd");
    }
  });
});

describe("extend and create on the client's layer", () => {
  it("create and extend share the client's breaker: refused unwrapped, nothing sent; create drops the headers", async () => {
    const layer = createResilience({ retry: false, breaker: { failureThreshold: 2 } });
    const api = createClient({ resilience: layer, headers: { "x-parent": "1" } });
    const created = api.create({ prefix: A.base });
    const extended = api.extend({ prefix: A.base });
    A.on(reply(200));
    await created.get("c").text();
    await extended.get("e").text();
    expect(A.hits.map((h) => [h.path, h.headers["x-parent"]])).toEqual([
      ["/c", undefined],
      ["/e", "1"],
    ]);
    A.reset();
    A.on(reply(503));
    for (let i = 0; i < 2; i++) expect(await rejection(api.get(`${A.base}/p`))).toBeInstanceOf(HTTPError);
    expect(A.hits).toHaveLength(2);
    for (const instance of [created, extended]) {
      const error = await rejection(instance.get("after"));
      expect(isCircuitOpenError(error)).toBe(true);
    }
    expect(A.hits).toHaveLength(2);
  });

  it("an init hook sees the layer's fetch, retry 0 and timeout off on the client, extend, extend(fn), create and a call", async () => {
    const layer = createResilience({ retry: false });
    const seen: unknown[][] = [];
    const probe = {
      hooks: {
        init: [
          (o: Options) => {
            seen.push([o.fetch === layer.fetch, o.retry, o.timeout]);
          },
        ],
      },
    };
    const api = createClient({ resilience: layer, ...probe });
    A.on(reply(200));
    await api.get(`${A.base}/1`, { timeout: undefined } as never).text();
    await api
      .extend({ timeout: undefined } as never)
      .get(`${A.base}/2`)
      .text();
    await api
      .extend((parent) => ({ ...parent, headers: { "x-fn": "1" } }))
      .get(`${A.base}/3`)
      .text();
    await api.create(probe).get(`${A.base}/4`).text();
    // Five runs: extend(fn)'s `...parent` hands the parent's init hook back, which ky merges with the parent's own.
    expect(seen).toHaveLength(5);
    for (const entry of seen) expect(entry).toEqual([true, 0, false]);
    expect(A.hits.map((h) => h.path)).toEqual(["/1", "/2", "/3", "/4"]);
    expect(A.hits[2]?.headers["x-fn"]).toBe("1");
  });

  it("a layer for extend or create is refused: ConfigError naming resilience, nothing sent", () => {
    const api = createClient({ resilience: { retry: false } });
    for (const make of [
      () => api.extend({ resilience: { retry: false } } as never),
      () => api.extend(() => ({ resilience: {} }) as never).get(`${A.base}/x`),
      () => api.create({ resilience: { retry: false } } as never),
    ]) {
      let error: unknown;
      try {
        make();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toMatch(/^resilience: /);
    }
    expect(A.hits).toHaveLength(0);
  });
});

describe("ky 1's prefixUrl", () => {
  it("createClient takes it; each call throws ky's rename Error at once, nothing sent", async () => {
    const api = createClient({ prefixUrl: A.base, resilience: { retry: false } } as never);
    let error: unknown;
    try {
      void api.get("jobs");
    } catch (caught) {
      error = caught;
    }
    expect((error as Error).message).toMatch(/^The `prefixUrl` option has been renamed `prefix` in v2/);
    expect(A.hits).toHaveLength(0);
    const api2 = createClient({ prefix: `${A.base}/v1/`, resilience: { retry: false } });
    A.on(reply(200));
    await api2.get("/jobs").text();
    expect(A.hits.map((h) => h.path)).toEqual(["/v1/jobs"]);
  });
});
