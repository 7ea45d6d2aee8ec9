/**
 * Outside-in attack from hostile peers: an upstream that answers with
 * malformed or absurd headers, redirects and bodies, and a caller's secrets
 * that such answers try to pull into errors, events, `health()` and
 * `debugInfo()` (SECURITY.md). Real `node:http` servers on 127.0.0.1 (and a
 * raw `node:net` one where `node:http` refuses to write the answer); time
 * moves only on a `TestClock`.
 */
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import * as z from "zod";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type ResilienceOptions } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { type Handler, httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

const P = httpUpstream();
const Q = httpUpstream();

serveDuringFile(P, Q);

const SECRET = "sk-live-0123456789abcdef";

/** A layer on the real network that records every event as JSON text. */
function layer(options: ResilienceOptions = {}) {
  const clock = new TestClock(Date.parse("2026-01-01T00:00:00Z"));
  const resilience = createResilience({
    clock,
    redirects: "library",
    ...options,
    retry: options.retry === false ? false : { jitter: "none", initialDelay: 100, ...options.retry },
  });
  const events: string[] = [];
  for (const name of ["retry", "request", "breaker", "replay", "redirect", "fallback"] as const) {
    resilience.on(name, (e: unknown) => events.push(`${name} ${JSON.stringify(e)}`));
  }
  /** Everything the layer shows about itself: events, health() and debugInfo(). */
  const shown = () =>
    [...events, JSON.stringify(resilience.health()), JSON.stringify(resilience.debugInfo())].join("\n");
  return { clock, resilience, events, shown };
}

const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${String(value)}`);
    },
    (error: unknown) => error,
  );

/** An error's message, its causes' messages and its own enumerable fields, as text. */
function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    parts.push(current.message, String(current.stack ?? ""), JSON.stringify({ ...current }));
    current = current.cause;
  }
  return parts.join("\n");
}

const redirectTo =
  (location: string, code = 302): Handler =>
  (hit) => {
    hit.res.writeHead(code, { location });
    hit.res.end();
  };

/** A raw TCP server writing `answer` (bytes as given) to every connection: for answers `node:http` refuses to write. */
async function rawServer(answer: (socket: Socket) => void): Promise<{ base: string; server: Server }> {
  const server = createServer((socket) => {
    socket.on("error", () => {});
    socket.once("data", () => answer(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  return { base: `http://127.0.0.1:${port}`, server };
}

// ---------------------------------------------------------------------------

describe("a redirect that carries credentials in its Location", () => {
  /*
   * Was a DEFECT, fixed: the follower refuses a Location with userinfo (a
   * TypeError that does not quote it), and redactUrlsIn cuts userinfo too.
   * SECURITY.md, "No secret in events, errors, health() or
   * debugInfo()": "URLs lose their userinfo, query string and fragment ...
   * before they reach any of them; a URL with `user:pass@` is refused at
   * once". redact-url.ts says "Userinfo needs no cut: a URL with user:pass@
   * is refused before it reaches the platform" - true of the caller's URL,
   * not of a redirect's Location. nextHop() accepts an http(s) Location with
   * userinfo (the Fetch standard makes it a network error) and hands it to the
   * platform, whose TypeError reads "Request cannot be constructed from a URL
   * that includes credentials: http://user:sk-live-...@127.0.0.1:.../"; the
   * call rejects with a RetryExhaustedError whose message quotes it
   * (redactUrlsIn cuts only queries and fragments).
   * Repro: an upstream answering `302 Location: http://user:SECRET@<same host>/x`;
   * `await resilience.fetch(url)` rejects with SECRET in `error.message`.
   */
  it("rejects without quoting the Location's user:pass in the error message", async () => {
    P.on(redirectTo(`http://user:${SECRET}@${P.host}/next`));
    const { clock, resilience } = layer({ retry: false });
    const error = await clock.run(rejection(resilience.fetch(`${P.base}/start`)));
    expect(P.hits).toHaveLength(1);
    expect((error as Error).message).not.toContain(SECRET);
    expect((error as Error).message).toContain("leads to a URL with credentials");
  });

  it("refuses a Location with a user name alone, or a password alone, the same way", async () => {
    for (const userinfo of [`${SECRET}@`, `:${SECRET}@`]) {
      P.reset();
      P.on(redirectTo(`http://${userinfo}${P.host}/next`));
      const { clock, resilience } = layer({ retry: false });
      const error = await clock.run(rejection(resilience.fetch(`${P.base}/start`)));
      expect((error as Error).message).toContain("leads to a URL with credentials");
      expect((error as Error).message).not.toContain(SECRET);
      expect(P.hits).toHaveLength(1);
    }
  });

  it("shows the Location's user:pass in no event, health() or debugInfo()", async () => {
    P.on(redirectTo(`http://user:${SECRET}@${P.host}/next`));
    const { clock, resilience, shown } = layer({ retry: false });
    await clock.run(rejection(resilience.fetch(`${P.base}/start`)));
    expect(shown()).not.toContain(SECRET);
  });
});

describe("a caller's URL whose userinfo the URL parser refuses", () => {
  /*
   * Was a DEFECT, fixed: text no parser reads loses everything up to its last
   * "@". redact-url.ts: "Works on text that does not parse as a URL too,
   * so an invalid URL's error message cannot leak them either"; SECURITY.md:
   * "No secret in ... errors". A base64 key (which may hold "/", "+", "=")
   * written as userinfo makes the URL invalid: the parser reads the text
   * before the "/" as host and port. redactUrl() looks for "@" only before
   * the first slash, finds none, and the TypeError message quotes the whole
   * URL, key and all. The same with a "?" or "#" in the password: the text
   * before it ("user:pa") stays.
   * Repro: `resilience.fetch("https://user:abc/SECRET@api.example/v1")`
   * rejects with `invalid URL "https://user:abc/SECRET@api.example/v1"`.
   */
  it("does not quote a key holding a slash in the invalid-URL TypeError", async () => {
    const { resilience } = layer();
    const error = await rejection(resilience.fetch(`https://apikey:abc/${SECRET}@api.example/v1`));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).not.toContain(SECRET);
  });

  it("does not quote the part of a key before a '?' in the invalid-URL TypeError", async () => {
    const { resilience } = layer();
    const error = await rejection(resilience.fetch(`https://apikey:${SECRET}?x@api.example/v1`));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).not.toContain(SECRET);
  });

  it("refuses odd spellings of userinfo at once, without the key in the message", async () => {
    const { resilience, shown } = layer();
    for (const url of [
      `http://${SECRET}@${P.host}/x`,
      `HTTP://${SECRET}@${P.host}/x`,
      `http:\\\\${SECRET}@${P.host}/x`,
      `http:${SECRET}@${P.host}/x`,
      `http:/${SECRET}:@${P.host}/x`,
      `http://${encodeURIComponent(SECRET)}%40x@${P.host}/x`,
      `http://u:${SECRET}@@${P.host}/x`,
      `http://\t${SECRET}@${P.host}/x`,
    ]) {
      const error = await rejection(resilience.fetch(url));
      expect([url, error instanceof TypeError]).toEqual([url, true]);
      expect([url, (error as Error).message]).not.toEqual([url, expect.stringContaining(SECRET)]);
    }
    expect(P.hits).toHaveLength(0);
    expect(shown()).not.toContain(SECRET);
  });
});

describe("keys in the query, fragment and a Request, through redirects and chains", () => {
  it("keeps ?api_key=, ?token=, a fragment and a percent-encoded key out of events, health and debugInfo", async () => {
    // Every answer a failure, so each call lands in debugInfo().recentErrors.
    P.on((hit) => {
      hit.res.writeHead(503, { "retry-after": "0" });
      hit.res.end(`echo ${hit.path}`);
    });
    const { clock, resilience, shown } = layer({ retry: { maxAttempts: 2 } });
    for (const url of [
      `${P.base}/v1?api_key=${SECRET}`,
      `${P.base}/v1?a=1&token=${SECRET}#frag`,
      `${P.base}/v1#access_token=${SECRET}`,
      `${P.base}/v1?k=${encodeURIComponent(`${SECRET}/+=`)}`,
      `${P.base.toUpperCase().replace("HTTP", "HTTP")}/v1?API_KEY=${SECRET}`,
    ]) {
      const res = await clock.run(resilience.fetch(url));
      expect(res.status).toBe(503);
      await res.body?.cancel();
    }
    const req = new Request(`${P.base}/r?api_key=${SECRET}`, {
      method: "POST",
      body: "{}",
      headers: { authorization: `Bearer ${SECRET}` },
    });
    const res = await clock.run(resilience.fetch(req));
    await res.body?.cancel();
    expect(shown()).not.toContain(SECRET);
  });

  it("keeps a key of a redirect chain's queries out of events and the 21-hop error", async () => {
    P.on((hit) => redirectTo(`/hop${hit.n}?token=${SECRET}-${hit.n}`, 307)(hit));
    const { clock, resilience, shown, events } = layer({ retry: false });
    const error = await clock.run(rejection(resilience.fetch(`${P.base}/start?api_key=${SECRET}`)));
    expect((error as Error).message).toMatch(/more than 20 redirects/);
    expect(P.hits).toHaveLength(21);
    expect(events.filter((e) => e.startsWith("redirect "))).toHaveLength(20);
    expect(errorText(error)).not.toContain(SECRET);
    expect(shown()).not.toContain(SECRET);
  });

  it("refuses redirects to file:, data:, javascript:, blob: and ftp: without sending or quoting their keys", async () => {
    for (const location of [
      `file:///etc/passwd?k=${SECRET}`,
      `data:text/plain,${SECRET}`,
      `javascript:alert('${SECRET}')`,
      `blob:http://${P.host}/${SECRET}`,
      `ftp://${SECRET}@127.0.0.1/`,
      `JAVASCRIPT:${SECRET}`,
    ]) {
      P.reset();
      P.on(redirectTo(location));
      const { clock, resilience, shown } = layer({ retry: false });
      const error = await clock.run(rejection(resilience.fetch(`${P.base}/x?api_key=${SECRET}`)));
      expect([location, (error as Error).message]).toEqual([location, expect.stringMatching(/leads to a [a-z]+: URL/)]);
      expect([location, errorText(error)]).not.toEqual([location, expect.stringContaining(SECRET)]);
      expect(shown()).not.toContain(SECRET);
      expect(P.hits).toHaveLength(1);
    }
  });
});

describe("a chain's transform that writes a key into the URL", () => {
  it("refuses a transform's user:pass@ URL and keeps its query key out of errors and events", async () => {
    for (const [target, expectSent] of [
      [`http://user:${SECRET}@${Q.host}/v1/x`, false],
      [`${Q.base}/v1/x?api_key=${SECRET}#${SECRET}`, true],
    ] as const) {
      P.reset();
      Q.reset();
      P.on((hit) => {
        hit.res.writeHead(503);
        hit.res.end();
      });
      Q.on((hit) => hit.req.socket.destroy());
      const { clock, resilience, shown } = layer({
        retry: false,
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "primary", url: `${P.base}/v1` },
              { name: "spare", url: `${Q.base}/v1`, transform: (req) => ({ ...req, url: target }) },
            ],
          },
        ]),
      });
      const settled = await clock.run(
        resilience.fetch(`${P.base}/v1/x`).then(
          async (r) => `status ${r.status} ${await r.text()}`,
          (e: unknown) => errorText(e),
        ),
      );
      expect([target, settled]).not.toEqual([target, expect.stringContaining(SECRET)]);
      expect(shown()).not.toContain(SECRET);
      expect([target, Q.hits.length > 0]).toEqual([target, expectSent]);
    }
  });
});

describe("hostile redirect answers", () => {
  it("settles on a Location of 100 KB, a Location with bare CR or an empty one", async () => {
    const answers = [
      `HTTP/1.1 302 Found\r\nLocation: /${"a".repeat(100_000)}?k=${SECRET}\r\nContent-Length: 0\r\n\r\n`,
      `HTTP/1.1 302 Found\r\nLocation: /x\rSet-Cookie: s=${SECRET}\r\nContent-Length: 0\r\n\r\n`,
      "HTTP/1.1 302 Found\r\nLocation:\r\nContent-Length: 2\r\n\r\nok",
    ];
    for (const raw of answers) {
      const { base, server } = await rawServer((socket) => socket.end(raw));
      try {
        const { clock, resilience, shown } = layer({ retry: false });
        const settled = await clock.run(
          resilience.fetch(`${base}/start`).then(
            async (r) => ({ status: r.status, body: (await r.text()).length }),
            (e: unknown) => ({ error: (e as Error).message }),
          ),
        );
        expect(JSON.stringify(settled)).not.toContain(SECRET);
        expect(shown()).not.toContain(SECRET);
      } finally {
        server.close();
      }
    }
  });

  it("settles a redirect whose body never ends, dropping it after at most 64 KiB", async () => {
    let written = 0;
    P.on((hit) => {
      if (hit.path !== "/start") return void hit.res.end("landed");
      hit.res.writeHead(302, { location: "/landed" });
      const chunk = Buffer.alloc(16 * 1024, 120);
      const pump = () => {
        while (written < 4 * 1024 * 1024 && hit.res.write(chunk)) written += chunk.length;
        if (written < 4 * 1024 * 1024) hit.res.once("drain", pump);
      };
      pump();
    });
    const { clock, resilience } = layer({ retry: false });
    const res = await clock.run(resilience.fetch(`${P.base}/start`));
    expect(await res.text()).toBe("landed");
    const first = await P.nth(1);
    await first.closed; // the client hung up on the endless body
    expect(written).toBeLessThan(4 * 1024 * 1024);
  });
});

describe("hostile Retry-After values", () => {
  /** A stub host answering 503 with `retryAfter` first, then 200. */
  function retryAfterHost(retryAfter: string | string[]) {
    let n = 0;
    const fetch = async () => {
      n++;
      if (n > 1) return new Response("ok");
      const headers = new Headers();
      for (const v of [retryAfter].flat()) headers.append("retry-after", v);
      return new Response("busy", { status: 503, headers });
    };
    return { fetch, calls: () => n };
  }

  it("never sleeps past maxRetryAfter nor holds a host past 24 h, whatever the header says", async () => {
    const DAY = 86_400_000;
    for (const value of [
      "99999999999999999999999999",
      "9".repeat(400),
      "1e9",
      "-5",
      "1.5",
      " 3 ",
      "\t3\t",
      "3, 4",
      ["3", "4"],
      "Fri, 31 Dec 9999 23:59:59 GMT",
      "Thu, 01 Jan 1970 00:00:00 GMT",
      "Sat, 01 Jan 0000 00:00:00 GMT",
      "Mon, 99 Jan 2026 99:99:99 GMT",
      "Infinity",
      "NaN",
      "0x10",
      "",
      "３",
    ]) {
      const host = retryAfterHost(value);
      const { clock, resilience } = layer({ fetch: host.fetch, retry: { maxAttempts: 2, maxRetryAfter: 60_000 } });
      const started = clock.now();
      const res = await clock.run(resilience.fetch("https://hostile.example/x"));
      const waited = clock.now() - started;
      expect([value, waited <= 60_000]).toEqual([value, true]);
      const breaker = resilience.health().breakers["hostile.example"];
      if (breaker?.openUntil != null) expect([value, breaker.openUntil - started <= DAY]).toEqual([value, true]);
      expect([value, res.status === 200 || res.status === 503]).toEqual([value, true]);
      await res.body?.cancel();
    }
  });
});

describe("hostile bodies", () => {
  it("settles a retried 503 whose body never ends, and the last one is the caller's", async () => {
    let written = 0;
    P.on((hit) => {
      hit.res.writeHead(503, { "retry-after": "1" });
      const chunk = Buffer.alloc(16 * 1024, 120);
      const pump = () => {
        while (written < 8 * 1024 * 1024 && hit.res.write(chunk)) written += chunk.length;
        if (written < 8 * 1024 * 1024) hit.res.once("drain", pump);
      };
      pump();
    });
    const { clock, resilience } = layer({ retry: { maxAttempts: 2 } });
    const res = await clock.run(resilience.fetch(`${P.base}/x`));
    expect(res.status).toBe(503);
    await (await P.nth(1)).closed; // the first, retried past, was dropped
    // The caller reads its own body, bounded here.
    const reader = res.body?.getReader();
    const first = await reader?.read();
    expect(first?.done).toBe(false);
    await reader?.cancel();
    expect(written).toBeLessThan(8 * 1024 * 1024);
  });

  it("validate gives up on a 200 whose body never ends, within its bound, and the chain moves on", async () => {
    P.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/json" });
      hit.res.write('{"data":"');
      // never another byte
    });
    Q.on((hit) => {
      hit.res.writeHead(200, { "content-type": "application/json" });
      hit.res.end('{"data":"spare"}');
    });
    const { clock, resilience } = layer({
      retry: false,
      timeout: { attempt: 5_000, total: 30_000 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: `${P.base}/v1`, validate: z.object({ data: z.string() }) },
            { name: "spare", url: `${Q.base}/v1` },
          ],
        },
      ]),
    });
    const res = await clock.run(resilience.fetch(`${P.base}/v1/x`));
    expect(await res.json()).toEqual({ data: "spare" });
  });

  it("validate survives a JSON bomb (deep nesting, a 4 MB string) and an echoed key, quoting neither", async () => {
    const deep = `${"[".repeat(200_000)}${"]".repeat(200_000)}`;
    const huge = JSON.stringify({ data: 1, note: `${SECRET}${"x".repeat(4 * 1024 * 1024)}` });
    const echoed = JSON.stringify({ error: { message: `Incorrect API key provided: ${SECRET}` } });
    for (const body of [deep, huge, echoed]) {
      P.reset();
      Q.reset();
      P.on((hit) => {
        hit.res.writeHead(200, { "content-type": "application/json" });
        hit.res.end(body);
      });
      Q.on((hit) => hit.res.end('{"data":"spare"}'));
      const { clock, resilience, shown } = layer({
        retry: false,
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              { name: "primary", url: `${P.base}/v1`, validate: z.object({ data: z.string() }) },
              { name: "spare", url: `${Q.base}/v1` },
            ],
          },
        ]),
      });
      const res = await clock.run(resilience.fetch(`${P.base}/v1/x`));
      expect(await res.json()).toEqual({ data: "spare" });
      expect(shown()).not.toContain(SECRET);
    }
  });
});
