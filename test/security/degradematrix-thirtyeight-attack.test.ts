/**
 * Outside-in attack on graceful degradation's request rewriting, as a differential matrix: rules (a JSON body path,
 * `{ query }`, `{ header }`; steps, quality, resolution `WxH`, the model ladder, features lists) × request bodies
 * (a JSON string, bytes, an ArrayBuffer, a Blob with and without a JSON type, a Blob or bytes labelled Latin-1, a
 * quoted `charset="utf-8"`, non-UTF-8 bytes, a byte-order mark as bytes and as a string, a key given twice, a value
 * nested under another, a stream, a keepalive `Request`) × paths; levels set by hand and by triggers on the test
 * clock.
 * Docs: docs/degradation.md, every sentence of "`resilience.fetch` applies the level to requests before they leave"
 * through "are apart", and in particular: "`rules` say where they live instead (a JSON body path such as
 * `"parameters.num_inference_steps"`, `{ query: "q" }` or `{ header: "x-model" }`), per URL prefix (`match` … both
 * URLs as the URL parser reads them …; a `match` that no request URL could start with, one with a `#fragment`, spaces
 * around it, control characters or `user:pass@`, is a `ConfigError`)"; "One rule applies to a request, never two
 * merged, so two rules without `match`, or two with the same `match`, are a `ConfigError`"; "`rules: []` turns
 * rewriting off"; "A rule that puts `model` in a header needs `models` a header can carry … another name is a
 * `ConfigError` when the stage is made, where a JSON body or a query would take it"; "A call that goes down a
 * fallback chain is rewritten once, by the rule its own URL selects, before the chain: every endpoint gets that
 * request, and an endpoint's `transform` reshapes it for its provider (a rule that matches another endpoint's URL
 * applies to calls addressed to that URL, never twice to one request)"; "The breaker key (`url.host`, or
 * `breaker.key(url)`) is taken from the URL the caller asked for, before the rewrite: a call keeps its host's breaker
 * at every level, and a `breaker.key` that reads a query parameter a rule rewrites reads the caller's value"; "At
 * `full` nothing is touched, even when `degradation.levels` overrides `full`'s numbers (those apply to `adjust`
 * only)"; "non-JSON bodies are left alone, and so are bytes or a Blob labelled with a charset other than UTF-8 …
 * (a string body is sent as UTF-8 whatever its label, and is rewritten)"; "So is a body sent as a stream (… a
 * `Request` body larger than `maxReplayBytes` that is not `keepalive`: a keepalive one is read whole … and
 * rewritten as any body in memory is): it goes once, as it is, unread, so its level header and `degradationLevel`
 * name a level its body does not show"; "Only the values a rule changes are rewritten (… a `features` list kept
 * whole or a header's `20.0` under a cap of 30, stays as written): the other bytes of a JSON body (a leading
 * byte-order mark included, and its kind …; a `content-length` that came with the old body, as the Worker proxy
 * forwards the client's, is dropped for fetch to count the new one), and the other query parameters, stay as you
 * wrote them (each place of a repeated query parameter is adjusted from its own value; … `50, 50`, each value
 * adjusted)"; "`levelHeader` … to another origin (a fallback endpoint, a redirect) it goes, like the caller's own
 * headers, only when named in `crossOriginHeaders`"; "A call takes the level it finds when it starts: its rewritten
 * body, its level header and `getResilienceInfo(res).degradationLevel` all name that level"; "A rule's parameters in
 * the body stand at paths apart … a `ConfigError` naming the rule's `params`"; "Automatic triggers are fed by every
 * call that settles …". SECURITY.md "Rewriting changes only what a rule names | … every other byte (64-bit integers,
 * key order, spacing) arrives as sent", "Buffered bodies are bounded | … measured as the caller sent it (a
 * degradation rule's edit may lengthen a kept body by what it writes)". docs/fallback.md "Each network endpoint runs
 * its own retry loop behind its own host breaker; one whose breaker is open is skipped without a request".
 * How: `createResilience`, `getResilienceInfo`, `ConfigError` (root), `degradation` (./degradation), `fallback`
 * (./fallback), `createClient` (./ky), `resilientProxy` (./cloudflare), `TestClock` (./testing); two node:http
 * servers on 127.0.0.1 (test/helpers/http-upstream.ts) recording the bytes, path and headers each one received.
 * Paths: plain `createResilience().fetch` (a string URL and a `URL`), a `Request` input, a fallback chain that
 * rebases onto another origin after a 503, a chain endpoint with an identity `transform`, a hedge (both endpoints
 * sent), a 307 the library follows, the ky client (`body:`, `json:`, `searchParams:`), `resilientProxy` (its level
 * moved by triggers on a `TestClock`).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on the code they were written against;
 * all fixed since, so plain `it`: a chain keys each endpoint's breaker on the caller's query before the rewrite, a
 * query rule reads a parameter as the URL parser does past tabs and newlines, and a `match` of a scheme no request
 * can have is refused):
 * 1. docs/degradation.md "The breaker key … is taken from the URL the caller asked for, before the rewrite: a call
 *    keeps its host's breaker at every level, and a `breaker.key` that reads a query parameter a rule rewrites reads
 *    the caller's value". Observed: true for a plain call (held below), not for a call that goes down a chain: its
 *    first endpoint (the very URL the caller asked for) is keyed on the rewritten query. With
 *    `breaker.key: (u) => host + model` and a `{ model: { query: "model" } }` rule, a 503 at `full` opens
 *    "host premium"; the same call at `medium` is not passed over (docs/fallback.md "one whose breaker is open is
 *    skipped without a request") but sent to that endpoint again, behind a new breaker "host standard", which then
 *    opens too. A plain call to the same URL is refused with `CircuitOpenError`. Source:
 *    src/fallback/try-endpoints.ts `restOf(match, request.url)` (line 63) takes the rewritten URL, and
 *    `skipReason` (`parts.keyOf(rebase(endpoint.url, call.rest))`) and `sendToEndpoint` (`keyOf(shaped.url)`) key
 *    every endpoint's breaker on it.
 * 2. docs/degradation.md "`rules` say where they live … `{ query: "q" }` …, per URL prefix (`match` …, read … both
 *    URLs as the URL parser reads them" with "`steps` capped". Observed: a string URL whose query carries a tab or
 *    newline (a multi-line template literal: `?seed=7&\nsteps=50`, or `steps=5\t0`) selects the rule, as the parser
 *    reads it, and goes out as the parser reads it (`?seed=7&steps=50`), but its `steps` is not capped at `medium`:
 *    the endpoint receives 50. The same URL given as a `URL` or a `Request` is sent with `steps=30`. Source:
 *    src/http/request/normalize-request.ts keeps a string input as written (`url = input`), and
 *    src/degradation/query-edit.ts `editQuery` reads each pair of that text with `URLSearchParams` (the name
 *    `\nsteps`, the value `5\t0`), while src/degradation/rule-picker.ts and fetch read the parsed URL.
 * 3. docs/degradation.md "a `match` that no request URL could start with … is a `ConfigError`". Observed: a
 *    `match` of a scheme the layer never sends (`htps://gen.example/v1`, a typo; `ftp://gen.example/v1`) is taken by
 *    `degradation({ rules })`, while `resilience.fetch` refuses every such URL with a `TypeError` ("a ftp: URL is no
 *    http(s) URL, which fetch sends"), so the rule can never apply; `fallback([…])` refuses the same URL as an
 *    endpoint. Source: src/core/options/url-prefix-rules.ts `parsesAsPrefix` only asks `URL.canParse(url, base)`
 *    (the earlier fix for ports past 65535), never the scheme.
 *
 * Held (plain `it`):
 * - The body matrix at `medium` (set with `setLevel`): 15 body kinds × plain, `Request`, chain (rebased onto another
 *   origin after a 503), identity `transform`, hedge (both endpoints), a followed 307, ky `body:`, `resilientProxy`
 *   (level reached by triggers on a `TestClock`). Each endpoint receives exactly the documented bytes: steps and
 *   model rewritten in place, a 20-digit seed, spacing and a nested `n.steps` kept; a BOM kept (bytes and string);
 *   the last of a key given twice rewritten (JSON.parse's reading); bytes or Blobs labelled Latin-1 and non-UTF-8
 *   bytes sent as written; a string labelled Latin-1 rewritten on a plain call (a `Request`, ky and the proxy carry
 *   it as bytes: sent as written); the same `content-type` and a `content-length` counting the new bytes on every
 *   path; the level header on the caller's origin, absent on the other origin.
 * - Query, header and nested body rules through a string URL, a `URL`, a `Request`, a chain endpoint's transform,
 *   a hedge, a redirect, ky (`json:` and `searchParams:`) and the proxy: the same rewritten path, headers and body
 *   on the first endpoint; other parameters (`a/b`, a bare `flag`) and a top-level `steps` beside the nested one
 *   untouched.
 * - Only changed values rewritten: at `high` a kept `features` list keeps its spacing, `1.0` goes to `0.9`; a header
 *   `50, 20.0` goes to `30, 20.0`, `large, v2` stays, a repeated query parameter adjusted place by place, `WxH`
 *   floored to 8.
 * - Streams: an `init` stream (`duplex: "half"`) and a non-keepalive `Request` above `maxReplayBytes` go once,
 *   unread, on a 503 with retries, their level header and `degradationLevel` naming `medium`; a keepalive `Request`
 *   above the limit and bytes above it are rewritten; a body the rewrite lengthens past `maxReplayBytes` is still
 *   retried (measured as sent).
 * - The level a call starts with: triggers on a `TestClock` (error rate, `minSamples: 1`, `stepInterval: 0`) move
 *   `full → high → medium` as failing calls settle; each call's body, level header and `degradationLevel` name the
 *   level it started at.
 * - Chains: rewritten once by the rule of the caller's URL (another endpoint's rule never applies on the way);
 *   a redirect target's rule never applies to a followed hop. The level header goes to another origin (chain
 *   endpoint, transform endpoint, redirect) only when named in `crossOriginHeaders`, and stays on same-origin hops.
 * - `content-length` given by the caller (plain `init`, a `Request`, the proxy's forwarded one) is dropped and
 *   recounted for the new body.
 * - At `full` with `levels.full` overridden nothing is rewritten (the level header still says `full`), `adjust` uses
 *   the override; `rules: []` rewrites nothing but sends the level header; without the stage every call is
 *   untouched, `health().degradationLevel` is `full` and `resilience.degradation` undefined.
 * - A plain call's breaker is the caller's value's (`premium` stays open at `medium`: `CircuitOpenError`).
 * - Bad rules refused when made, naming the path: `__proto__`/`constructor` segments, an empty segment, an empty
 *   query name, a header name that is no token, two params at one body path or one inside another (naming
 *   `degradation.rules.0.params`), a model ladder a header cannot carry (CJK, a newline) for a header rule but not
 *   for a query rule, two global rules, two `match`es the parser reads alike, a `#fragment`, spaces, a control
 *   character, `user:pass@`, a `levelHeader` that is no token, `levels.medium.maxSteps: 0`.
 *
 * Docs-silent (not pinned):
 * - A JSON body with a key given twice (`{"steps":50,"steps":60}`) has only the last rewritten (the one JSON.parse
 *   keeps): a provider whose parser keeps the first (or refuses duplicates) sees 50.
 * - Two parameters at one query parameter or header (`steps` and `quality` both `{ query: "v" }`) are taken and the
 *   edits compound (`v=50` → `v=24` at `medium`); the doc refuses two at one place only for body paths.
 * - A string body labelled with a non-UTF-8 charset is rewritten on a plain call, but not when the same string goes
 *   in a `Request`, through ky or through the proxy (the layer sees bytes labelled Latin-1).
 */
import { beforeEach, describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { type DegradationOptions, degradation, type LevelName } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import {
  ConfigError,
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  type ResilienceOptions,
} from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Hit, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const a = httpUpstream();
const b = httpUpstream();
serveDuringFile(a, b);

/** a: `/busy…` and `/fail…` answer 503, `/slow…` answers after 40 ms, `/r307…` redirects to `/t` (same origin), `/x307…` to b. */
function route(h: Hit): void {
  if (h.path.startsWith("/busy") || h.path.startsWith("/fail")) {
    h.res.statusCode = 503;
    h.res.end("busy");
  } else if (h.path.startsWith("/slow")) {
    setTimeout(() => h.res.end("slow"), 40);
  } else if (h.path.startsWith("/r307")) {
    h.res.statusCode = 307;
    h.res.setHeader("location", "/t");
    h.res.end();
  } else if (h.path.startsWith("/x307")) {
    h.res.statusCode = 307;
    h.res.setHeader("location", `${b.base}/t`);
    h.res.end();
  } else h.res.end("ok");
}
beforeEach(() => a.on(route));

const enc = (s: string) => new TextEncoder().encode(s);
const ctx = { waitUntil() {}, passThroughOnException() {} } as never;
const quiet = { memoryUsage: 1, cpuUsage: 1 };

function layerAt(level: LevelName, options: ResilienceOptions = {}, rules: DegradationOptions = {}) {
  const layer = createResilience({
    retry: false,
    degradation: degradation({ levelHeader: "x-level", ...rules }),
    ...options,
  });
  if (!layer.degradation) throw new Error("the degradation stage joined no layer");
  layer.degradation.setLevel(level);
  return layer as typeof layer & { degradation: NonNullable<typeof layer.degradation> };
}

/** A proxy whose layer is at `medium`: two failing calls move it there by the error-rate trigger, on a test clock. */
async function proxyAtMedium(rules: DegradationOptions = {}) {
  const clock = new TestClock(1_000_000);
  const proxy = resilientProxy({
    routes: [{ path: "/", upstream: `${a.base}/` }],
    resilience: {
      clock,
      retry: false,
      breaker: { failureThreshold: 100 },
      degradation: degradation({
        levelHeader: "x-level",
        minSamples: 1,
        stepInterval: 0,
        triggers: { errorRate: 0.1, ...quiet },
        ...rules,
      }),
    },
  });
  const levels: Array<string | null> = [];
  for (let i = 0; i < 2; i++) {
    const r = await proxy.fetch(new Request("http://proxy.local/fail"), {}, ctx);
    levels.push(r.headers.get("x-degradation-level"));
    await clock.advance(1_000);
  }
  expect(levels).toEqual(["full", "high"]);
  a.reset();
  a.on(route);
  return proxy;
}

describe("defects", () => {
  it("1. a chain's first endpoint keeps the breaker of the caller's query value at every level", async () => {
    const layer = createResilience({
      retry: false,
      breaker: { failureThreshold: 1, key: (u) => `${u.host} ${u.searchParams.get("model")}` },
      degradation: degradation({ rules: [{ params: { model: { query: "model" } } }] }),
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/busy` },
            { name: "q", url: `${b.base}/v2` },
          ],
        },
      ]),
    });
    const url = `${a.base}/busy/x?model=premium`;
    expect((await layer.fetch(url)).status).toBe(200); // p 503 (its breaker opens), q served
    expect(layer.health().breakers[`${a.host} premium`]?.state).toBe("open");
    layer.degradation.setLevel("medium");
    const res = await layer.fetch(url);
    expect(res.status).toBe(200);
    expect(b.hits.map((h) => h.path)).toEqual(["/v2/x?model=premium", "/v2/x?model=standard"]);
    // p's breaker (the caller's value, `premium`) is open: p is passed over without a request.
    // Observed: p is sent `model=standard` behind a new breaker `<host> standard`.
    expect(a.hits.map((h) => h.path)).toEqual(["/busy/x?model=premium"]);
    expect(Object.keys(layer.health().breakers)).not.toContain(`${a.host} standard`);
  });

  it("2. a string URL whose query holds a tab or newline has its parameter rewritten as the parser reads it", async () => {
    const layer = layerAt("medium", {}, { rules: [{ params: { steps: { query: "steps" } } }] });
    const written = [`${a.base}/s?seed=7&\nsteps=50`, `${a.base}/s?seed=7&steps=5\t0`];
    for (const url of written) {
      await layer.fetch(new URL(url)); // held: a URL is rewritten
      await layer.fetch(new Request(url)); // held: so is a Request
      await layer.fetch(url);
    }
    // Every call went out as the parser reads the URL, and selected the rule as it reads it.
    expect(a.hits.map((h) => h.path)).toHaveLength(6);
    // Observed: the string calls (3rd and 6th) carry `steps=50` at `medium`.
    expect(a.hits.map((h) => h.path)).toEqual(Array(6).fill("/s?seed=7&steps=30"));
  });

  it("3. a match of a scheme no request can have is a ConfigError", async () => {
    const layer = createResilience({ retry: false });
    for (const url of ["htps://gen.example/v1/x", "ftp://gen.example/v1/x"]) {
      // No request URL starts with it: the layer refuses each before sending.
      await expect(layer.fetch(url)).rejects.toThrow(/no http\(s\) URL/);
      expect(() => fallback([{ name: "c", endpoints: [{ name: "e", url: url.slice(0, -2) }] }])).toThrow(ConfigError);
    }
    for (const match of ["htps://gen.example/v1", "ftp://gen.example/v1"]) {
      // Observed: taken; the rule never applies.
      expect(() => degradation({ rules: [{ match, params: { steps: "steps" } }] }), match).toThrow(ConfigError);
    }
  });
});

const J = '{"steps":50,"model":"premium","seed":12345678901234567890, "n":{"steps":50}}';
const JR = '{"steps":30,"model":"standard","seed":12345678901234567890, "n":{"steps":50}}';
const NON_UTF8 = new Uint8Array([...enc('{"steps":50,"x":"'), 0xff, ...enc('"}')]);
const BOM = [0xef, 0xbb, 0xbf];

interface Kind {
  make: () => { body: BodyInit; headers?: Record<string, string> };
  /** The bytes the endpoint receives, and its `content-type`. */
  sent: Uint8Array | string;
  type: string | undefined;
  /** What a `Request`, ky and the proxy send (they carry bytes), when it differs. */
  asBytes?: string;
}

const kinds: Record<string, Kind> = {
  string: { make: () => ({ body: J }), sent: JR, type: "text/plain;charset=UTF-8" },
  "string, application/json": {
    make: () => ({ body: J, headers: { "content-type": "application/json" } }),
    sent: JR,
    type: "application/json",
  },
  "string labelled Latin-1": {
    make: () => ({ body: J, headers: { "content-type": "application/json; charset=iso-8859-1" } }),
    sent: JR,
    type: "application/json; charset=iso-8859-1",
    asBytes: J,
  },
  bytes: { make: () => ({ body: enc(J) }), sent: JR, type: undefined },
  ArrayBuffer: { make: () => ({ body: enc(J).buffer as ArrayBuffer }), sent: JR, type: undefined },
  "bytes labelled Latin-1": {
    make: () => ({ body: enc(J), headers: { "content-type": "application/json; charset=iso-8859-1" } }),
    sent: J,
    type: "application/json; charset=iso-8859-1",
  },
  "Blob application/json": {
    make: () => ({ body: new Blob([J], { type: "application/json" }) }),
    sent: JR,
    type: "application/json",
  },
  "Blob without type": { make: () => ({ body: new Blob([J]) }), sent: JR, type: undefined },
  "Blob labelled latin1": {
    make: () => ({ body: new Blob([J], { type: "application/json;charset=latin1" }) }),
    sent: J,
    type: "application/json;charset=latin1",
  },
  'Blob charset="utf-8"': {
    make: () => ({ body: new Blob([J], { type: 'application/json; charset="utf-8"' }) }),
    sent: JR,
    type: 'application/json; charset="utf-8"',
  },
  "non-UTF-8 bytes": {
    make: () => ({ body: NON_UTF8.slice(), headers: { "content-type": "application/json" } }),
    sent: NON_UTF8,
    type: "application/json",
  },
  "BOM bytes": {
    make: () => ({ body: new Uint8Array([...BOM, ...enc(J)]) }),
    sent: new Uint8Array([...BOM, ...enc(JR)]),
    type: undefined,
  },
  "BOM string": { make: () => ({ body: `\uFEFF${J}` }), sent: `\uFEFF${JR}`, type: "text/plain;charset=UTF-8" },
  "key given twice": {
    make: () => ({ body: '{"steps":50,"steps":60,"model":"premium"}' }),
    sent: '{"steps":50,"steps":30,"model":"standard"}',
    type: "text/plain;charset=UTF-8",
  },
  "nested value": {
    make: () => ({ body: '{"parameters":{"steps":50,"model":"premium"},"quality":1}' }),
    sent: '{"parameters":{"steps":50,"model":"premium"},"quality":0.8}',
    type: "text/plain;charset=UTF-8",
  },
};

type Sent = { hit: Hit; home: boolean };
type Path = (init: RequestInit) => Promise<Sent[]>;
const keyed = (init: RequestInit): RequestInit => ({
  ...init,
  headers: { ...(init.headers as Record<string, string>), "idempotency-key": "k-1" },
});

const paths: Record<string, Path> = {
  plain: async (init) => {
    await layerAt("medium").fetch(`${a.base}/x?q=1`, init);
    return [{ hit: a.hits[0] as Hit, home: true }];
  },
  Request: async (init) => {
    await layerAt("medium").fetch(new Request(`${a.base}/x?q=1`, init));
    return [{ hit: a.hits[0] as Hit, home: true }];
  },
  "chain onto another origin": async (init) => {
    const layer = layerAt("medium", {
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/busy` },
            { name: "q", url: `${b.base}/v2` },
          ],
        },
      ]),
    });
    await layer.fetch(`${a.base}/busy/x?q=1`, keyed(init));
    return [
      { hit: a.hits[0] as Hit, home: true },
      { hit: b.hits[0] as Hit, home: false },
    ];
  },
  transform: async (init) => {
    const layer = layerAt("medium", {
      fallback: fallback([{ name: "c", endpoints: [{ name: "p", url: `${a.base}/v1`, transform: (r) => r }] }]),
    });
    await layer.fetch(`${a.base}/v1/x?q=1`, init);
    return [{ hit: a.hits[0] as Hit, home: true }];
  },
  hedge: async (init) => {
    const layer = layerAt("medium", {
      fallback: fallback([
        {
          name: "c",
          hedge: { delay: 5 },
          endpoints: [
            { name: "p", url: `${a.base}/slow` },
            { name: "q", url: `${b.base}/v2` },
          ],
        },
      ]),
    });
    await layer.fetch(`${a.base}/slow/x?q=1`, keyed(init));
    await a.nth(1);
    return [
      { hit: a.hits[0] as Hit, home: true },
      { hit: b.hits[0] as Hit, home: false },
    ];
  },
  "307 followed": async (init) => {
    await layerAt("medium").fetch(`${a.base}/r307/x?q=1`, init);
    return [
      { hit: a.hits[0] as Hit, home: true },
      { hit: a.hits[1] as Hit, home: true },
    ];
  },
  "ky body": async (init) => {
    await createClient({ resilience: layerAt("medium") }).post(`${a.base}/x?q=1`, {
      body: init.body ?? null,
      headers: init.headers as Record<string, string>,
    });
    return [{ hit: a.hits[0] as Hit, home: true }];
  },
  resilientProxy: async (init) => {
    const proxy = await proxyAtMedium();
    await proxy.fetch(new Request("http://proxy.local/x?q=1", init), {}, ctx);
    return [{ hit: a.hits[0] as Hit, home: true }];
  },
};

const carriesBytes = new Set(["Request", "ky body", "resilientProxy"]);

describe("held: the body matrix at medium", () => {
  for (const [kindName, kind] of Object.entries(kinds)) {
    it(`${kindName}: every path sends the documented bytes, type, length and level header`, async () => {
      const rows: string[] = [];
      for (const [pathName, path] of Object.entries(paths)) {
        a.reset();
        b.reset();
        a.on(route);
        const { body, headers } = kind.make();
        const sent = await path({ method: "POST", body, ...(headers ? { headers } : {}) });
        const want = Buffer.from(carriesBytes.has(pathName) && kind.asBytes !== undefined ? kind.asBytes : kind.sent);
        for (const { hit, home } of sent) {
          expect(hit, pathName).toBeDefined();
          rows.push(
            `${pathName} ${hit.path}: ${hit.bytes.equals(want)} ${hit.headers["content-type"] === kind.type} ` +
              `${hit.headers["content-length"] === String(want.length)} ${hit.headers["x-level"] === (home ? "medium" : undefined)}`,
          );
        }
      }
      for (const row of rows) expect(row).toMatch(/: true true true true$/);
      expect(rows).toHaveLength(11);
    });
  }
});

describe("held: query, header and nested body rules through every path", () => {
  const rules = {
    rules: [
      {
        params: {
          steps: { query: "steps" },
          quality: { query: "q" },
          model: { header: "x-model" },
          resolution: "parameters.size",
          features: "parameters.features",
        },
      },
    ],
  };
  const query = "steps=50&q=1&keep=a/b&flag&steps=20.0";
  const wantQuery = "steps=30&q=0.8&keep=a/b&flag&steps=20.0";
  const body =
    '{"steps":50, "parameters":{"size":"1024x1024","features":["core","extra"],"seed":18446744073709551615}}';
  const wantBody = '{"steps":50, "parameters":{"size":"920x920","features":["core"],"seed":18446744073709551615}}';
  const init = (): RequestInit => ({
    method: "POST",
    body,
    headers: { "x-model": "premium", "content-type": "application/json", "idempotency-key": "k-2" },
  });

  it("sends the same rewritten query, header and body to the first endpoint", async () => {
    const calls: Record<string, () => Promise<unknown>> = {
      "string URL": () => layerAt("medium", {}, rules).fetch(`${a.base}/g/x?${query}`, init()),
      URL: () => layerAt("medium", {}, rules).fetch(new URL(`${a.base}/g/x?${query}`), init()),
      Request: () => layerAt("medium", {}, rules).fetch(new Request(`${a.base}/g/x?${query}`, init())),
      transform: () =>
        layerAt(
          "medium",
          { fallback: fallback([{ name: "c", endpoints: [{ name: "p", url: `${a.base}/g`, transform: (r) => r }] }]) },
          rules,
        ).fetch(`${a.base}/g/x?${query}`, init()),
      hedge: () =>
        layerAt(
          "medium",
          {
            fallback: fallback([
              {
                name: "c",
                hedge: { delay: 1_000 },
                endpoints: [
                  { name: "p", url: `${a.base}/g` },
                  { name: "q", url: `${b.base}/g` },
                ],
              },
            ]),
          },
          rules,
        ).fetch(`${a.base}/g/x?${query}`, init()),
      "ky json + searchParams": () =>
        createClient({ resilience: layerAt("medium", {}, rules) }).post(`${a.base}/g/x`, {
          json: JSON.parse(body),
          searchParams: query,
          headers: { "x-model": "premium" },
        }),
      resilientProxy: async () =>
        (await proxyAtMedium(rules)).fetch(new Request(`http://proxy.local/g/x?${query}`, init()), {}, ctx),
    };
    for (const [name, call] of Object.entries(calls)) {
      a.reset();
      a.on(route);
      await call();
      const hit = a.hits[0] as Hit;
      expect(hit.path, name).toBe(`/g/x?${wantQuery}`);
      expect(hit.headers["x-model"], name).toBe("standard");
      expect(hit.headers["x-level"], name).toBe("medium");
      // ky serialises `json:` itself (no spacing): the same values, rewritten.
      if (name.startsWith("ky")) expect(hit.body, name).toBe(JSON.stringify(JSON.parse(wantBody)));
      else expect(hit.body, name).toBe(wantBody);
    }
  });

  it("a redirect sends the rewritten request on, rewritten once", async () => {
    const layer = layerAt("medium", {}, rules);
    await layer.fetch(`${a.base}/r307?${query}`, init());
    expect(a.hits.map((h) => [h.path, h.body, h.headers["x-model"], h.headers["x-level"]])).toEqual([
      [`/r307?${wantQuery}`, wantBody, "standard", "medium"],
      ["/t", wantBody, "standard", "medium"],
    ]);
  });
});

describe("held: only the values a rule changes are rewritten", () => {
  it("kept values keep their spelling; each place of a repeated parameter or header value is its own", async () => {
    const rules = {
      rules: [
        {
          params: {
            steps: { header: "x-steps" },
            model: { header: "x-model" },
            features: "features",
            quality: "quality",
            resolution: { query: "size" },
          },
        },
      ],
    };
    const body = '{ "quality" : 1.0 , "features" : [ "core" , "enhancements" ] }';
    await layerAt("high", {}, rules).fetch(`${a.base}/k?size=1920x1080&size=4X4`, {
      method: "POST",
      body,
      headers: { "x-steps": "50, 50", "x-model": "premium" },
    });
    await layerAt("medium", {}, rules).fetch(`${a.base}/k?size=1920x1080&size=8 x 8`, {
      method: "POST",
      body,
      headers: { "x-steps": "50, 20.0", "x-model": "large, v2" },
    });
    expect(a.hits.map((h) => [h.path, h.body, h.headers["x-steps"], h.headers["x-model"]])).toEqual([
      [
        "/k?size=1824x1024&size=4X4",
        '{ "quality" : 0.9 , "features" : [ "core" , "enhancements" ] }',
        "50, 50",
        "premium",
      ],
      ["/k?size=1728x968&size=8%20x%208", '{ "quality" : 0.8 , "features" : ["core"] }', "30, 20.0", "large, v2"],
    ]);
  });
});

describe("held: streams, keepalive and the replay bound", () => {
  const J2 = '{"steps":50,"model":"premium","pad":"xxxxxxxxxxxxxxxxxxxxxxxx"}';
  const stream = () =>
    new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc(J2));
        c.close();
      },
    });

  it("a stream goes once, unread; a keepalive Request and bytes above the bound are rewritten", async () => {
    const layer = createResilience({
      maxReplayBytes: 16,
      retry: { maxAttempts: 3, initialDelay: 1, maxDelay: 2, jitter: "none" },
      degradation: degradation({ levelHeader: "x-level" }),
    });
    layer.degradation.setLevel("medium");
    const infos: Array<string | undefined> = [];
    const headers = { "idempotency-key": "k-3" };
    const calls: Array<() => Promise<Response>> = [
      () => layer.fetch(`${a.base}/busy/s`, { method: "POST", body: stream(), duplex: "half", headers } as RequestInit),
      () => layer.fetch(new Request(`${a.base}/busy/r`, { method: "POST", body: J2, headers })),
      () => layer.fetch(new Request(`${a.base}/k`, { method: "POST", body: J2, keepalive: true })),
      () => layer.fetch(`${a.base}/b`, { method: "POST", body: enc(J2) }),
    ];
    for (const call of calls) infos.push(getResilienceInfo(await call())?.degradationLevel);
    expect(infos).toEqual(["medium", "medium", "medium", "medium"]);
    const rewritten = '{"steps":30,"model":"standard","pad":"xxxxxxxxxxxxxxxxxxxxxxxx"}';
    expect(a.hits.map((h) => [h.path, h.body, h.headers["x-level"]])).toEqual([
      ["/busy/s", J2, "medium"],
      ["/busy/r", J2, "medium"],
      ["/k", rewritten, "medium"],
      ["/b", rewritten, "medium"],
    ]);
  });

  it("a body the rewrite lengthens past maxReplayBytes is still retried (measured as sent)", async () => {
    const body = '{"quality":1,"model":"premium"}';
    let n = 0;
    a.on((h) => {
      n++;
      h.res.statusCode = n === 1 ? 503 : 200;
      h.res.end("x");
    });
    const layer = createResilience({
      maxReplayBytes: body.length,
      retry: { maxAttempts: 2, initialDelay: 1, jitter: "none" },
      degradation: degradation(),
    });
    layer.degradation.setLevel("medium");
    const res = await layer.fetch(`${a.base}/q`, { method: "POST", body, headers: { "idempotency-key": "k-4" } });
    expect(res.status).toBe(200);
    expect(a.hits.map((h) => h.body)).toEqual(Array(2).fill('{"quality":0.8,"model":"standard"}'));
  });
});

describe("held: the level a call starts with, moved by triggers on the test clock", () => {
  it("each call's body, level header and degradationLevel name the level it started at", async () => {
    const clock = new TestClock(5_000_000);
    const layer = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 100 },
      degradation: degradation({
        levelHeader: "x-level",
        minSamples: 1,
        stepInterval: 0,
        triggers: { errorRate: 0.1, ...quiet },
      }),
    });
    const seen: Array<string | undefined> = [];
    for (const path of ["/fail/1", "/fail/2", "/ok"]) {
      const res = await layer.fetch(`${a.base}${path}`, { method: "POST", body: '{"quality":1,"steps":50}' });
      seen.push(getResilienceInfo(res)?.degradationLevel);
      await clock.advance(1_000);
    }
    expect(seen).toEqual(["full", "high", "medium"]);
    expect(a.hits.map((h) => [h.body, h.headers["x-level"]])).toEqual([
      ['{"quality":1,"steps":50}', "full"],
      ['{"quality":0.9,"steps":50}', "high"],
      ['{"quality":0.8,"steps":30}', "medium"],
    ]);
    expect(layer.degradation.currentLevel()).toMatchObject({ name: "low", pinned: false });
  });
});

describe("held: chains, redirects and the level header's origin", () => {
  it("a chain call is rewritten once, by its own URL's rule; a redirect's target rule never applies", async () => {
    const layer = layerAt(
      "medium",
      {
        fallback: fallback([
          {
            name: "c",
            endpoints: [
              { name: "p", url: `${a.base}/busy` },
              { name: "q", url: `${b.base}/v2` },
            ],
          },
        ]),
      },
      {
        rules: [
          { match: `${a.base}/busy`, params: { steps: "steps" } },
          { match: `${b.base}/v2`, params: { model: "model" } },
          { match: `${a.base}/r307`, params: { steps: "steps" } },
          { match: `${a.base}/t`, params: { model: "model" } },
        ],
      },
    );
    const body = '{"steps":50,"model":"premium"}';
    await layer.fetch(`${a.base}/busy/x`, { method: "PUT", body });
    await layer.fetch(`${b.base}/v2/x`, { method: "PUT", body });
    await layer.fetch(`${a.base}/r307`, { method: "PUT", body });
    expect(a.hits.map((h) => [h.path, h.body])).toEqual([
      ["/busy/x", '{"steps":30,"model":"premium"}'],
      ["/r307", '{"steps":30,"model":"premium"}'],
      ["/t", '{"steps":30,"model":"premium"}'],
    ]);
    expect(b.hits.map((h) => [h.path, h.body])).toEqual([
      ["/v2/x", '{"steps":30,"model":"premium"}'],
      ["/v2/x", '{"steps":50,"model":"standard"}'],
    ]);
  });

  it("the level header goes to another origin only when named in crossOriginHeaders", async () => {
    for (const allow of [[], ["x-level"]]) {
      const chains = fallback([
        {
          name: "c",
          endpoints: [
            { name: "p", url: `${a.base}/busy` },
            { name: "q", url: `${b.base}/v2`, transform: (r) => r },
          ],
        },
      ]);
      const layer = layerAt("low", { crossOriginHeaders: allow, fallback: chains });
      await layer.fetch(`${a.base}/busy/x`, { method: "PUT", body: "{}" });
      await layer.fetch(`${a.base}/r307`, { method: "PUT", body: "{}" });
      await layer.fetch(`${a.base}/x307`, { method: "PUT", body: "{}" });
    }
    expect(a.hits.map((h) => h.headers["x-level"])).toEqual(Array(8).fill("low"));
    expect(b.hits.map((h) => [h.path, h.headers["x-level"]])).toEqual([
      ["/v2/x", undefined],
      ["/t", undefined],
      ["/v2/x", "low"],
      ["/t", "low"],
    ]);
  });
});

describe("held: content-length, full, rules: [] and no stage", () => {
  it("a content-length that came with the old body is dropped and recounted", async () => {
    const body = '{"steps":50,"model":"premium","features":["core","x"]}';
    const want = '{"steps":30,"model":"standard","features":["core"]}';
    const headers = { "content-type": "application/json", "content-length": String(body.length) };
    const proxy = await proxyAtMedium(); // warmed first: it forgets the requests before
    await layerAt("medium").fetch(`${a.base}/c1`, { method: "POST", body, headers });
    await layerAt("medium").fetch(new Request(`${a.base}/c2`, { method: "POST", body, headers }));
    await proxy.fetch(new Request("http://proxy.local/c3", { method: "POST", body, headers }), {}, ctx);
    expect(a.hits.map((h) => [h.path, h.body, h.headers["content-length"]])).toEqual([
      ["/c1", want, String(want.length)],
      ["/c2", want, String(want.length)],
      ["/c3", want, String(want.length)],
    ]);
  });

  it("full touches nothing even when overridden; rules: [] only sends the level header; no stage is full", async () => {
    const body = '{"steps":50,"quality":1.0,"model":"premium"}';
    const overridden = layerAt("full", {}, { levels: { full: { maxSteps: 5, qualityMultiplier: 0.5 } } });
    await overridden.fetch(`${a.base}/f`, { method: "POST", body });
    expect(overridden.degradation.adjust({ steps: 50, quality: 1 })).toEqual({ steps: 5, quality: 0.5 });
    await layerAt("minimal", {}, { rules: [] }).fetch(`${a.base}/n?steps=50`, { method: "POST", body });
    const none = createResilience({ retry: false });
    const res = await none.fetch(`${a.base}/z`, { method: "POST", body });
    expect(none.degradation).toBeUndefined();
    expect(none.health().degradationLevel).toBe("full");
    expect(getResilienceInfo(res)?.degradationLevel).toBe("full");
    expect(a.hits.map((h) => [h.path, h.body, h.headers["x-level"]])).toEqual([
      ["/f", body, "full"],
      ["/n?steps=50", body, "minimal"],
      ["/z", body, undefined],
    ]);
  });

  it("a plain call keeps the breaker of the caller's query value at every level", async () => {
    const layer = createResilience({
      retry: false,
      breaker: { failureThreshold: 1, key: (u) => `${u.host} ${u.searchParams.get("model")}` },
      degradation: degradation({ rules: [{ params: { model: { query: "model" } } }] }),
    });
    expect((await layer.fetch(`${a.base}/busy/x?model=premium`)).status).toBe(503);
    layer.degradation.setLevel("medium");
    const error = await layer.fetch(`${a.base}/busy/x?model=premium`).catch((e: unknown) => e);
    expect(isCircuitOpenError(error)).toBe(true);
    expect(a.hits).toHaveLength(1);
    expect(Object.keys(layer.health().breakers)).toEqual([`${a.host} premium`]);
  });
});

describe("held: bad rules are refused when made, naming the path", () => {
  const bad: Array<[string, unknown, string]> = [
    ["__proto__", { rules: [{ params: { steps: "a.__proto__" } }] }, "degradation.rules.0.params.steps"],
    [
      "constructor",
      { rules: [{ params: { steps: { body: "constructor" } } }] },
      "degradation.rules.0.params.steps.body",
    ],
    ["empty segment", { rules: [{ params: { steps: "a..b" } }] }, "degradation.rules.0.params.steps"],
    ["empty query", { rules: [{ params: { steps: { query: "" } } }] }, "degradation.rules.0.params.steps.query"],
    ["bad header", { rules: [{ params: { steps: { header: "x v" } } }] }, "degradation.rules.0.params.steps.header"],
    ["one path", { rules: [{ params: { steps: "v", quality: "v" } }] }, "degradation.rules.0.params"],
    ["inside", { rules: [{ params: { features: { body: "f" }, quality: "f.1" } }] }, "degradation.rules.0.params"],
    [
      "CJK model in a header",
      { rules: [{ params: { model: { header: "x-model" } } }], models: [["a", "模型"]] },
      "degradation",
    ],
    [
      "newline model in a header",
      { rules: [{ params: { model: { header: "x-model" } } }], models: [["a", "b\nc"]] },
      "degradation",
    ],
    ["two global", { rules: [{ params: {} }, { params: {} }] }, "degradation.rules"],
    [
      "same match",
      {
        rules: [
          { match: "HTTPS://Gen.example:443/v1", params: {} },
          { match: "https://gen.example/v1", params: {} },
        ],
      },
      "degradation.rules",
    ],
    ["fragment", { rules: [{ match: "https://gen.example/v1#x", params: {} }] }, "degradation.rules.0.match"],
    ["spaces", { rules: [{ match: " https://gen.example/v1", params: {} }] }, "degradation.rules.0.match"],
    ["control", { rules: [{ match: "https://gen.example/v\t1", params: {} }] }, "degradation.rules.0.match"],
    ["credentials", { rules: [{ match: "https://u:p@gen.example/v1", params: {} }] }, "degradation.rules.0.match"],
    ["levelHeader", { levelHeader: "x level" }, "degradation.levelHeader"],
    ["maxSteps", { levels: { medium: { maxSteps: 0 } } }, "degradation.levels.medium.maxSteps"],
  ];
  for (const [name, options, path] of bad) {
    it(`${name}: ConfigError at ${path}`, () => {
      let error: unknown;
      try {
        degradation(options as never);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).path).toBe(path);
    });
  }

  it("paths merely alike, query beside body, a tab in a model, and a query model are taken", () => {
    const good: unknown[] = [
      { rules: [{ params: { steps: "a.b", quality: "a.bc" } }] },
      { rules: [{ params: { steps: { query: "v" }, quality: "v" } }] },
      { rules: [{ params: { model: { header: "x-model" } } }], models: [["a", "b\tc"]] },
      { rules: [{ params: { model: { query: "m" } } }], models: [["a", "模型"]] },
    ];
    for (const options of good) expect(() => degradation(options as never)).not.toThrow();
  });
});
