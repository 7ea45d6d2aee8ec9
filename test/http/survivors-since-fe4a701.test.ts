/**
 * Tests written for the mutants that survived the mutation run over the
 * eighteenth session's lines (`git diff -U0 fe4a701 6a8095d -- src`, see
 * docs/mutation.md): each names the line it holds, and each was watched
 * failing with its mutant applied by hand.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { ConfigError, createResilience } from "../../src/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

const ok = () => new Response("ok");
const page = "https://a.example/page?q=1";
const full = page;

describe("follow-redirects.ts: which hosts count as trustworthy (:226)", () => {
  // https://a.example/x → http://HOST/y → http://d.example/z under no-referrer-when-downgrade: the hop to
  // HOST is given the full referrer if HOST is trustworthy (no downgrade), none if not; the hop to d
  // (http, not trustworthy) then none: from HOST's full referrer it is a downgrade too.
  it.each([
    ["app.localhost", full],
    ["127.0.0.10", full],
    ["localhost.evil.example", ""],
    ["evillocalhost", ""],
  ])("http://%s: the hop there is given %j", async (host, expected) => {
    const answers: Record<string, () => Response> = {
      "https://a.example/x": () => new Response(null, { status: 302, headers: { location: `http://${host}/y` } }),
      [`http://${host}/y`]: () => new Response(null, { status: 302, headers: { location: "http://d.example/z" } }),
      "http://d.example/z": ok,
    };
    const { fetch, sent } = recordingFetch((s) => (answers[s.url] as () => Response)());
    const resilience = createResilience({ fetch, redirects: "library" });
    await resilience.fetch("https://a.example/x", { referrer: page, referrerPolicy: "no-referrer-when-downgrade" });
    expect(sent.map((s) => s.init?.referrer)).toEqual([page, expected, ""]);
  });
});

describe("follow-redirects.ts: a referrer that is no http(s) URL (:197)", () => {
  // Until the twenty-eighth session it went to every hop as given, for the platform to judge (and undici sent
  // a `data:` one even under `no-referrer`): now it goes with the first request only.
  it("goes with the first request only (the platform's), not to the hops after a redirect", async () => {
    const answers: Record<string, () => Response> = {
      "https://a.example/x": () => new Response(null, { status: 302, headers: { location: "https://b.example/y" } }),
      "https://b.example/y": ok,
    };
    const { fetch, sent } = recordingFetch((s) => (answers[s.url] as () => Response)());
    const resilience = createResilience({ fetch, redirects: "library" });
    for (const referrer of ["ftp://a.example/x", "web+https://a.example/x"]) {
      sent.length = 0;
      await resilience.fetch("https://a.example/x", { referrer });
      expect(sent.map((s) => s.init?.referrer)).toEqual([referrer, ""]);
    }
  });
});

describe("follow-redirects.ts: a redirect's policy where no referrer is sent (:128)", () => {
  it("leaves the caller's policy for an explicit about:client referrer (the platform's own)", async () => {
    const answers: Record<string, () => Response> = {
      "https://a.example/x": () =>
        new Response(null, {
          status: 302,
          headers: { location: "https://b.example/y", "referrer-policy": "no-referrer" },
        }),
      "https://b.example/y": ok,
    };
    const { fetch, sent } = recordingFetch((s) => (answers[s.url] as () => Response)());
    const resilience = createResilience({ fetch, redirects: "library" });
    await resilience.fetch("https://a.example/x", { referrer: "about:client", referrerPolicy: "unsafe-url" });
    expect(sent.map((s) => [s.init?.referrer, s.init?.referrerPolicy])).toEqual([
      ["about:client", "unsafe-url"],
      ["about:client", "unsafe-url"],
    ]);
  });
});

describe("degradation-rules.ts: `models` a header can carry (:53)", () => {
  it("is checked when any rule, not every rule, puts the model in a header", () => {
    const make = () =>
      degradation({
        rules: [
          { match: "https://a.example/v1", params: { model: { header: "x-model" } } },
          { match: "https://b.example/v1", params: { steps: "steps" } },
        ],
        models: [["large", "small\u0001"]],
      });
    expect(make).toThrow(ConfigError);
    expect(make).toThrow(/a header can carry/);
  });
});

describe("endpoint-request.ts: a transform's refused headers and method (:108, :109, :142)", () => {
  const refused = async (transform: (req: { method: string; headers: Headers }) => object, init: RequestInit) => {
    const { fetch, sent } = recordingFetch(ok);
    const resilience = createResilience({
      fetch,
      fallback: fallback([
        { name: "gen", endpoints: [{ name: "only", url: "https://a.example/v1", transform: transform as never }] },
      ]),
    });
    const error = await resilience.fetch("https://a.example/v1/j", init).catch((e: unknown) => e);
    expect(sent).toEqual([]);
    return (error as { errors: Record<string, Error> }).errors.only as Error & { cause?: unknown };
  };

  it("headers fetch cannot send: a TypeError naming the endpoint, the platform's refusal as its cause", async () => {
    const error = await refused((req) => ({ ...req, headers: new Headers({ "x-bad": "a\u0001b" }) }), {
      method: "POST",
      body: "{}",
    });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toMatch(
      /^fallback endpoint "only": transform\(request\) returned headers fetch cannot send \(.+\)$/,
    );
    expect(error.cause).toBeInstanceOf(TypeError);
  });

  it("a method this call cannot send: the platform's refusal as its cause", async () => {
    const error = await refused((req) => ({ ...req, method: "put" }), { method: "POST", body: "{}", mode: "no-cors" });
    expect(error).toBeInstanceOf(TypeError);
    expect(error.cause).toBeInstanceOf(TypeError);
  });
});

describe("try-endpoints.ts: the key of a transform-made POST (:192)", () => {
  it("keeps the key the transform itself gave it; adds one only where it gave none", async () => {
    for (const [own, expected] of [
      ["t-1", "t-1"],
      [undefined, "added"],
    ] as const) {
      const { fetch, sent } = recordingFetch(ok);
      const resilience = createResilience({
        fetch,
        retry: { idempotencyKey: true },
        fallback: fallback([
          {
            name: "gen",
            endpoints: [
              {
                name: "only",
                url: "https://a.example/v1",
                transform: (req) => {
                  const headers = new Headers(req.headers);
                  if (own) headers.set("idempotency-key", own);
                  return { ...req, method: "POST", headers, body: { prompt: "cat" } };
                },
              },
            ],
          },
        ]),
      });
      await resilience.fetch("https://a.example/v1/j");
      const key = new Headers(sent[0]?.init?.headers).get("idempotency-key");
      expect(sent[0]?.init?.method).toBe("POST");
      expect(expected === "added" ? typeof key === "string" && key !== "" && key !== "t-1" : key === expected).toBe(
        true,
      );
    }
  });
});

describe("normalize-request.ts: a keepalive Request's body at exactly maxReplayBytes (:119)", () => {
  it("is kept for replay: a PUT answered 503 is sent again with it", async () => {
    let n = 0;
    const { fetch, sent } = recordingFetch(() => (++n === 1 ? new Response("busy", { status: 503 }) : ok()));
    const resilience = createResilience({
      fetch,
      maxReplayBytes: 4,
      retry: { initialDelay: 0, maxDelay: 0, jitter: "none" },
    });
    const response = await resilience.fetch(
      new Request("https://a.example/v1/j", { method: "PUT", body: "abcd", keepalive: true }),
    );
    expect(response.status).toBe(200);
    expect(sent).toHaveLength(2);
  });
});
