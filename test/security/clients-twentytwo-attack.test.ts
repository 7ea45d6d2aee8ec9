/**
 * Outside-in attack on the layer as other HTTP clients use it. Docs: README.md
 * "Quick start" (drops into anything that takes a custom fetch; resolves with
 * the last answer any endpoint gave), docs/recipes.md (OpenAI, axios, ofetch,
 * ky, Hono), docs/retry.md "Retry" (Retry-After dates), "Idempotency",
 * "Bodies", "ky", docs/fallback.md "Credentials never cross origins".
 * How: `openai`, `axios` (fetch adapter), `ofetch`, ky 2 via `./ky`'s
 * `createClient`, `hono/client`'s `hc`, each with `resilience.fetch` as its
 * fetch, against node:http servers on 127.0.0.1 (test/helpers/http-upstream.ts);
 * backoffs on a `TestClock` (no timeouts armed with it), or short real
 * timeouts (<= 40 ms). Paths: plain call, fallback chain, hedge, `Request`
 * input (ky), the ky client.
 *
 * Defects pinned (`it.fails`, each asserting the documented behaviour):
 * (none found on this angle)
 *
 * Held (plain `it`):
 * - fallback.md "Credentials never cross origins": the OpenAI SDK's
 *   authorization, openai-organization and openai-project stay home when a
 *   chain moves to a spare; the spare gets the same body bytes.
 * - README "in a chain the last answer any endpoint gave": primary 503 with a
 *   JSON body, spare refused: the SDK's InternalServerError has status 503 and
 *   the primary's message (the body was still readable).
 * - retry.md "Bodies": URLSearchParams (ofetch) and FormData (axios) bodies
 *   arrive byte-exact on the retried attempt, same content-type, and with
 *   `idempotencyKey: true` the same key on both attempts.
 * - retry.md "Bodies": a ky call's stream body (a `Request`'s) is read once
 *   and replayed; the same stream given in `init` is sent once.
 * - README "drops into anything that takes a custom fetch (… Hono)": hono's
 *   `hc` client: retried, one key, `getResilienceInfo` on its response.
 * - retry.md "Retry": a Retry-After HTTP date is waited exactly, through ky.
 * - `getResilienceInfo` on ofetch.raw's response after a fallback.
 * - ky 2's own `totalTimeout` during the layer's backoff ends the call: ky's
 *   TimeoutError, one request, the layer's call `aborted`.
 * - ofetch's own timeout during a hedge closes both upstream connections.
 *
 * Undocumented (not pinned): openai 7.x sends its POSTs with
 * `redirect: "manual"`, so for SDK POSTs the layer's redirect follower never
 * runs (a 307 reaches the caller as the SDK's APIError 307); axios 1.x's fetch
 * adapter in this environment labels FormData and Blob bodies
 * `application/x-www-form-urlencoded` with plain fetch too (axios, not the
 * layer); the Anthropic recipe's `sdkFetch` rebuilds the response, so
 * `getResilienceInfo` on the SDK's `withResponse()` is lost there (the docs
 * do not claim it); ofetch treats an AbortError as retryable whenever its own
 * `timeout` is set (only harmless with the recipe's `retry: 0`).
 */
import axios from "axios";
import { Hono } from "hono";
import { hc } from "hono/client";
import { ofetch } from "ofetch";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type ResilienceOptions } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { recordEvents, seededRandom, TestClock } from "../../src/testing/index.ts";
import { httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";
import { ask, completion, sendJson } from "../helpers/openai-wire.ts";

const P = httpUpstream(); // the origin the caller addresses
const S = httpUpstream(); // a spare, another origin
serveDuringFile(P, S);

function layer(options: ResilienceOptions = {}, start = 0) {
  const clock = new TestClock(start);
  const resilience = createResilience({ clock, random: seededRandom(1), ...options });
  return { clock, resilience, recorder: recordEvents(resilience) };
}

/** Answers 503/500 (`first`) to the first `fails` requests, then `ok`. */
function failThenOk(server: typeof P, fails: number, first = 503): void {
  let n = 0;
  server.on((hit) => {
    if (n++ < fails) hit.res.writeHead(first, { "content-type": "text/plain" }).end("busy");
    else hit.res.writeHead(200, { "content-type": "text/plain" }).end("ok");
  });
}

const chainTo = (spare: string) =>
  fallback([
    {
      name: "c",
      endpoints: [
        { name: "p", url: `${P.base}/v1` },
        { name: "s", url: `${spare}/v1` },
      ],
    },
  ]);

describe("SDKs through a chain (fallback.md, README Quick start)", () => {
  it("OpenAI's authorization, organization and project never reach the spare; the body does, byte for byte", async () => {
    P.on((hit) => sendJson(hit, 503, { error: { message: "busy" } }));
    S.on((hit) => sendJson(hit, 200, completion("from spare")));
    const { clock, resilience } = layer({ fallback: chainTo(S.base) });
    const client = new OpenAI({
      apiKey: "sk-secret",
      organization: "org-secret",
      project: "proj-secret",
      baseURL: `${P.base}/v1`,
      fetch: resilience.fetch,
      maxRetries: 0,
    });
    const res = await clock.run(client.chat.completions.create(ask));
    expect(res.choices[0]?.message.content).toBe("from spare");
    expect(P.hits[0]?.headers.authorization).toBe("Bearer sk-secret");
    const spare = S.hits[0];
    expect(spare?.headers.authorization).toBeUndefined();
    expect(spare?.headers["openai-organization"]).toBeUndefined();
    expect(spare?.headers["openai-project"]).toBeUndefined();
    for (const name of Object.keys(spare?.headers ?? {})) expect(name.startsWith("x-stainless")).toBe(false);
    expect(spare?.bytes.equals(P.hits[0]?.bytes ?? Buffer.alloc(0))).toBe(true);
  });

  it("primary 503 with a body, spare refused: the SDK's error is the primary's 503, its body still readable", async () => {
    P.on((hit) => sendJson(hit, 503, { error: { message: "primary busy", type: "server_error" } }));
    const { clock, resilience } = layer({ fallback: chainTo(await refusedOrigin()) });
    const client = new OpenAI({ apiKey: "sk", baseURL: `${P.base}/v1`, fetch: resilience.fetch, maxRetries: 0 });
    const error = await clock.run(
      client.chat.completions.create(ask).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.InternalServerError>).status).toBe(503);
    expect((error as Error).message).toContain("primary busy");
    expect(P.hits).toHaveLength(3); // the layer's 3 attempts, none by the SDK
  });

  it("ofetch.raw after a fallback: getResilienceInfo names the spare", async () => {
    P.on((hit) => hit.res.writeHead(503).end("x"));
    S.on((hit) => hit.res.end("spare"));
    const { clock, resilience } = layer({ fallback: chainTo(S.base) });
    const of = ofetch.create({ retry: 0 }, { fetch: resilience.fetch });
    const res = await clock.run(of.raw(`${P.base}/v1/x`, { responseType: "text" }));
    expect(res._data).toBe("spare");
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "s", fromFallback: true });
  });
});

describe("request bodies on the retried attempt (retry.md Bodies, Idempotency)", () => {
  it("ofetch URLSearchParams POST after a 503: same bytes, same content-type", async () => {
    failThenOk(P, 1);
    const { clock, resilience } = layer();
    const of = ofetch.create({ baseURL: P.base, retry: 0 }, { fetch: resilience.fetch });
    const out = await clock.run(of("/x", { method: "POST", body: new URLSearchParams({ a: "1 2", b: "é" }) }));
    expect(out).toBe("ok");
    expect(P.hits.map((h) => h.body)).toEqual(["a=1+2&b=%C3%A9", "a=1+2&b=%C3%A9"]);
    expect(P.hits[1]?.headers["content-type"]).toBe(P.hits[0]?.headers["content-type"]);
  });

  it("axios FormData POST with idempotencyKey after a 500: same multipart bytes, one key on both", async () => {
    failThenOk(P, 1, 500);
    const { clock, resilience } = layer({ retry: { idempotencyKey: true } });
    const ax = axios.create({ baseURL: P.base, adapter: "fetch", env: { fetch: resilience.fetch } });
    const form = new FormData();
    form.append("a", "1");
    form.append("f", new Blob(["hello"], { type: "text/plain" }), "f.txt");
    const res = await clock.run(ax.post("/x", form, { responseType: "text" }));
    expect(res.data).toBe("ok");
    expect(P.hits).toHaveLength(2);
    expect(P.hits[1]?.bytes.equals(P.hits[0]?.bytes ?? Buffer.alloc(0))).toBe(true);
    expect(P.hits[0]?.body).toContain("hello");
    const keys = P.hits.map((h) => h.headers["idempotency-key"]);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
  });

  it("a ky stream body (a Request's) is replayed; the same stream in init is sent once", async () => {
    const stream = () =>
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new TextEncoder().encode("abc"));
          c.enqueue(new TextEncoder().encode("def"));
          c.close();
        },
      });
    failThenOk(P, 1, 500);
    const { clock, resilience } = layer({ retry: { idempotencyKey: true } });
    const api = createClient({ resilience, throwHttpErrors: false });
    const res = await clock.run(api.post(`${P.base}/x`, { body: stream() }));
    expect(res.status).toBe(200);
    expect(P.hits.map((h) => h.body)).toEqual(["abcdef", "abcdef"]);
    expect(P.hits[1]?.headers["idempotency-key"]).toBe(P.hits[0]?.headers["idempotency-key"]);

    P.reset();
    failThenOk(P, 1, 500);
    const init = { method: "POST", body: stream(), duplex: "half" } as RequestInit;
    const once = await clock.run(resilience.fetch(`${P.base}/x`, init));
    expect(once.status).toBe(500);
    expect(P.hits.map((h) => h.body)).toEqual(["abcdef"]);
  });
});

describe("other clients and client-side deadlines", () => {
  it("hono's hc client on resilience.fetch: retried once, one key, getResilienceInfo on its response", async () => {
    failThenOk(P, 1);
    const app = new Hono().post("/jobs", (c) => c.json({ ok: true }));
    const { clock, resilience } = layer({ retry: { idempotencyKey: true } });
    const client = hc<typeof app>(P.base, { fetch: resilience.fetch });
    const res = await clock.run(client.jobs.$post());
    expect(res.status).toBe(200);
    expect(P.hits).toHaveLength(2);
    expect(P.hits[1]?.headers["idempotency-key"]).toBe(P.hits[0]?.headers["idempotency-key"]);
    expect(getResilienceInfo(res as unknown as Response)?.attempts).toBe(2);
  });

  it("a Retry-After HTTP date on a 503 is waited exactly, through ky", async () => {
    const start = Date.UTC(2030, 0, 1, 0, 0, 0);
    let n = 0;
    P.on((hit) => {
      if (n++ === 0) hit.res.writeHead(503, { "retry-after": new Date(start + 7_000).toUTCString() }).end("x");
      else hit.res.end("ok");
    });
    const { clock, resilience, recorder } = layer({}, start);
    const api = createClient({ resilience });
    expect(await clock.run(api.get(`${P.base}/x`).text())).toBe("ok");
    expect(clock.now() - start).toBe(7_000);
    expect(recorder.of("retry").map((e) => e.delay)).toEqual([7_000]);
  });

  it("ky 2's own totalTimeout during the layer's backoff: ky's TimeoutError, nothing more sent", async () => {
    P.on((hit) => hit.res.writeHead(503).end("x"));
    const resilience = createResilience({ retry: { initialDelay: 300, jitter: "none" } });
    const recorder = recordEvents(resilience);
    const api = createClient({ resilience, totalTimeout: 30 });
    const started = Date.now();
    const error = await api.get(`${P.base}/x`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as Error).name).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(250);
    expect(P.hits).toHaveLength(1);
    expect(recorder.of("request").map((e) => e.outcome)).toEqual(["aborted"]);
  });

  it("ofetch's own timeout during a hedge closes both upstream connections", async () => {
    P.on(() => {});
    S.on(() => {});
    const resilience = createResilience({
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 5 },
          endpoints: [
            { name: "p", url: P.base },
            { name: "s", url: S.base },
          ],
        },
      ]),
    });
    const of = ofetch.create({ retry: 0, timeout: 40 }, { fetch: resilience.fetch });
    const error = await of(`${P.base}/x`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as Error).name).toBe("FetchError");
    const [p, s] = await Promise.all([P.nth(1), S.nth(1)]);
    await Promise.all([p.closed, s.closed]); // hangs (test timeout) if either stayed open
    expect([P.hits.length, S.hits.length]).toEqual([1, 1]);
  });
});
