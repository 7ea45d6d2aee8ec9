/**
 * Differential test: the testing kit's CORS emulation (`corsPreflight(policy)`
 * and its `respond(fault)`) and the root entry's `corsHint` against a real
 * Chromium (Debian's /usr/bin/chromium, 156.0.8078.114 when written).
 *
 * Set-up: a page on one 127.0.0.1 port, the API on another (another origin).
 * The API answers each preflight with the kit's own handler for the policy
 * (`corsPreflight(policy).run(…)`; its network error becomes a dropped
 * connection), and every other request with 200 and
 * `Access-Control-Allow-Origin: *`, as `respond` does. The server records what
 * it receives (the preflight, its `Access-Control-Request-Headers`, whether the
 * request itself arrived). Each fetch gets its own URL (no preflight cache).
 *
 * Matrix (request side): methods GET, POST, PUT, DELETE, PATCH, `put`/`patch`
 * in lower case; content-type `text/plain`, `text/plain;charset=UTF-8`,
 * `text/plain; charset="utf-8"`, `TEXT/PLAIN`, `text/plain;`, a 128- and a
 * 129-byte text/plain, `application/json`, form, `multipart/form-data;
 * boundary=x`, invalid MIME types; `accept` plain, JSON:API with
 * `profile="x"`, 129 bytes, a Latin-1 byte; `accept-language` with `_` and
 * `(`; `content-language`; `range` `bytes=0-99`, `bytes=5-3`, `bytes=0-`,
 * `bytes=-5`, `bytes=5-5`, multi-range, `Bytes=`, `bytes= `, `items=`; `x-`
 * headers, `authorization`, `idempotency-key`, `priority`; five safelisted
 * headers of 128 bytes together; forbidden headers; Chromium's client hints;
 * each under three policies: `allowHeaders: []`, a list (`content-type`,
 * `authorization`, `idempotency-key`, `x-allowed`) and `"*"`. Response side:
 * `exposeHeaders: []`, a list, `"*"`, with and without credentials.
 *
 * Agreed: every content-type, accept, language and ordinary range case, the
 * 128/129-byte limit, custom and `idempotency-key` headers, PUT/DELETE/PATCH
 * and `put`, `user-agent` (Chromium drops it), `*` covering `authorization`
 * (Chromium 156 sends it after a `*` preflight, although docs/browsers-and-
 * cors.md said a browser's `*` does not cover it: the docs now say Chromium's does), which response headers are
 * readable (safelisted, exposed, `*`; never set-cookie). The hint names
 * exactly Chromium's `Access-Control-Request-Headers` in those cases.
 *
 * Disagreements (each pinned below; 1, 2, 3 and 5 failed on the code they were
 * written against and are fixed in the kit and the safelist; 4 and 6 are the
 * kit's documented choices, pinned as such):
 * 1. Forbidden request headers (set-cookie, cookie2, access-control-request-*,
 *    x-http-method-override: TRACE, x-method-override: CONNECT): Chromium drops
 *    them and sends the request without a preflight; `respond` refuses it.
 * 2. Method `patch` in lower case: Chromium asks `patch`, the kit's preflight
 *    allows `PATCH` (case-sensitive), Chromium refuses; `respond` lets it through.
 * 3. `range: bytes=9007199254740993-9007199254740992` (end before start beyond
 *    2^53): Chromium preflights (range); `respond` and the hint treat it as
 *    safelisted (Number loses the last digit). (Chromium also preflights any
 *    range past int64, e.g. `bytes=0-9223372036854775807`, which the standard
 *    safelists; not pinned.)
 * 4. Chromium's client-hint headers (dpr, save-data, device-memory,
 *    viewport-width, width): Chromium sends them without a preflight;
 *    `respond` refuses them and the hint names them.
 * 5. `credentials: "include"`: Chromium refuses the answer's
 *    `Access-Control-Allow-Origin: *`; `respond` hands the answer to the code.
 * 6. Response headers: page code in Chromium cannot read the unexposed
 *    `access-control-allow-origin` / `access-control-expose-headers`;
 *    `respond`'s answer carries them.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { corsHint } from "../../src/http/cors-hint.ts";
import { type CorsPolicy, corsPreflight } from "../../src/testing/index.ts";
import { launchChromium } from "../runtimes/chromium.ts";

type PolicyName = "none" | "list" | "star";
const POLICIES: Record<PolicyName, CorsPolicy> = {
  none: { allowHeaders: [] },
  list: { allowHeaders: ["content-type", "authorization", "idempotency-key", "x-allowed"] },
  star: { allowHeaders: "*" },
};

/** A request as page code makes it. */
interface Call {
  method: string;
  headers?: [string, string][];
  credentials?: RequestCredentials;
}
type Outcome = "ok" | "error";

/** What the API received for one URL. */
interface Received {
  method: string;
  acrh?: string | undefined;
  acrm?: string | undefined;
  headers: IncomingMessage["headers"];
}

/** The upstream's answer headers for the response side. */
const UPSTREAM_HEADERS: Record<string, string> = {
  "cache-control": "no-store",
  "content-language": "en",
  "content-length": "5",
  "content-type": "text/plain",
  expires: "0",
  "last-modified": "Wed, 21 Oct 2015 07:28:00 GMT",
  pragma: "no-cache",
  "retry-after": "2",
  server: "api",
  "set-cookie": "a=1",
  "x-ratelimit-remaining": "0",
  "x-request-id": "r1",
};
const EXPOSE: Record<PolicyName, CorsPolicy> = {
  none: { exposeHeaders: [] },
  list: { exposeHeaders: ["retry-after", "x-request-id", "set-cookie"] },
  star: { exposeHeaders: "*" },
};

let browser: Browser;
let tab: Page;
let pageServer: Server;
let apiServer: Server;
let pageUrl = "";
let apiUrl = "";
let counter = 0;
const received = new Map<string, Received[]>();

const listen = (server: Server) =>
  new Promise<string>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );

/** The API: preflights answered by the kit's own handler for the policy named in the path. */
async function api(req: IncomingMessage, res: ServerResponse) {
  const path = req.url ?? "";
  const log = received.get(path) ?? [];
  received.set(path, log);
  log.push({
    method: req.method ?? "",
    acrh: req.headers["access-control-request-headers"] as string | undefined,
    acrm: req.headers["access-control-request-method"] as string | undefined,
    headers: req.headers,
  });
  req.resume();
  const [, kind, policy] = path.split("/") as [string, string, PolicyName];
  if (req.method === "OPTIONS") {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === "string") headers.set(name, value);
    const result = await corsPreflight(POLICIES[policy]).run({
      request: new Request(`${apiUrl}${path}`, { method: "OPTIONS", headers }),
      requestId: String(counter),
    });
    const answer = result?.response;
    if (!answer || answer.type === "error") {
      req.socket.destroy();
      return;
    }
    res.writeHead(answer.status, Object.fromEntries(answer.headers)).end();
  } else if (kind === "r") {
    // The response side: the upstream's headers, with the CORS headers respond() adds.
    const expose = EXPOSE[policy].exposeHeaders;
    const aceh =
      expose === "*"
        ? { "access-control-expose-headers": "*" }
        : expose?.length
          ? { "access-control-expose-headers": expose.join(", ") }
          : {};
    res.writeHead(503, { "access-control-allow-origin": "*", ...aceh, ...UPSTREAM_HEADERS }).end("busy!");
  } else {
    res.writeHead(200, { "access-control-allow-origin": "*", "content-type": "text/plain" }).end("ok");
  }
}

/** The call in Chromium: its outcome, the headers its Request holds, and what the API received. */
async function inChromium(policy: PolicyName, call: Call) {
  const path = `/p/${policy}/${++counter}`;
  const url = `${apiUrl}${path}`;
  const result = await tab.evaluate(
    async ({ url, call }) => {
      const init: RequestInit = { method: call.method };
      if (call.headers) init.headers = call.headers;
      if (call.credentials) init.credentials = call.credentials;
      if (!["GET", "HEAD"].includes(call.method.toUpperCase())) init.body = "x";
      const sent = [...new Request(url, init).headers];
      try {
        await fetch(url, init);
        return { outcome: "ok" as const, sent };
      } catch {
        return { outcome: "error" as const, sent };
      }
    },
    { url, call },
  );
  const log = received.get(path) ?? [];
  const preflight = log.find((r) => r.method === "OPTIONS");
  return {
    url,
    outcome: result.outcome as Outcome,
    /** The headers a browser Request holds (what the library passes the hint). */
    sent: new Headers(result.sent),
    /** null: no preflight; otherwise its Access-Control-Request-Headers ("" for none). */
    asked: preflight ? (preflight.acrh ?? "") : null,
    arrived: log.find((r) => r.method !== "OPTIONS"),
  };
}

/** The same call through `corsPreflight(policy).respond(fault)`, in Node. */
async function inKit(policy: PolicyName, call: Call, url = `${apiUrl}/kit`): Promise<Outcome> {
  const wrapped = corsPreflight(POLICIES[policy]).respond(() => new Response("ok"));
  const init: RequestInit = { method: call.method };
  if (call.headers) init.headers = call.headers;
  if (call.credentials) init.credentials = call.credentials;
  if (!["GET", "HEAD"].includes(call.method.toUpperCase())) init.body = "x";
  const request = new Request(url, init);
  const answer = await wrapped(request, { attempt: 1 });
  return answer.type === "error" ? "error" : "ok";
}

/** The request headers `corsHint` names for a refused call, as Chromium writes them in a preflight. */
function hintNames(url: string, headers: Headers): string {
  const hint = corsHint(new TypeError("Failed to fetch"), url, { inBrowser: true, origin: pageUrl, headers });
  expect(hint).toMatch(/^probably refused by the browser's CORS rules/);
  return (hint?.match(/the request headers (.*?) in its preflight/)?.[1] ?? "").split(", ").filter(Boolean).join(",");
}

beforeAll(async () => {
  pageServer = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>page</title>");
  });
  apiServer = createServer((req, res) => {
    api(req, res).catch(() => req.socket.destroy());
  });
  pageUrl = await listen(pageServer);
  apiUrl = await listen(apiServer);
  browser = await launchChromium();
  tab = await browser.newPage();
  await tab.goto(pageUrl);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const server of [pageServer, apiServer]) {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  }
});

const T129 = `text/plain;x=${"a".repeat(116)}`;
const GET = (headers: [string, string][]): Call => ({ method: "GET", headers });
const POST = (contentType: string, more: [string, string][] = []): Call => ({
  method: "POST",
  headers: [["content-type", contentType], ...more],
});

/**
 * Agreeing cases: [name, call, Chromium's preflight (null: none; else its
 * Access-Control-Request-Headers), outcome under none / list / "*"].
 */
const AGREEING: [string, Call, string | null, [Outcome, Outcome, Outcome]][] = [
  ["GET, no headers", GET([]), null, ["ok", "ok", "ok"]],
  ["text/plain", POST("text/plain"), null, ["ok", "ok", "ok"]],
  ["text/plain;charset=UTF-8", POST("text/plain;charset=UTF-8"), null, ["ok", "ok", "ok"]],
  ['text/plain; charset="utf-8"', POST('text/plain; charset="utf-8"'), "content-type", ["error", "ok", "ok"]],
  ["TEXT/PLAIN", POST("TEXT/PLAIN"), null, ["ok", "ok", "ok"]],
  ["text/plain;", POST("text/plain;"), null, ["ok", "ok", "ok"]],
  ["text/plain, tab before ;", POST("text/plain\t;charset=utf-8"), null, ["ok", "ok", "ok"]],
  ["text/plain of 128 bytes", POST(T129.slice(0, 128)), null, ["ok", "ok", "ok"]],
  ["text/plain of 129 bytes", POST(T129), "content-type", ["error", "ok", "ok"]],
  ["application/json", POST("application/json"), "content-type", ["error", "ok", "ok"]],
  ["form", POST("application/x-www-form-urlencoded"), null, ["ok", "ok", "ok"]],
  ["multipart/form-data; boundary=x", POST("multipart/form-data; boundary=x"), null, ["ok", "ok", "ok"]],
  ["text/plain x (no MIME type)", POST("text/plain x"), "content-type", ["error", "ok", "ok"]],
  ["text/plain,application/json", POST("text/plain,application/json"), "content-type", ["error", "ok", "ok"]],
  ["text/plainx", POST("text/plainx"), "content-type", ["error", "ok", "ok"]],
  ["text/ plain", POST("text/ plain"), "content-type", ["error", "ok", "ok"]],
  ["accept application/json", GET([["accept", "application/json"]]), null, ["ok", "ok", "ok"]],
  [
    'accept JSON:API profile="x"',
    GET([["accept", 'application/vnd.api+json; profile="x"']]),
    "accept",
    ["error", "error", "ok"],
  ],
  ["accept of 129 bytes", GET([["accept", "a".repeat(129)]]), "accept", ["error", "error", "ok"]],
  ["accept with a Latin-1 byte", GET([["accept", "text/\u00e9"]]), null, ["ok", "ok", "ok"]],
  ["accept-language en-US,en;q=0.9", GET([["accept-language", "en-US,en;q=0.9"]]), null, ["ok", "ok", "ok"]],
  ["accept-language en_US", GET([["accept-language", "en_US"]]), "accept-language", ["error", "error", "ok"]],
  ["accept-language en (x)", GET([["accept-language", "en (x)"]]), "accept-language", ["error", "error", "ok"]],
  ["content-language de", GET([["content-language", "de"]]), null, ["ok", "ok", "ok"]],
  ["range bytes=0-99", GET([["range", "bytes=0-99"]]), null, ["ok", "ok", "ok"]],
  ["range bytes=0-", GET([["range", "bytes=0-"]]), null, ["ok", "ok", "ok"]],
  ["range bytes=5-5", GET([["range", "bytes=5-5"]]), null, ["ok", "ok", "ok"]],
  ["range bytes=5-3", GET([["range", "bytes=5-3"]]), "range", ["error", "error", "ok"]],
  ["range bytes=-5", GET([["range", "bytes=-5"]]), "range", ["error", "error", "ok"]],
  ["range bytes=0-1,3-4", GET([["range", "bytes=0-1,3-4"]]), "range", ["error", "error", "ok"]],
  ["range Bytes=0-99", GET([["range", "Bytes=0-99"]]), "range", ["error", "error", "ok"]],
  ["range bytes= 0-99", GET([["range", "bytes= 0-99"]]), "range", ["error", "error", "ok"]],
  ["range items=0-5", GET([["range", "items=0-5"]]), "range", ["error", "error", "ok"]],
  [
    "five safelisted headers of 128 bytes",
    GET([
      ["accept", "a".repeat(128)],
      ["accept-language", "b".repeat(128)],
      ["content-language", "c".repeat(128)],
      ["content-type", `text/plain;${"d".repeat(117)}`],
      ["range", "bytes=0-99"],
    ]),
    null,
    ["ok", "ok", "ok"],
  ],
  ["x-custom", GET([["x-custom", "1"]]), "x-custom", ["error", "error", "ok"]],
  ["x-allowed", GET([["x-allowed", "1"]]), "x-allowed", ["error", "ok", "ok"]],
  ["priority", GET([["priority", "u=1"]]), "priority", ["error", "error", "ok"]],
  [
    "x-http-method-override: PUT",
    GET([["x-http-method-override", "PUT"]]),
    "x-http-method-override",
    ["error", "error", "ok"],
  ],
  ["authorization", GET([["authorization", "Bearer t"]]), "authorization", ["error", "ok", "ok"]],
  [
    "JSON POST with idempotency-key",
    POST("application/json", [["idempotency-key", "k1"]]),
    "content-type,idempotency-key",
    ["error", "ok", "ok"],
  ],
  [
    "text POST with idempotency-key",
    POST("text/plain", [["idempotency-key", "k1"]]),
    "idempotency-key",
    ["error", "ok", "ok"],
  ],
  ["PUT", { method: "PUT" }, "", ["ok", "ok", "ok"]],
  ["put (lower case, normalised)", { method: "put" }, "", ["ok", "ok", "ok"]],
  ["DELETE", { method: "DELETE" }, "", ["ok", "ok", "ok"]],
  ["PATCH", { method: "PATCH" }, "", ["ok", "ok", "ok"]],
  ["PUT text/plain", { method: "PUT", headers: [["content-type", "text/plain"]] }, "", ["ok", "ok", "ok"]],
  ["user-agent (dropped by Chromium)", GET([["user-agent", "x"]]), null, ["ok", "ok", "ok"]],
];

describe("the kit and the hint agree with Chromium", () => {
  it("on the preflight, its Access-Control-Request-Headers, and the outcome under three policies", async () => {
    const rows: unknown[] = [];
    const expected: unknown[] = [];
    for (const [name, call, asked, outcomes] of AGREEING) {
      const policies = ["none", "list", "star"] as const;
      const chromium = await Promise.all(policies.map((policy) => inChromium(policy, call)));
      const kit = await Promise.all(policies.map((policy) => inKit(policy, call)));
      rows.push({
        name,
        asked: chromium[0]?.asked,
        chromium: chromium.map((c) => c.outcome),
        kit,
        hint: chromium[0] && hintNames(chromium[0].url, chromium[0].sent),
      });
      expected.push({ name, asked, chromium: outcomes, kit: outcomes, hint: asked ?? "" });
    }
    expect(rows).toEqual(expected);
  }, 120_000);

  it("a preflight's * covers authorization in Chromium 156 (docs say a browser's * does not), as it does in the kit", async () => {
    const call = GET([["authorization", "Bearer t"]]);
    const chromium = await inChromium("star", call);
    expect(chromium.outcome).toBe("ok");
    expect(chromium.arrived?.headers.authorization).toBe("Bearer t");
    expect(await inKit("star", call)).toBe("ok");
  }, 30_000);

  it("on which answer headers page code can read (safelisted, exposed, *; never set-cookie)", async () => {
    const visible: Record<string, unknown> = {};
    for (const policy of ["none", "list", "star"] as const) {
      const names = await tab.evaluate(async (url) => [...(await fetch(url)).headers.keys()], `${apiUrl}/r/${policy}`);
      const wrapped = corsPreflight(EXPOSE[policy]).respond(
        () => new Response("busy!", { status: 503, headers: UPSTREAM_HEADERS }),
      );
      const answer = await wrapped(new Request(`${apiUrl}/r/${policy}`), { attempt: 1 });
      // Only the upstream's own headers here (the server adds date, connection…; the CORS ones are case 6).
      const upstreamOnly = (list: Iterable<string>) => [...list].filter((h) => h in UPSTREAM_HEADERS).sort();
      visible[policy] = { chromium: upstreamOnly(names), kit: upstreamOnly(answer.headers.keys()) };
    }
    const safelisted = [
      "cache-control",
      "content-language",
      "content-length",
      "content-type",
      "expires",
      "last-modified",
      "pragma",
    ];
    const everyButCookie = Object.keys(UPSTREAM_HEADERS)
      .filter((h) => h !== "set-cookie")
      .sort();
    const listed = [...safelisted, "retry-after", "x-request-id"].sort();
    expect(visible).toEqual({
      none: { chromium: safelisted, kit: safelisted },
      list: { chromium: listed, kit: listed },
      star: { chromium: everyButCookie, kit: everyButCookie },
    });
  }, 30_000);
});

/*
 * The promises the disagreements break (docs/browsers-and-cors.md):
 * - respond: "`respond(fault)` wraps an upstream's fault so its answers look as
 *   a browser shows them, in any environment: a request carrying a header the
 *   preflight would refuse, judged by name and value as a browser judges it,
 *   fails as a network error before the fault sees it (…), unexposed headers
 *   are removed".
 * - hint: "naming the request headers the preflight must allow (every one sent
 *   but `accept`, `accept-language`, `content-language`, `content-type` and
 *   `range` with safelisted values, as above)".
 */
describe("where the kit or the hint differs from Chromium", () => {
  it("1. respond lets a request with a forbidden header through, as Chromium drops the header and sends it", async () => {
    // "a request carrying a header the preflight would refuse, judged … as a browser judges it, fails as a network error"
    const forbidden: [string, string][] = [
      ["set-cookie", "a=1"],
      ["cookie2", "a=1"],
      ["access-control-request-method", "GET"],
      ["access-control-request-headers", "x"],
      ["x-http-method-override", "TRACE"],
      ["x-method-override", "CONNECT"],
    ];
    for (const header of forbidden) {
      const chromium = await inChromium("none", GET([header]));
      expect({ header, asked: chromium.asked, outcome: chromium.outcome }).toEqual({
        header,
        asked: null,
        outcome: "ok",
      });
    }
    const kit = await Promise.all(
      forbidden.map(async (header) => ({ header, outcome: await inKit("none", GET([header])) })),
    );
    expect(kit).toEqual(forbidden.map((header) => ({ header, outcome: "ok" })));
  }, 30_000);

  it("2. respond refuses method `patch` in lower case, as Chromium does against the kit's own preflight answer", async () => {
    // "wraps an upstream's fault so its answers look as a browser shows them, in any environment"
    const call: Call = { method: "patch" };
    for (const policy of ["none", "star"] as const) {
      const chromium = await inChromium(policy, call);
      expect({ acrm: received.get(new URL(chromium.url).pathname)?.[0]?.acrm, outcome: chromium.outcome }).toEqual({
        acrm: "patch",
        outcome: "error",
      });
      expect(chromium.arrived).toBeUndefined();
    }
    expect(await inKit("star", call)).toBe("error");
  }, 30_000);

  const HUGE_RANGE = GET([["range", "bytes=9007199254740993-9007199254740992"]]);

  it("3a. respond refuses range bytes=9007199254740993-9007199254740992 (end before start), as Chromium preflights it", async () => {
    // "judged by name and value as a browser judges it"
    const chromium = await inChromium("none", HUGE_RANGE);
    expect({ asked: chromium.asked, outcome: chromium.outcome }).toEqual({ asked: "range", outcome: "error" });
    expect(await inKit("none", HUGE_RANGE)).toBe("error");
  }, 30_000);

  it("3b. the hint names range for bytes=9007199254740993-9007199254740992, as Chromium asks for it", async () => {
    // "naming the request headers the preflight must allow (every one sent but … `range` with safelisted values)"
    const chromium = await inChromium("none", HUGE_RANGE);
    expect(chromium.asked).toBe("range");
    expect(hintNames(chromium.url, chromium.sent)).toBe("range");
  }, 30_000);

  const CLIENT_HINTS: [string, string][] = [
    ["dpr", "2"],
    ["save-data", "on"],
    ["device-memory", "8"],
    ["viewport-width", "800"],
    ["width", "800"],
  ];

  // By design, documented (docs/browsers-and-cors.md): Chromium sends its client-hint headers
  // without a preflight, beyond the Fetch standard's safelist; the kit and the hint follow the
  // standard (other engines preflight them), so they refuse / name them.
  it("4. Chromium's client-hint headers go without a preflight; the kit and the hint follow the standard", async () => {
    for (const header of CLIENT_HINTS) {
      const chromium = await inChromium("none", GET([header]));
      expect({ header, asked: chromium.asked, outcome: chromium.outcome }).toEqual({
        header,
        asked: null,
        outcome: "ok",
      });
      expect(await inKit("none", GET([header]))).toBe("error");
    }
    const chromium = await inChromium(
      "none",
      GET([
        ["dpr", "2"],
        ["x-custom", "1"],
      ]),
    );
    expect(chromium.asked).toBe("x-custom");
    expect(hintNames(chromium.url, chromium.sent)).toBe("dpr,x-custom");
  }, 30_000);

  it("5. respond fails a credentialed request (credentials: include) on its Access-Control-Allow-Origin: *, as Chromium does", async () => {
    // "wraps an upstream's fault so its answers look as a browser shows them … `Access-Control-Allow-Origin: *` is added"
    const call: Call = { method: "GET", credentials: "include" };
    const chromium = await inChromium("star", call);
    expect(chromium.arrived).toBeDefined(); // a simple request: sent, and its answer refused
    expect(chromium.outcome).toBe("error");
    expect(await inKit("star", call)).toBe("error");
  }, 30_000);

  // By design, documented (docs/browsers-and-cors.md): `respond`'s answer carries
  // Access-Control-Allow-Origin and the expose list, which happy-dom needs to hand the answer
  // to page code; in Chromium page code cannot read those two unless exposed.
  it("6. Chromium hides access-control-allow-origin and -expose-headers from page code; respond's answer carries them", async () => {
    const cors = ["access-control-allow-origin", "access-control-expose-headers"];
    const visible: Record<string, unknown> = {};
    for (const policy of ["none", "list"] as const) {
      const names = await tab.evaluate(async (url) => [...(await fetch(url)).headers.keys()], `${apiUrl}/r/${policy}`);
      const wrapped = corsPreflight(EXPOSE[policy]).respond(
        () => new Response("busy!", { status: 503, headers: UPSTREAM_HEADERS }),
      );
      const answer = await wrapped(new Request(`${apiUrl}/r/${policy}`), { attempt: 1 });
      visible[policy] = {
        chromium: names.filter((h) => cors.includes(h)),
        kit: [...answer.headers.keys()].filter((h) => cors.includes(h)),
      };
    }
    expect(visible).toEqual({
      none: { chromium: [], kit: ["access-control-allow-origin"] },
      list: { chromium: [], kit: ["access-control-allow-origin", "access-control-expose-headers"] },
    });
  }, 30_000);
});
