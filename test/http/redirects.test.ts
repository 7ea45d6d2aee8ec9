import { HttpResponse, http } from "msw";
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, type FetchLike, type RedirectEvent, type ResilienceOptions } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { useMswServer } from "../helpers/msw.ts";
import { recordingFetch, type Sent } from "../helpers/recording-fetch.ts";

const server = useMswServer();

/** A recording transport that answers from a table of `url → Response factory` (404 elsewhere). */
function stubTransport(answers: Record<string, () => Response>) {
  return recordingFetch((sent) => answers[sent.url]?.() ?? new Response("no route", { status: 404 }));
}

const to =
  (location: string, status = 302) =>
  () =>
    new Response(null, { status, headers: { location } });
const ok = () => new Response("done");

function setup(fetch: FetchLike, options: ResilienceOptions = {}) {
  const clock = new TestClock(0);
  const resilience = createResilience({ clock, fetch, retry: false, redirects: "library", ...options });
  const events: RedirectEvent[] = [];
  resilience.on("redirect", (e) => events.push(e));
  return { clock, resilience, events };
}

const CREDENTIALS = {
  authorization: "Bearer caller-secret",
  cookie: "session=caller",
  "proxy-authorization": "Basic cA==",
  "x-api-key": "k-caller",
  "x-trace": "t-1",
};

describe("redirects followed by the library", () => {
  it("follows a hop to another host with breakers off (no breaker to ask)", async () => {
    const { fetch, sent } = stubTransport({
      "https://a.example/": to("https://b.example/next"),
      "https://b.example/next": ok,
    });
    const { clock, resilience } = setup(fetch, { breaker: false });
    const response = await clock.run(resilience.fetch("https://a.example/"));
    expect([response.status, response.url, sent.length]).toEqual([200, "https://b.example/next", 2]);
  });

  it("sends only the allowlist (and crossOriginHeaders) past the first hop to another origin, and reports names only", async () => {
    const { fetch, sent } = stubTransport({
      "https://api.example/v1/job?key=k-query": to("https://cdn.example/out.png?sig=s"),
      "https://cdn.example/out.png?sig=s": ok,
    });
    const { clock, resilience, events } = setup(fetch, { crossOriginHeaders: ["X-Trace"] });
    const res = await clock.run(resilience.fetch("https://api.example/v1/job?key=k-query", { headers: CREDENTIALS }));
    expect(await res.text()).toBe("done");
    expect(res.redirected).toBe(true);
    expect(res.url).toBe("https://cdn.example/out.png?sig=s");
    expect(sent.map((s) => s.init?.redirect)).toEqual(["manual", "manual"]);
    const crossed = (sent[1] as Sent).headers;
    for (const name of ["authorization", "cookie", "proxy-authorization", "x-api-key"]) {
      expect(crossed.get(name), name).toBeNull();
    }
    expect(crossed.get("x-trace")).toBe("t-1");
    expect(events).toEqual([
      {
        from: "https://api.example/v1/job",
        to: "https://cdn.example/out.png",
        status: 302,
        crossOrigin: true,
        dropped: ["authorization", "cookie", "proxy-authorization", "x-api-key"],
      },
    ]);
    expect(JSON.stringify(events)).not.toMatch(/secret|caller|k-query|sig=/);
  });

  it("keeps credentials on a same-origin hop", async () => {
    const { fetch, sent } = stubTransport({
      "https://api.example/a": to("/b", 301),
      "https://api.example/b": ok,
    });
    const { clock, resilience, events } = setup(fetch);
    await clock.run(resilience.fetch("https://api.example/a", { headers: CREDENTIALS }));
    expect((sent[1] as Sent).headers.get("authorization")).toBe("Bearer caller-secret");
    expect((sent[1] as Sent).headers.get("x-api-key")).toBe("k-caller");
    expect(events[0]).toMatchObject({ crossOrigin: false, dropped: [] });
  });

  it("never puts credentials back once dropped, even when a later hop returns to the first origin", async () => {
    const { fetch, sent } = stubTransport({
      "https://api.example/a": to("https://other.example/bounce"),
      "https://other.example/bounce": to("https://api.example/final"),
      "https://api.example/final": ok,
    });
    const { clock, resilience } = setup(fetch);
    await clock.run(resilience.fetch("https://api.example/a", { headers: CREDENTIALS }));
    expect(sent.map((s) => s.headers.get("authorization"))).toEqual(["Bearer caller-secret", null, null]);
  });

  it("treats a scheme change as another origin", async () => {
    const { fetch, sent } = stubTransport({
      "https://api.example/a": to("http://api.example/b"),
      "http://api.example/b": ok,
    });
    const { clock, resilience } = setup(fetch);
    await clock.run(resilience.fetch("https://api.example/a", { headers: CREDENTIALS }));
    expect((sent[1] as Sent).headers.get("authorization")).toBeNull();
  });

  it("turns a POST into a GET without its body on 301, 302 and 303, as fetch does", async () => {
    for (const status of [301, 302, 303]) {
      const { fetch, sent } = stubTransport({
        "https://api.example/jobs": to("https://api.example/jobs/7", status),
        "https://api.example/jobs/7": ok,
      });
      const { clock, resilience } = setup(fetch);
      await clock.run(
        resilience.fetch("https://api.example/jobs", {
          method: "POST",
          body: '{"prompt":"x"}',
          headers: { "content-type": "application/json", authorization: "Bearer t" },
        }),
      );
      const second = sent[1] as Sent;
      expect([status, second.method, second.body, second.headers.get("content-type")]).toEqual([
        status,
        "GET",
        null,
        null,
      ]);
      expect(second.headers.get("authorization")).toBe("Bearer t");
    }
  });

  it("turns a PUT into a GET on 303 only, and keeps method and body on 307 and 308", async () => {
    const cases: [number, string, string, string | null][] = [
      [303, "PUT", "GET", null],
      [302, "PUT", "PUT", "payload"],
      [307, "POST", "POST", "payload"],
      [308, "PATCH", "PATCH", "payload"],
    ];
    for (const [status, method, expectedMethod, expectedBody] of cases) {
      const { fetch, sent } = stubTransport({
        "https://api.example/r": to("https://api.example/r2", status),
        "https://api.example/r2": ok,
      });
      const { clock, resilience } = setup(fetch);
      await clock.run(resilience.fetch("https://api.example/r", { method, body: "payload" }));
      const second = sent[1] as Sent;
      expect([status, method, second.method, second.body]).toEqual([status, method, expectedMethod, expectedBody]);
    }
  });

  it("keeps a GET or HEAD as it is on 303, body headers included", async () => {
    for (const method of ["GET", "HEAD"]) {
      const { fetch, sent } = stubTransport({
        "https://api.example/r": to("https://api.example/r2", 303),
        "https://api.example/r2": ok,
      });
      const { clock, resilience } = setup(fetch);
      await clock.run(resilience.fetch("https://api.example/r", { method, headers: { "content-type": "text/plain" } }));
      const second = sent[1] as Sent;
      expect([second.method, second.headers.get("content-type")]).toEqual([method, "text/plain"]);
    }
  });

  it("cannot replay a stream body on 307 and says why", async () => {
    const { fetch, sent } = stubTransport({ "https://api.example/upload": to("https://api.example/u2", 307) });
    const { clock, resilience } = setup(fetch);
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode("chunk"));
        controller.close();
      },
    });
    const call = resilience.fetch("https://api.example/upload", {
      method: "POST",
      body,
      duplex: "half",
    } as RequestInit);
    await expect(clock.run(call)).rejects.toMatchObject({
      cause: { message: expect.stringMatching(/cannot follow a 307 redirect .*stream/) },
    });
    expect(sent).toHaveLength(1);
  });

  it("stops after 20 redirects with a TypeError, as fetch does", async () => {
    const answers: Record<string, () => Response> = {};
    for (let i = 0; i < 25; i++) answers[`https://loop.example/${i}`] = to(`https://loop.example/${i + 1}`);
    const { fetch, sent } = stubTransport(answers);
    const { clock, resilience } = setup(fetch);
    const error = await clock.run(resilience.fetch("https://loop.example/0")).catch((e: unknown) => e);
    // As any failure without a response (docs/retry.md): the follower's TypeError is the cause.
    expect((error as Error).name).toBe("RetryExhaustedError");
    expect((error as { cause: TypeError }).cause).toBeInstanceOf(TypeError);
    expect((error as { cause: TypeError }).cause.message).toMatch(
      /more than 20 redirects from https:\/\/loop\.example\/0/,
    );
    expect(sent).toHaveLength(21);
  });

  it("follows exactly 20 redirects", async () => {
    const answers: Record<string, () => Response> = { "https://loop.example/20": ok };
    for (let i = 0; i < 20; i++) answers[`https://loop.example/${i}`] = to(`https://loop.example/${i + 1}`);
    const { fetch, sent } = stubTransport(answers);
    const { clock, resilience } = setup(fetch);
    const res = await clock.run(resilience.fetch("https://loop.example/0"));
    expect([res.status, sent.length]).toEqual([200, 21]);
  });

  it("refuses a Location that is not an http(s) URL, or not a URL", async () => {
    for (const [location, message] of [
      ["javascript:alert(1)", /leads to a javascript: URL/],
      ["http://[bad", /invalid Location/],
    ] as const) {
      const { fetch } = stubTransport({ "https://api.example/a": to(location) });
      const { clock, resilience } = setup(fetch);
      const error = await clock.run(resilience.fetch("https://api.example/a")).catch((e: unknown) => e);
      expect((error as { cause: Error }).cause.message).toMatch(message);
    }
  });

  it("returns a 3xx without Location, or any other status, as it is", async () => {
    const { fetch, sent } = stubTransport({
      "https://api.example/a": () => new Response(null, { status: 302 }),
      "https://api.example/b": () => new Response(null, { status: 304, headers: { location: "/c" } }),
    });
    const { clock, resilience } = setup(fetch);
    const a = await clock.run(resilience.fetch("https://api.example/a"));
    const b = await clock.run(resilience.fetch("https://api.example/b"));
    expect([a.status, a.redirected, b.status, sent.length]).toEqual([302, false, 304, 2]);
  });

  it("leaves redirect: manual and redirect: error to the transport, untouched", async () => {
    const { fetch, sent } = stubTransport({ "https://api.example/a": to("https://other.example/") });
    const { clock, resilience } = setup(fetch);
    const manual = await clock.run(resilience.fetch("https://api.example/a", { redirect: "manual" }));
    expect(manual.status).toBe(302);
    await clock.run(resilience.fetch("https://api.example/a", { redirect: "error" }));
    expect(sent.map((s) => s.init?.redirect)).toEqual(["manual", "error"]);
  });

  it("follows a Request input with its own headers and method", async () => {
    const { fetch, sent } = stubTransport({
      "https://api.example/a": to("https://other.example/b", 307),
      "https://other.example/b": ok,
    });
    const { clock, resilience } = setup(fetch, { crossOriginHeaders: ["x-trace"] });
    const request = new Request("https://api.example/a", {
      method: "PUT",
      body: "from-request",
      headers: { authorization: "Bearer r", "x-trace": "t" },
    });
    await clock.run(resilience.fetch(request));
    const second = sent[1] as Sent;
    expect([second.method, second.body, second.headers.get("authorization"), second.headers.get("x-trace")]).toEqual([
      "PUT",
      "from-request",
      null,
      "t",
    ]);
  });

  it("with redirects: platform, sends one request and lets fetch follow", async () => {
    const { fetch, sent } = stubTransport({ "https://api.example/a": to("https://other.example/b") });
    const { clock, resilience } = setup(fetch, { redirects: "platform" });
    const res = await clock.run(resilience.fetch("https://api.example/a", { headers: CREDENTIALS }));
    expect([res.status, sent.length, sent[0]?.init?.redirect]).toEqual([302, 1, undefined]);
    expect(resilience.debugInfo().options.redirects).toBe("platform");
  });

  it("follows by default outside browsers, and says so in debugInfo", () => {
    expect(createResilience().debugInfo().options.redirects).toBe("library");
  });

  it("drops credentials when a fallback endpoint redirects to another origin", async () => {
    const { fetch, sent } = stubTransport({
      "https://primary.example/v1/img": () => new Response(null, { status: 503 }),
      "https://spare.example/v1/img": to("https://spare-cdn.example/img"),
      "https://spare-cdn.example/img": ok,
    });
    const { clock, resilience } = setup(fetch, {
      fallback: fallback([
        {
          name: "img",
          endpoints: [
            { name: "primary", url: "https://primary.example/v1" },
            { name: "spare", url: "https://spare.example/v1", headers: { "x-api-key": "spare-own" } },
          ],
        },
      ]),
    });
    const res = await clock.run(resilience.fetch("https://primary.example/v1/img", { headers: CREDENTIALS }));
    expect(await res.text()).toBe("done");
    const [, atSpare, atCdn] = sent as [Sent, Sent, Sent];
    expect(atSpare.headers.get("x-api-key")).toBe("spare-own");
    expect(atCdn.headers.get("x-api-key")).toBeNull();
    expect(atCdn.headers.get("authorization")).toBeNull();
  });

  it("counts the final answer against the first host's breaker", async () => {
    const { fetch } = stubTransport({
      "https://api.example/a": to("https://other.example/b"),
      "https://other.example/b": () => new Response(null, { status: 503 }),
    });
    const { clock, resilience } = setup(fetch, { breaker: { failureThreshold: 1 } });
    await clock.run(resilience.fetch("https://api.example/a"));
    expect(resilience.health().breakers["api.example"]?.state).toBe("open");
    expect(resilience.health().breakers["other.example"]).toBeUndefined();
  });
});

describe("redirects through MSW (a real fetch underneath)", () => {
  it("drops the API key on a cross-origin redirect that the platform's fetch would keep", async () => {
    const seen: (string | null)[] = [];
    server.use(
      http.get("https://api.example/v1/result", () =>
        HttpResponse.text(null, { status: 302, headers: { location: "https://storage.example/blob" } }),
      ),
      http.get("https://storage.example/blob", ({ request }) => {
        seen.push(request.headers.get("x-api-key"));
        return HttpResponse.text("blob");
      }),
    );
    const headers = { "x-api-key": "k-secret" };
    const library = createResilience({ retry: false, redirects: "library" });
    const platform = createResilience({ retry: false, redirects: "platform" });
    expect(await (await library.fetch("https://api.example/v1/result", { headers })).text()).toBe("blob");
    expect(await (await platform.fetch("https://api.example/v1/result", { headers })).text()).toBe("blob");
    // The library drops it; the platform's follower (undici) forwards a custom header.
    expect(seen).toEqual([null, "k-secret"]);
  });
});

describe("a failure at a redirect's target", () => {
  for (const [label, failure] of [
    ["a refused connection", Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } })],
    ["a thrown string", "boom"],
  ] as const) {
    it(`is the call's own failure (${label}), and a POST answered with the redirect is not sent again`, async () => {
      let sends = 0;
      const resilience = createResilience({
        redirects: "library",
        retry: { maxAttempts: 3, initialDelay: 0 },
        fetch: async () => {
          sends++;
          if (sends === 1)
            return new Response(null, { status: 303, headers: { location: "https://b.example/result" } });
          throw failure;
        },
      });
      const error = await resilience.fetch("https://a.example/jobs", { method: "POST", body: "job" }).catch((e) => e);
      expect(sends).toBe(2);
      expect((error as Error).cause).toBe(failure);
    });
  }
});

describe("a redirect's Referrer-Policy, as fetch reads it", () => {
  const hop = (policy: string | null) => {
    const answers: Record<string, () => Response> = {
      "https://a.example/x": () =>
        new Response(null, {
          status: 302,
          headers: { location: "https://b.example/y", ...(policy === null ? {} : { "referrer-policy": policy }) },
        }),
      "https://b.example/y": ok,
    };
    const { fetch, sent } = recordingFetch((s) => (answers[s.url] as () => Response)());
    return { resilience: createResilience({ fetch, redirects: "library" }), sent };
  };
  const policies = (sent: Sent[]) => sent.map((s) => new Request(s.url, s.init).referrerPolicy);
  const referrers = (sent: Sent[]) => sent.map((s) => new Request(s.url, s.init).referrer);
  const referred = { referrer: "https://page.example/a?secret=1", referrerPolicy: "unsafe-url" as const };

  it("rules the hops after it: the last policy it names, unknown tokens passed over", async () => {
    const { resilience, sent } = hop("bogus, no-referrer, origin-when-cross-origin, nonsense");
    await resilience.fetch("https://a.example/x", referred);
    // The hop's referrer is worked out under that policy and sent as it is (the platform would apply it again).
    expect(referrers(sent)).toEqual(["https://page.example/a?secret=1", "https://page.example/"]);
    expect(policies(sent)).toEqual(["unsafe-url", "unsafe-url"]);
  });

  it("sets none when its value does not parse (a quoted string, a no-break space): the policy stays", async () => {
    for (const value of ['no-referrer, "x,unsafe-url,y"', "no-referrer, \u00a0unsafe-url", "no-referrer, unsafe url"]) {
      const { resilience, sent } = hop(value);
      await resilience.fetch("https://a.example/x", { referrer: "https://page.example/a?secret=1" });
      expect([value, referrers(sent)[1]]).toEqual([value, "https://page.example/"]);
    }
    const spaced = hop(" \tno-referrer\t , , ");
    await spaced.resilience.fetch("https://a.example/x", referred);
    expect(referrers(spaced.sent)[1]).toBe("");
  });

  it("leaves the policy as it was when it names none, or when no referrer is sent", async () => {
    const none = hop("bogus");
    await none.resilience.fetch("https://a.example/x", referred);
    expect(policies(none.sent)).toEqual(["unsafe-url", "unsafe-url"]);
    const absent = hop(null);
    await absent.resilience.fetch("https://a.example/x", referred);
    expect(policies(absent.sent)).toEqual(["unsafe-url", "unsafe-url"]);
    const noReferrer = hop("no-referrer");
    await noReferrer.resilience.fetch("https://a.example/x", { referrerPolicy: "unsafe-url" });
    expect(policies(noReferrer.sent)).toEqual(["unsafe-url", "unsafe-url"]);
  });

  it("leaves it too for a Request input with the default referrer (about:client: the platform's own)", async () => {
    const { resilience, sent } = hop("no-referrer");
    await resilience.fetch(new Request("https://a.example/x", { referrerPolicy: "unsafe-url" }));
    expect(policies(sent)).toEqual(["unsafe-url", "unsafe-url"]);
  });
});

describe("the referrer each followed hop is given, worked out as fetch determines it", () => {
  // a.example/x → b.example/y (another origin) → http://c.example/z (a downgrade): each 302.
  const chain = () => {
    const answers: Record<string, () => Response> = {
      "https://a.example/x": () => new Response(null, { status: 302, headers: { location: "https://b.example/y" } }),
      "https://b.example/y": () => new Response(null, { status: 302, headers: { location: "http://c.example/z" } }),
      "http://c.example/z": ok,
    };
    const { fetch, sent } = recordingFetch((s) => (answers[s.url] as () => Response)());
    return { resilience: createResilience({ fetch, redirects: "library" }), sent };
  };
  const page = "https://user:pw@a.example/page?q=1#top";
  const full = "https://a.example/page?q=1";
  const origin = "https://a.example/";

  // Each request's referrer, the first's too, is the one its policy gives for that request's URL ("" sends
  // none), not left to the transport: undici sends the origin under `no-referrer`.
  it.each([
    // policy, the referrer given to the first request (to a, its own origin), to the hop to b, then to c
    ["unsafe-url", full, full, full],
    ["origin", origin, origin, origin],
    ["no-referrer", "", "", ""],
    ["same-origin", full, "", ""],
    ["origin-when-cross-origin", full, origin, origin],
    ["strict-origin", origin, origin, ""],
    ["no-referrer-when-downgrade", full, full, ""],
    ["strict-origin-when-cross-origin", full, origin, ""],
    ["", full, origin, ""],
  ])("under %j: %j, %j, then %j", async (policy, toA, toB, toC) => {
    const { resilience, sent } = chain();
    await resilience.fetch("https://a.example/x", { referrer: page, referrerPolicy: policy as ReferrerPolicy });
    expect(sent.map((s) => s.init?.referrer)).toEqual([toA, toB, toC]);
  });

  // a.example/x → http://c.example/y (a downgrade) → http://d.example/z.
  it.each([
    // policy, the referrer given to the first request, to the hop to c, then to d
    ["unsafe-url", full, full, full],
    ["origin", origin, origin, origin],
    ["no-referrer", "", "", ""],
    ["same-origin", full, "", ""],
    ["origin-when-cross-origin", full, origin, origin],
    ["strict-origin", origin, "", ""],
    ["no-referrer-when-downgrade", full, "", ""],
    ["strict-origin-when-cross-origin", full, "", ""],
    ["", full, "", ""],
  ])("after a downgrade, under %j: %j, %j, then %j", async (policy, toA, toC, toD) => {
    const answers: Record<string, () => Response> = {
      "https://a.example/x": () => new Response(null, { status: 302, headers: { location: "http://c.example/y" } }),
      "http://c.example/y": () => new Response(null, { status: 302, headers: { location: "http://d.example/z" } }),
      "http://d.example/z": ok,
    };
    const { fetch, sent } = recordingFetch((s) => (answers[s.url] as () => Response)());
    const resilience = createResilience({ fetch, redirects: "library" });
    await resilience.fetch("https://a.example/x", { referrer: page, referrerPolicy: policy as ReferrerPolicy });
    expect(sent.map((s) => s.init?.referrer)).toEqual([toA, toC, toD]);
  });

  it("cuts a referrer longer than 4,096 characters to its origin, as fetch does; one of 4,096 stays whole", async () => {
    const sentFor = async (referrer: string) => {
      const { resilience, sent } = chain();
      await resilience.fetch("https://a.example/x", { referrer, referrerPolicy: "unsafe-url" });
      return sent.map((s) => s.init?.referrer);
    };
    const base = "https://a.example/page?q=";
    const exact = base + "x".repeat(4096 - base.length);
    expect(exact).toHaveLength(4096);
    expect(await sentFor(exact)).toEqual([exact, exact, exact]);
    expect(await sentFor(`${exact}y`)).toEqual([origin, origin, origin]);
  });

  it("counts a loopback host as trustworthy: no downgrade from https to http://127.0.0.1", async () => {
    const answers: Record<string, () => Response> = {
      "https://a.example/x": () => new Response(null, { status: 302, headers: { location: "http://127.0.0.1:9/y" } }),
      "http://127.0.0.1:9/y": () => new Response(null, { status: 302, headers: { location: "http://localhost:9/z" } }),
      "http://localhost:9/z": ok,
    };
    const { fetch, sent } = recordingFetch((s) => (answers[s.url] as () => Response)());
    const resilience = createResilience({ fetch, redirects: "library" });
    await resilience.fetch("https://a.example/x", { referrer: page, referrerPolicy: "no-referrer-when-downgrade" });
    expect(sent.map((s) => s.init?.referrer)).toEqual([full, full, full]);
  });
});
