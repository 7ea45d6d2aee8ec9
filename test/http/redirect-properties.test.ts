/**
 * Seeded property test of REDIRECTS followed by the library
 * (`redirects: "library"`), outside in (public entries only), on every path,
 * against real `node:http` servers on 127.0.0.1: three servers, four origins
 * (`http://127.0.0.1:<A>` and `http://localhost:<A>` are two origins of one
 * server), and one origin where nothing listens. What the servers received
 * is the ground truth.
 *
 * Each scenario (seed and draws printed when it fails) draws:
 *  - a path: a plain call; a `Request` input (with its body inside it, or
 *    none); a fallback chain (its second endpoint on a third origin); a
 *    hedged chain; a degraded call (`./degradation`, level header on); the
 *    ky client (`./ky`); the Worker proxy (`./cloudflare`, called in Node
 *    with a fake env);
 *  - a method (GET, HEAD, POST, PUT, DELETE), a body (none, a string, JSON,
 *    bytes, URLSearchParams, a Blob, a stream, a string past
 *    `maxReplayBytes`), credentials (Authorization, Cookie, x-api-key,
 *    Proxy-Authorization), `x-trace` (sometimes in `crossOriginHeaders`), an
 *    Idempotency-Key (the caller's, the library's, or none), 1 or 2 attempts;
 *  - a URL with a secret query key, and a chain of 0-5 redirects
 *    (301/302/303/307/308) with Locations absolute, path-relative,
 *    root-relative or scheme-relative, to the same origin, to `localhost`
 *    instead of `127.0.0.1`, to another server, with or without their own
 *    `?key=SECRET…`, ending in a final answer (200, 404, 500, 503), a loop
 *    (to itself, or ping-pong between two origins), a non-http Location, a
 *    Location with userinfo (a password, or a user alone), an unparsable
 *    Location, or a Location to the origin where nothing listens;
 *  - the call's `redirect` mode: unset, "follow", "manual", "error".
 *
 * A model (the Fetch standard's redirect steps as docs/retry.md#redirects
 * states them) predicts, per attempt, the exact sequence of requests (URL,
 * method, body or none, which headers) and how the attempt ends. Checked:
 *  1. every attempt's requests are the model's, in order; a hop to another
 *     origin, and every hop after it, carries no credential (nothing put
 *     back), a same-origin hop keeps them all; 303 (and 301/302 after a
 *     POST) is a GET without body or content headers; 307/308 replay method,
 *     body and content-type; a body sent once is never replayed;
 *  2. the call ends as the model says: the final answer (with `redirected`
 *     and the last hop's `url`), the 3xx itself under `redirect: "manual"`,
 *     or a documented error that names the reason (more than 20 redirects, a
 *     non-http or credentialed or invalid Location, a body sent once);
 *  3. a POST without a key answered with a redirect is never sent again
 *     (no retry, no next endpoint), and a key goes the same on every send;
 *  4. `redirect` events report each hop followed, with `crossOrigin` and the
 *     names of the headers dropped;
 *  5. no error text, event, `health()`, `debugInfo()` or proxy answer
 *     quotes a secret (query key, password, header value);
 *  6. breakers exist only for the hosts the caller (or the chain) addressed,
 *     never for a redirect's target;
 *  7. every call settles (no promise left hanging).
 *
 * `REDIRECT_SEEDS` and `REDIRECT_FIRST_SEED` run other seeds (seeds 1-3300
 * held when this was written, about 7 ms a scenario).
 *
 * One defect found, first pinned as an `it.fails` at the end of the file
 * with a fixed scenario on the code it was written against, its shape left
 * out of the draws (every Location drawn is ASCII): a `Location` holding
 * UTF-8 bytes was read as Latin-1, so the library requested another URL
 * than fetch's own follower does. Fixed since; the test is a plain `it`.
 */
import { describe, expect, it } from "vitest";
import { resilientProxy } from "../../src/cloudflare/index.ts";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type RedirectEvent } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { seededRandom } from "../../src/testing/clock.ts";
import { type Hit, type HttpUpstream, httpUpstream, refusedOrigin, serveDuringFile } from "../helpers/http-upstream.ts";

const A = httpUpstream(); // the origin the caller addresses (also reached as localhost)
const B = httpUpstream(); // another origin, a redirect's target
const C = httpUpstream(); // a third origin: redirect target, and a chain's second endpoint
serveDuringFile(A, B, C);

const SEEDS = Number(process.env.REDIRECT_SEEDS ?? 300);
const FIRST_SEED = Number(process.env.REDIRECT_FIRST_SEED ?? 1);
const MAX_REPLAY = 1024;
const LEVEL_HEADER = "x-degradation-level";

// ---------------------------------------------------------------- draws

type Path = "plain" | "request" | "chain" | "hedge" | "degrade" | "ky" | "proxy";
type Method = "GET" | "HEAD" | "POST" | "PUT" | "DELETE";
type BodyKind = "none" | "string" | "json" | "bytes" | "params" | "blob" | "stream" | "large";
type Code = 301 | 302 | 303 | 307 | 308;
type OriginName = "A" | "L" | "B" | "C";
type Form = "absolute" | "path-relative" | "root-relative" | "scheme-relative";
type Terminal =
  | { kind: "final"; status: 200 | 404 | 500 | 503 }
  | { kind: "loop"; status: Code; pingPong: boolean }
  | { kind: "nonhttp"; status: Code; location: string }
  | { kind: "userinfo"; status: Code; location: string }
  | { kind: "invalid"; status: Code }
  | { kind: "refused"; status: Code };
type Mode = undefined | "follow" | "manual" | "error";

interface HopDraw {
  status: Code;
  to: OriginName;
  form: Form;
  key: boolean;
}

interface Scenario {
  seed: number;
  path: Path;
  method: Method;
  body: BodyKind;
  credentials: string[];
  traceAllowed: boolean;
  callerKey: boolean;
  libKey: boolean;
  attempts: number;
  hops: HopDraw[];
  terminal: Terminal;
  mode: Mode;
  hedgeDelay: number;
}

const PATHS: Path[] = ["plain", "plain", "request", "request", "chain", "hedge", "degrade", "ky", "proxy"];
const METHODS: Method[] = ["GET", "GET", "HEAD", "POST", "POST", "PUT", "DELETE"];
const CODES: Code[] = [301, 302, 303, 307, 308];
const ORIGINS: OriginName[] = ["A", "A", "L", "B", "C"];
const FORMS: Form[] = ["absolute", "path-relative", "root-relative", "scheme-relative"];
const CREDENTIALS = ["authorization", "cookie", "x-api-key", "proxy-authorization"];

function draw(seed: number): Scenario {
  const random = seededRandom(seed);
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)] as T;
  const chance = (p: number) => random() < p;
  const path = pick(PATHS);
  const method = pick(METHODS);
  let body: BodyKind = "none";
  if (method !== "GET" && method !== "HEAD" && chance(0.85)) {
    body = pick(["string", "json", "bytes", "params", "blob", "stream", "large"] as const);
    // ky builds its own Request (a stream would need its own duplex handling): a string stands in.
    if (path === "ky" && body === "stream") body = "string";
  }
  const credentials = CREDENTIALS.filter(() => chance(0.7));
  const hops: HopDraw[] = [];
  const count = pick([0, 1, 1, 2, 2, 3, 4, 5]);
  for (let i = 0; i < count; i++) {
    hops.push({ status: pick(CODES), to: pick(ORIGINS), form: pick(FORMS), key: chance(0.5) });
  }
  const r = random();
  let terminal: Terminal;
  if (r < 0.55) terminal = { kind: "final", status: pick([200, 200, 200, 404, 500, 503] as const) };
  else if (r < 0.67) terminal = { kind: "loop", status: pick(CODES), pingPong: chance(0.5) };
  else if (r < 0.77)
    terminal = {
      kind: "nonhttp",
      status: pick(CODES),
      location: pick([
        `ftp://127.0.0.1/f?key=SECRETnh${seed}`,
        `javascript:alert('SECRETnh${seed}')`,
        `data:text/plain,SECRETnh${seed}`,
        `ws://127.0.0.1:1/?key=SECRETnh${seed}`,
      ]),
    };
  else if (r < 0.87)
    terminal = {
      kind: "userinfo",
      status: pick(CODES),
      location: pick([
        `http://user:SECRETpw${seed}@127.0.0.1:{B}/u?key=SECRETq${seed}`,
        `//SECRETuser${seed}@127.0.0.1:{B}/u`,
        `http://:SECRETpw${seed}@localhost:{A}/u`,
      ]),
    };
  else if (r < 0.93) terminal = { kind: "invalid", status: pick(CODES) };
  else terminal = { kind: "refused", status: pick(CODES) };
  return {
    seed,
    path,
    method,
    body,
    credentials,
    traceAllowed: chance(0.4),
    callerKey: method === "POST" && chance(0.25),
    libKey: chance(0.3),
    attempts: 1 + int(2),
    hops,
    terminal,
    // The proxy forwards with its own Request: always followed.
    mode: path === "proxy" ? undefined : pick([undefined, undefined, undefined, "follow", "manual", "error"] as const),
    hedgeDelay: 1 + int(4),
  };
}

// ---------------------------------------------------------------- origins and the script

let REFUSED = "";

function originOf(name: OriginName): string {
  if (name === "A") return A.base;
  if (name === "L") return `http://localhost:${A.port}`;
  if (name === "B") return B.base;
  return C.base;
}

/** The URLs of one scenario: step i of the redirect chain is `/s<seed>/h<i>` on its origin. */
function stepUrl(s: Scenario, i: number): string {
  const origin = i === 0 ? "A" : (s.hops[i - 1] as HopDraw).to;
  const key = i === 0 || (s.hops[i - 1] as HopDraw).key ? `?key=SECRETq${s.seed}x${i}` : "";
  return `${originOf(origin)}/s${s.seed}/h${i}${key}`;
}

/** The loop's URL; a ping-pong's second is on another server than the first. */
function loopUrl(s: Scenario, second: boolean): string {
  const first = new URL(stepUrl(s, s.hops.length)).origin;
  const base = second ? (first === B.base ? C.base : B.base) : first;
  return `${base}/s${s.seed}/loop${second ? "b" : ""}?key=SECRETloop${s.seed}`;
}

/** How a Location names `target` from `from`. */
function locationFor(from: string, target: string, form: Form): string {
  const f = new URL(from);
  const t = new URL(target);
  if (f.origin === t.origin && form === "path-relative")
    return t.pathname.slice(t.pathname.lastIndexOf("/") + 1) + t.search;
  if (f.origin === t.origin && form === "root-relative") return t.pathname + t.search;
  if (form === "scheme-relative" || form === "path-relative" || form === "root-relative")
    return `//${t.host}${t.pathname}${t.search}`;
  return t.href;
}

/** What the server at `url` answers: a redirect (status, Location) or a final status. */
type Answer = { redirect: number; location: string } | { final: number };

function answerAt(s: Scenario, url: URL): Answer | undefined {
  const step = /^\/s\d+\/h(\d+)$/.exec(url.pathname);
  const n = s.hops.length;
  const here = url.href;
  if (step) {
    const i = Number(step[1]);
    if (i < n) {
      const hop = s.hops[i] as HopDraw;
      return { redirect: hop.status, location: locationFor(here, stepUrl(s, i + 1), hop.form) };
    }
    if (i !== n) return undefined;
    const t = s.terminal;
    switch (t.kind) {
      case "final":
        return { final: t.status };
      case "loop":
        return { redirect: t.status, location: loopUrl(s, false) };
      case "nonhttp":
        return { redirect: t.status, location: t.location };
      case "userinfo":
        return {
          redirect: t.status,
          location: t.location.replace("{A}", String(A.port)).replace("{B}", String(B.port)),
        };
      case "invalid":
        return { redirect: t.status, location: `http://[bad-${s.seed}/x?key=SECRETinv${s.seed}` };
      case "refused":
        return { redirect: t.status, location: `${REFUSED}/gone?key=SECRETref${s.seed}` };
    }
  }
  if (s.terminal.kind === "loop" && /\/loopb?$/.test(url.pathname)) {
    const second = url.pathname.endsWith("b");
    const next = s.terminal.pingPong ? loopUrl(s, !second) : loopUrl(s, second);
    return { redirect: s.terminal.status, location: second ? next : locationFor(here, next, "root-relative") };
  }
  return undefined;
}

interface Logged {
  server: "A" | "B" | "C";
  /** The URL as the client addressed it (host header included). */
  url: string;
  hit: Hit;
}

function script(s: Scenario): Logged[] {
  const log: Logged[] = [];
  for (const [name, server] of [
    ["A", A],
    ["B", B],
    ["C", C],
  ] as const) {
    (server as HttpUpstream).reset();
    server.on((hit) => {
      const url = new URL(hit.path, `http://${hit.headers.host}`);
      log.push({ server: name, url: url.href, hit });
      if (url.pathname.startsWith(`/s${s.seed}/e2`)) {
        hit.res.writeHead(200, { "content-type": "application/json", "x-from": "e2" });
        hit.res.end('{"from":"e2"}');
        return;
      }
      const answer = url.pathname.startsWith(`/s${s.seed}/`) ? answerAt(s, url) : undefined;
      if (!answer) {
        hit.res.writeHead(418, { "x-from": "stray" });
        hit.res.end("stray");
      } else if ("redirect" in answer) {
        hit.res.writeHead(answer.redirect, { location: answer.location, "x-from": "redirect" });
        hit.res.end("moved");
      } else {
        hit.res.writeHead(answer.final, { "content-type": "application/json", "x-from": "final" });
        hit.res.end(JSON.stringify({ status: answer.final }));
      }
    });
  }
  return log;
}

// ---------------------------------------------------------------- the model

/** One request the model expects: where, how, with which body and headers. */
interface Expected {
  url: string;
  method: string;
  body: boolean;
  /** A hop to another origin came before (or at) this request. */
  crossed: boolean;
  /** The body's headers were removed (a redirect turned the request into a GET). */
  bodyHeadersGone: boolean;
}

/** What one attempt's follower does and how it ends. */
interface Walk {
  requests: Expected[];
  /** Hops followed: the `redirect` events of one attempt. */
  followed: { from: string; to: string; status: number; crossOrigin: boolean; firstCross: boolean }[];
  end:
    | { kind: "final"; status: number; redirected: boolean; url: string }
    | { kind: "manual"; status: number }
    | { kind: "error"; pattern: RegExp | undefined; afterRedirect: boolean };
  /** The first server answered with a redirect. */
  firstRedirected: boolean;
}

/** The Fetch standard's steps as docs/retry.md#redirects states them. */
/** Whether the scenario's body goes in `init` (not read into a `Request` first: ky's and the proxy's are). */
function initPathOf(s: Scenario): boolean {
  return s.path !== "request" && s.path !== "ky" && s.path !== "proxy";
}

function walk(s: Scenario, sendOnce: boolean, hasBody: boolean): Walk {
  const requests: Expected[] = [];
  const followed: Walk["followed"] = [];
  let url = stepUrl(s, 0);
  let method = s.method as string;
  let body = hasBody;
  let crossed = false;
  let bodyHeadersGone = false;
  for (let count = 0; ; count++) {
    requests.push({ url, method, body, crossed, bodyHeadersGone });
    const answer = answerAt(s, new URL(url)) as Answer;
    if ("final" in answer) {
      return {
        requests,
        followed,
        end: { kind: "final", status: answer.final, redirected: count > 0, url },
        firstRedirected: count > 0,
      };
    }
    if (s.mode === "manual")
      return { requests, followed, end: { kind: "manual", status: answer.redirect }, firstRedirected: true };
    if (s.mode === "error") {
      return {
        requests,
        followed,
        end: { kind: "error", pattern: undefined, afterRedirect: false },
        firstRedirected: true,
      };
    }
    const fail = (pattern: RegExp | undefined) =>
      ({ requests, followed, end: { kind: "error", pattern, afterRedirect: true }, firstRedirected: true }) as Walk;
    // "at most 20 hops (then a `TypeError`)"
    if (count === 20) return fail(/more than 20 redirects/);
    let target: URL;
    try {
      target = new URL(answer.location, url);
    } catch {
      return fail(/has an invalid Location/);
    }
    // "http(s) targets only"
    if (target.protocol !== "http:" && target.protocol !== "https:") return fail(/leads to a [a-z]+: URL/);
    // SECURITY.md: "a `Location` with `user:pass@` refused without quoting it"
    if (target.username || target.password) return fail(/leads to a URL with credentials/);
    const status = answer.redirect;
    // "a stream body (or an async iterable) given in `init` fails any redirect but a 303, a 301/302 too" (added in
    // the twenty-ninth session: such a POST answered 301/302 was followed as a GET, where the Fetch standard and
    // Node's follower refuse it). A `Request`'s body (ky's, the proxy's) is taken as one with a source.
    if (body && s.body === "stream" && initPathOf(s) && status !== 303) {
      return fail(/cannot follow a 30\d redirect .*sent once/);
    }
    // "301/302 turn a POST into a GET and 303 turns anything but GET/HEAD into a GET (body and its headers dropped)"
    if (
      ((status === 301 || status === 302) && method === "POST") ||
      (status === 303 && method !== "GET" && method !== "HEAD")
    ) {
      method = "GET";
      body = false;
      bodyHeadersGone = true;
    } else if (body && sendOnce) {
      // "307/308 replay method and body (a body sent once, a stream or one larger than maxReplayBytes, cannot be: a TypeError)"
      return fail(/cannot follow a 30\d redirect .*sent once/);
    }
    const cross = target.origin !== new URL(url).origin;
    followed.push({ from: url, to: target.href, status, crossOrigin: cross, firstCross: cross && !crossed });
    crossed ||= cross;
    url = target.href;
    if (target.origin === REFUSED) {
      return {
        requests,
        followed,
        end: { kind: "error", pattern: undefined, afterRedirect: true },
        firstRedirected: true,
      };
    }
  }
}

// ---------------------------------------------------------------- one scenario

const enc = new TextEncoder();

function bodyOf(kind: BodyKind, seed: number): { body: BodyInit; type: string | undefined } | undefined {
  switch (kind) {
    case "none":
      return undefined;
    case "string":
      return { body: `text body ${seed} é`, type: undefined };
    case "json":
      return { body: JSON.stringify({ prompt: "a fox", steps: 50, quality: 1, seed }), type: "application/json" };
    case "bytes":
      return { body: new Uint8Array([0xff, 1, 2, 3, seed & 0xff]), type: undefined };
    case "params":
      return { body: new URLSearchParams({ prompt: `fox ${seed}` }), type: undefined };
    case "blob":
      return { body: new Blob([`blob ${seed}`], { type: "application/x-storycore" }), type: undefined };
    case "stream": {
      const bytes = enc.encode(`stream body ${seed}`);
      return {
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(bytes);
            controller.close();
          },
        }),
        type: undefined,
      };
    }
    case "large":
      return { body: "L".repeat(MAX_REPLAY + 1 + (seed % 50)), type: "text/plain" };
  }
}

interface Outcome {
  settled: { response: Response; text: string } | { error: unknown } | { hung: true };
  log: Logged[];
  events: Record<string, unknown[]>;
  health: unknown;
  debug: unknown;
  proxyHealth: string | undefined;
  /** The caller's own header values, by lower-cased name. */
  sent: Record<string, string>;
  sendOnce: boolean;
  idempotent: boolean;
  walk: Walk;
  chained: boolean;
}

const EVENT_NAMES = ["retry", "request", "breaker", "fallback", "degradation", "replay", "redirect", "store"] as const;

async function run(s: Scenario): Promise<Outcome> {
  const log = script(s);
  const made = bodyOf(s.body, s.seed);
  const hasBody = made !== undefined;
  const sent: Record<string, string> = {};
  const values: Record<string, string> = {
    authorization: `Bearer SECRETauth${s.seed}`,
    cookie: `session=SECRETcookie${s.seed}`,
    "x-api-key": `SECRETxkey${s.seed}`,
    "proxy-authorization": `Basic SECRETproxy${s.seed}`,
  };
  for (const name of s.credentials) sent[name] = values[name] as string;
  sent["x-trace"] = `trace-${s.seed}`;
  if (made?.type) sent["content-type"] = made.type;
  if (s.callerKey) sent["idempotency-key"] = `caller-key-${s.seed}`;
  // The init path sends a stream (or a body past the limit) once; a Request's (ky's, the proxy client's)
  // stream is read ahead up to maxReplayBytes, so only one past the limit is sent once (docs/retry.md#bodies).
  const initPath = initPathOf(s);
  const sendOnce = s.body === "large" || (initPath && s.body === "stream");
  // The proxy's layer takes the same `retry.idempotencyKey` (its `resilience` options).
  const keyed = s.callerKey || (s.libKey && s.method === "POST");
  const idempotent = s.method !== "POST" || keyed;

  const chained = s.path === "chain" || s.path === "hedge";
  const chain = {
    name: `c${s.seed}`,
    endpoints: [
      { name: "first", url: `${A.base}/s${s.seed}` },
      { name: "second", url: `${C.base}/s${s.seed}/e2` },
    ],
    ...(s.path === "hedge" ? { hedge: { delay: s.hedgeDelay } } : {}),
  };
  const options = {
    retry: { maxAttempts: s.attempts, initialDelay: 0, maxDelay: 0, jitter: "none" as const, idempotencyKey: s.libKey },
    budget: false as const,
    redirects: "library" as const,
    maxReplayBytes: MAX_REPLAY,
    crossOriginHeaders: s.traceAllowed ? ["x-trace"] : [],
  };
  const layer = createResilience({
    ...options,
    ...(chained ? { fallback: fallback([chain]) } : {}),
    ...(s.path === "degrade" ? { degradation: degradation({ browserSignals: false, levelHeader: LEVEL_HEADER }) } : {}),
  });
  if (s.path === "degrade") layer.degradation?.setLevel("low");
  const events: Record<string, unknown[]> = {};
  for (const name of EVENT_NAMES) {
    events[name] = [];
    layer.on(name, (event: unknown) => events[name]?.push(event));
  }
  const url = stepUrl(s, 0);
  const modeInit = s.mode === undefined ? {} : { redirect: s.mode };
  const init: RequestInit = {
    method: s.method,
    headers: { ...sent },
    ...(made ? { body: made.body } : {}),
    ...(s.body === "stream" ? { duplex: "half" } : {}),
    ...modeInit,
  } as RequestInit;

  let settle: Promise<Response>;
  let proxy: ReturnType<typeof resilientProxy> | undefined;
  if (s.path === "request") {
    settle = layer.fetch(new Request(url, init));
  } else if (s.path === "ky") {
    const api = createClient({ resilience: layer, throwHttpErrors: false });
    settle = api(url, init as Parameters<typeof api>[1]) as unknown as Promise<Response>;
  } else if (s.path === "proxy") {
    proxy = resilientProxy({ routes: [{ path: "/api", upstream: `${A.base}/s${s.seed}` }], resilience: options });
    const clientUrl = `http://worker.test/api/h0${new URL(url).search}`;
    // A Worker's incoming request announces its body's length (docs/cloudflare.md): dropped with the body on a 303.
    const headers = new Headers(sent);
    if (made && s.body !== "stream") {
      const length = (
        await new Request(clientUrl, { method: "POST", body: bodyOf(s.body, s.seed)?.body ?? null }).arrayBuffer()
      ).byteLength;
      headers.set("content-length", String(length));
    }
    settle = proxy.fetch(
      new Request(clientUrl, { ...init, headers, duplex: "half" } as RequestInit),
      {},
      { waitUntil: () => {} },
    );
  } else {
    settle = layer.fetch(url, init);
  }

  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<{ hung: true }>((resolve) => {
    timer = setTimeout(() => resolve({ hung: true }), 8000);
  });
  const settled = await Promise.race([
    settle.then(
      async (response) => ({ response, text: await response.text() }),
      (error: unknown) => ({ error }),
    ),
    hung,
  ]);
  clearTimeout(timer);
  // A hedge that lost may still be arriving.
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
  let proxyHealth: string | undefined;
  if (proxy) {
    const answer = await proxy.fetch(
      new Request("http://worker.test/__resilience/health"),
      {},
      { waitUntil: () => {} },
    );
    proxyHealth = await answer.text();
  }
  return {
    settled,
    log,
    events,
    health: s.path === "proxy" ? undefined : layer.health(),
    debug: s.path === "proxy" ? undefined : layer.debugInfo(),
    proxyHealth,
    sent,
    sendOnce,
    idempotent,
    walk: walk(s, sendOnce, hasBody),
    chained,
  };
}

// ---------------------------------------------------------------- checks

/** The cross-origin allowlist (docs/retry.md#redirects, SECURITY.md). */
const ALLOWED = ["accept", "accept-language", "content-language", "content-type", "idempotency-key", "user-agent"];

/** Every message in an error's causes and a chain's `errors`, and its own fields. */
function errorText(error: unknown, depth = 0): string {
  if (depth > 5 || error === null || error === undefined) return "";
  if (typeof error !== "object") return String(error);
  const e = error as { message?: unknown; cause?: unknown; errors?: unknown };
  let text = `${String(e.message)} ${String(error)}`;
  for (const [k, v] of Object.entries(error)) {
    if (k !== "cause" && k !== "errors" && (typeof v !== "object" || v === null)) text += ` ${k}=${String(v)}`;
  }
  text += ` ${errorText(e.cause, depth + 1)}`;
  if (e.errors && typeof e.errors === "object")
    for (const v of Object.values(e.errors)) text += ` ${errorText(v, depth + 1)}`;
  return text;
}

function json(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Error ? errorText(v) : v));
}

function headerValue(hit: Hit, name: string): string | undefined {
  const v = hit.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

function check(s: Scenario, o: Outcome): string[] {
  const problems: string[] = [];
  const fail = (m: string) => problems.push(m);
  const { walk: w } = o;
  // The names the caller's origin gets and another origin does not (docs/retry.md#redirects).
  const stay = [
    ...s.credentials,
    ...(s.traceAllowed ? [] : ["x-trace"]),
    ...(s.path === "degrade" ? [LEVEL_HEADER] : []),
  ];
  // The proxy never forwards the client's proxy-authorization (docs/cloudflare.md).
  const reaching = s.path === "proxy" ? stay.filter((n) => n !== "proxy-authorization") : stay;

  // 7. settles
  if ("hung" in o.settled) return ["the call never settled (8 s)"];

  const mine = o.log.filter((l) => !new URL(l.url).pathname.startsWith(`/s${s.seed}/e2`));
  const e2 = o.log.filter((l) => new URL(l.url).pathname.startsWith(`/s${s.seed}/e2`));
  const L = w.requests.length;
  if (mine.length === 0) return ["no request reached the first server"];

  // 1. each attempt is the model's sequence (a hedge's loser may stop part-way).
  const attempts = Math.ceil(mine.length / L);
  if (s.path !== "hedge" && mine.length % L !== 0)
    fail(`${mine.length} requests is not a whole number of ${L}-request attempts`);
  if (attempts > s.attempts) fail(`${attempts} attempts, more than maxAttempts ${s.attempts}`);
  const keys = new Set<string>();
  for (let i = 0; i < mine.length; i++) {
    const got = mine[i] as Logged;
    const want = w.requests[i % L] as Expected;
    const first = mine[i - (i % L)] as Logged;
    const where = `request ${i} (${new URL(want.url).host}${new URL(want.url).pathname})`;
    if (got.url !== new URL(want.url).href) {
      fail(`${where}: went to ${got.url}`);
      continue;
    }
    if (got.hit.method !== want.method) fail(`${where}: method ${got.hit.method}, expected ${want.method}`);
    if (want.body) {
      if (!got.hit.bytes.equals(first.hit.bytes))
        fail(`${where}: body ${got.hit.body.slice(0, 40)} is not the first's`);
      if (headerValue(got.hit, "content-type") !== headerValue(first.hit, "content-type"))
        fail(`${where}: content-type ${headerValue(got.hit, "content-type")} differs from the first's`);
    } else if (got.hit.bytes.byteLength > 0) fail(`${where}: a body was sent (${got.hit.bytes.byteLength} bytes)`);
    if (want.bodyHeadersGone) {
      for (const name of ["content-type", "content-language", "content-encoding", "content-location"])
        if (headerValue(got.hit, name) !== undefined) fail(`${where}: ${name} kept after the request became a GET`);
      const length = headerValue(got.hit, "content-length");
      if (length !== undefined && length !== "0")
        fail(`${where}: content-length ${length} after the request became a GET`);
    }
    for (const name of reaching) {
      const value = headerValue(got.hit, name);
      if (want.crossed && value !== undefined) fail(`${where}: ${name} reached another origin`);
      if (!want.crossed && name !== LEVEL_HEADER && value !== o.sent[name])
        fail(`${where}: same-origin hop lost ${name}`);
      if (!want.crossed && name === LEVEL_HEADER && value === undefined) fail(`${where}: same-origin hop lost ${name}`);
    }
    if (headerValue(got.hit, "proxy-authorization") !== undefined && s.path === "proxy")
      fail(`${where}: the client's proxy-authorization went on`);
    if (s.traceAllowed && headerValue(got.hit, "x-trace") !== o.sent["x-trace"])
      fail(`${where}: x-trace (allowed) lost`);
    const key = headerValue(got.hit, "idempotency-key");
    if (key !== undefined) keys.add(key);
  }
  // 3. a key is one per call; a POST without a key answered with a redirect is sent once, nowhere else.
  if (s.callerKey && [...keys].some((k) => k !== `caller-key-${s.seed}`))
    fail(`keys ${[...keys]} are not the caller's`);
  if (keys.size > 1) fail(`${keys.size} different idempotency keys in one call`);
  if (!o.idempotent && w.firstRedirected) {
    if (attempts > 1) fail(`a POST without a key answered with a redirect was sent ${attempts} times`);
    if (e2.length > 0) fail("a POST without a key answered with a redirect went on to the next endpoint");
  }
  if (o.sendOnce && attempts > 1) fail(`a body sent once went ${attempts} times`);
  // docs/retry.md "Idempotency", "Redirects": a failure after a redirect (a later hop's, the follower's own
  // TypeError, a `redirect: "error"` refusal) is retried for an idempotent call only; 500/503 at the end of
  // the chain are the call's final status. (Chains pass on instead: not counted here.)
  if (!o.chained) {
    const end = w.end;
    const failed = end.kind === "error" || (end.kind === "final" && (end.status === 500 || end.status === 503));
    let want = 1;
    if (failed && !o.sendOnce) {
      if (o.idempotent) want = s.attempts;
      else if (!w.firstRedirected && end.kind === "final" && end.status === 503) want = s.attempts;
    }
    if (attempts !== want) fail(`${attempts} attempts, expected ${want}`);
  }
  if (o.sendOnce && e2.length > 0) fail("a body sent once went to the next endpoint");
  for (const l of e2) {
    for (const name of reaching)
      if (headerValue(l.hit, name) !== undefined) fail(`the chain's second endpoint (another origin) got ${name}`);
  }

  // 2. how the call ends
  const settled = o.settled;
  const fromE2 = "response" in settled && settled.response.headers.get("x-from") === "e2";
  if (fromE2 && !(o.chained && (o.idempotent || !w.firstRedirected) && !o.sendOnce))
    fail("answered by the next endpoint where the request may not go there");
  if (s.path === "proxy") {
    if (!("response" in settled)) fail(`the proxy rejected: ${errorText(settled.error)}`);
    else {
      const want = w.end.kind === "final" ? w.end.status : w.end.kind === "manual" ? w.end.status : 502;
      if (settled.response.status !== want) fail(`the proxy answered ${settled.response.status}, expected ${want}`);
      if (/SECRET/.test(settled.text + json([...settled.response.headers]))) fail("the proxy's answer quotes a secret");
    }
  } else if (!fromE2) {
    const end = w.end;
    if (end.kind === "final" || end.kind === "manual") {
      if (!("response" in settled))
        fail(`rejected (${errorText(settled.error).slice(0, 200)}), expected status ${end.status}`);
      else {
        const r = settled.response;
        if (r.status !== end.status) fail(`status ${r.status}, expected ${end.status}`);
        if (end.kind === "final") {
          // "The result has `redirected: true` and the last hop's `url`."
          if (r.redirected !== end.redirected) fail(`redirected ${r.redirected}, expected ${end.redirected}`);
          if (r.url !== end.url) fail(`url ${r.url}, expected ${end.url}`);
        } else {
          // "Calls with `redirect: "manual"` … go to the transport untouched": the 3xx itself.
          if (r.redirected) fail("a manual call's 3xx says redirected");
          if (r.headers.get("location") === null) fail("a manual call's 3xx lost its Location");
        }
      }
    } else if ("response" in settled) {
      fail(`answered ${settled.response.status}, expected a rejection${end.pattern ? ` matching ${end.pattern}` : ""}`);
    } else if (end.pattern && !end.pattern.test(errorText(settled.error))) {
      fail(`rejected with "${errorText(settled.error).slice(0, 300)}", expected ${end.pattern}`);
    }
  }

  // 4. redirect events: each hop followed, per attempt (a hedge's loser may stop part-way).
  if (s.path !== "proxy") {
    const heard = o.events.redirect as RedirectEvent[];
    const perAttempt = w.followed.length;
    if (s.path !== "hedge" && heard.length !== perAttempt * attempts)
      fail(`${heard.length} redirect events, expected ${perAttempt} × ${attempts}`);
    const hdrs = [...s.credentials, "x-trace", ...(s.path === "degrade" ? [LEVEL_HEADER] : [])];
    const droppable = hdrs.filter((n) => !ALLOWED.includes(n) && !(s.traceAllowed && n === "x-trace")).sort();
    for (let i = 0; i < Math.min(heard.length, perAttempt * attempts); i++) {
      const e = heard[i] as RedirectEvent;
      const f = w.followed[i % perAttempt] as Walk["followed"][number];
      const redact = (u: string) => {
        const x = new URL(u);
        return `${x.origin}${x.pathname}`;
      };
      if (
        e.from !== redact(f.from) ||
        e.to !== redact(f.to) ||
        e.status !== f.status ||
        e.crossOrigin !== f.crossOrigin
      )
        fail(`redirect event ${i} ${json(e)} ≠ ${json({ ...f, from: redact(f.from), to: redact(f.to) })}`);
      const dropped = [...e.dropped].sort();
      const want = f.firstCross ? droppable : [];
      if (json(dropped) !== json(want)) fail(`redirect event ${i} dropped ${json(dropped)}, expected ${json(want)}`);
    }
  }

  // 5. no secret anywhere the layer reports
  const reported = [
    "error" in settled ? errorText(settled.error) : "",
    json(o.events),
    json(o.health),
    json(o.debug),
    o.proxyHealth ?? "",
  ].join("\n");
  const leak = /SECRET\w*/.exec(reported);
  if (leak) fail(`a secret is quoted: …${reported.slice(Math.max(0, leak.index - 120), leak.index + 40)}…`);

  // 6. breakers: only the hosts the caller (or its chain) addressed.
  const healthText = s.path === "proxy" ? (o.proxyHealth ?? "{}") : json(o.health);
  const breakers = Object.keys((JSON.parse(healthText) as { breakers: Record<string, unknown> }).breakers ?? {});
  const allowed = new Set([A.host, ...(o.chained ? [C.host] : [])]);
  for (const host of breakers) if (!allowed.has(host)) fail(`a breaker for ${host}, a redirect's target`);
  return problems;
}

function summary(s: Scenario): string {
  const hops = s.hops.map((h) => `${h.status}→${h.to}/${h.form}`).join(" ");
  return `${s.path} ${s.method} body=${s.body} mode=${s.mode ?? "-"} hops=[${hops}] end=${json(s.terminal)} creds=${s.credentials} attempts=${s.attempts} key=${s.callerKey ? "caller" : s.libKey ? "lib" : "-"} trace=${s.traceAllowed}`;
}

describe("redirects on every path (seeded property, real servers)", () => {
  it(`holds the documented promises in ${SEEDS} seeded scenarios`, { timeout: 120_000 }, async () => {
    REFUSED = await refusedOrigin();
    const failures: string[] = [];
    const seen = new Set<string>();
    for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
      const s = draw(seed);
      let problems: string[];
      try {
        const o = await run(s);
        problems = check(s, o);
        seen.add(s.path);
        seen.add(o.walk.end.kind);
        for (const f of o.walk.followed) seen.add(`hop ${f.status}${f.crossOrigin ? " cross" : ""}`);
      } catch (error) {
        problems = [`threw ${String(error)}`];
      }
      if (problems.length > 0) failures.push(`seed ${seed} ${summary(s)}\n    ${problems.join("\n    ")}`);
    }
    expect(failures).toEqual([]);
    if (SEEDS >= 300) {
      for (const p of ["plain", "request", "chain", "hedge", "degrade", "ky", "proxy"]) expect(seen).toContain(p);
      for (const k of ["final", "manual", "error"]) expect(seen).toContain(k);
      for (const c of CODES) expect(seen).toContain(`hop ${c} cross`);
    }
  });
});

// ---------------------------------------------------------------- defects, minimised

describe("defects found by attacking the follower (pinned: each `it.fails` asserts the promise)", () => {
  // docs/retry.md#redirects: the library follows redirects itself, and "Everything else is the Fetch
  // standard's" (SECURITY.md: "outside browsers the library follows redirects itself"). The Fetch
  // standard's follower, as the platform runs it (undici, `redirects: "platform"`) and as browsers do,
  // reads a `Location` header's bytes as UTF-8: `/caf\xC3\xA9` is `/café`, sent as `/caf%C3%A9`. The
  // library's follower reads the header through `Headers.get`, which hands over the bytes as Latin-1
  // (one character per byte), so it requests `/caf%C3%83%C2%A9`, a URL no server named: the hop goes to
  // another resource than fetch would reach (here a 404 instead of the answer). The same on every path
  // (one follower). Left out of the property above: its Locations are all ASCII.
  it("follows a Location with UTF-8 bytes to the URL fetch follows it to (plain call)", async () => {
    const raw = Buffer.from("/utf8/caf\u00e9", "utf8").toString("latin1"); // the header's bytes, as node:http writes them
    A.reset();
    A.on((hit) => {
      if (hit.path === "/utf8/start") {
        hit.res.writeHead(302, { location: raw });
        hit.res.end();
      } else if (hit.path === "/utf8/caf%C3%A9") hit.res.end("the cafe");
      else {
        hit.res.writeHead(404);
        hit.res.end("no such page");
      }
    });
    // The baseline: fetch's own follower (undici) reaches /utf8/caf%C3%A9.
    const platform = createResilience({ retry: false, redirects: "platform" });
    const viaPlatform = await platform.fetch(`${A.base}/utf8/start`);
    expect([viaPlatform.status, await viaPlatform.text(), viaPlatform.url]).toEqual([
      200,
      "the cafe",
      `${A.base}/utf8/caf%C3%A9`,
    ]);
    const library = createResilience({ retry: false, redirects: "library" });
    const viaLibrary = await library.fetch(`${A.base}/utf8/start`);
    const body = await viaLibrary.text();
    // Today: 404 "no such page" at http://127.0.0.1:<A>/utf8/caf%C3%83%C2%A9.
    expect([viaLibrary.status, body, viaLibrary.url]).toEqual([200, "the cafe", `${A.base}/utf8/caf%C3%A9`]);
  });
});
