import { afterEach, describe, expect, it, vi } from "vitest";
import { Emitter } from "../../src/core/events.ts";
import { type ResilienceEvents, resilienceEventNames } from "../../src/core/resilience-events.ts";
import { defaultRedirectMode, followingFetch, isAfterRedirect } from "../../src/http/send/follow-redirects.ts";
import { createResilience, type FetchLike } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";

function setup(fetch: FetchLike) {
  const clock = new TestClock(0);
  return { clock, resilience: createResilience({ clock, fetch, retry: false, redirects: "library" }) };
}

/** A transport that answers every URL with a redirect to the next `/n`, keeping each Response it gave. */
function endlessRedirects() {
  const given: Response[] = [];
  let n = 0;
  const fetch: FetchLike = async () => {
    const response = new Response(`hop ${n}`, { status: 302, headers: { location: `/${++n}` } });
    given.push(response);
    return response;
  };
  return { fetch, given };
}

describe("defaultRedirectMode", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("leaves redirects to the library where there is no page or worker scope (Node)", () => {
    expect(defaultRedirectMode()).toBe("library");
  });

  it("leaves them to the platform in a page", () => {
    vi.stubGlobal("document", {});
    expect(defaultRedirectMode()).toBe("platform");
  });

  it("leaves them to the platform in a worker (importScripts)", () => {
    vi.stubGlobal("importScripts", () => {});
    expect(defaultRedirectMode()).toBe("platform");
  });
});

describe("following redirects", () => {
  it("passes a Request asking for redirect: manual through untouched", async () => {
    const { fetch, given } = endlessRedirects();
    const { clock, resilience } = setup(fetch);
    const response = await clock.run(resilience.fetch(new Request("https://a.example/start", { redirect: "manual" })));
    expect(response.status).toBe(302);
    expect(given).toHaveLength(1);
  });

  it("follows a Request input's redirects from the Request's own URL", async () => {
    const urls: string[] = [];
    const fetch: FetchLike = async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      urls.push(url);
      return url.endsWith("/start")
        ? new Response(null, { status: 302, headers: { location: "next" } })
        : new Response("end");
    };
    const { clock, resilience } = setup(fetch);
    const response = await clock.run(resilience.fetch(new Request("https://a.example/dir/start")));
    expect(await response.text()).toBe("end");
    expect(urls).toEqual(["https://a.example/dir/start", "https://a.example/dir/next"]);
  });

  it("releases the body of every redirect it follows", async () => {
    const { fetch, given } = endlessRedirects();
    const { clock, resilience } = setup(fetch);
    await clock.run(resilience.fetch("https://a.example/start")).catch(() => {});
    expect(given).toHaveLength(21);
    expect(given.slice(0, 20).every((r) => r.body?.locked)).toBe(true);
  });

  it("releases the body of the 21st redirect too, which ends the call", async () => {
    const { fetch, given } = endlessRedirects();
    const { clock, resilience } = setup(fetch);
    const error = await clock.run(resilience.fetch("https://a.example/start")).catch((e: unknown) => e);
    expect(String(error)).toContain("more than 20 redirects");
    expect(given.at(-1)?.body?.locked).toBe(true);
  });
});

describe("the Response of a followed redirect", () => {
  it("keeps the URL the transport reported for the last hop", async () => {
    const fetch: FetchLike = async (input) => {
      if (String(input).endsWith("/start")) return new Response(null, { status: 302, headers: { location: "/end" } });
      const response = new Response("end");
      Object.defineProperty(response, "url", { value: "https://a.example/end?from=transport" });
      return response;
    };
    const { clock, resilience } = setup(fetch);
    const response = await clock.run(resilience.fetch("https://a.example/start"));
    expect(response.redirected).toBe(true);
    expect(response.url).toBe("https://a.example/end?from=transport");
  });

  it("can still have redirected and url redefined by a caller's own wrapper", async () => {
    const fetch: FetchLike = async (input) =>
      String(input).endsWith("/start")
        ? new Response(null, { status: 302, headers: { location: "/end" } })
        : new Response("end");
    const { clock, resilience } = setup(fetch);
    const response = await clock.run(resilience.fetch("https://a.example/start"));
    expect([response.redirected, response.url]).toEqual([true, "https://a.example/end"]);
    Object.defineProperty(response, "redirected", { value: false });
    Object.defineProperty(response, "url", { value: "https://cache.example/end" });
    expect([response.redirected, response.url]).toEqual([false, "https://cache.example/end"]);
  });
});

describe("the follower's own refusals count as failures after a redirect", () => {
  // The first server answered: whatever the follower then refuses, the request may have been processed.
  const emitter = new Emitter<ResilienceEvents>(resilienceEventNames);
  const redirectTo =
    (location: string, status = 302): FetchLike =>
    async () =>
      new Response(null, { status, headers: { location } });

  it.each([
    ["an invalid Location", redirectTo("http://[bad"), "has an invalid Location"],
    ["a non-http(s) target", redirectTo("ftp://files.example/x"), "leads to a ftp: URL"],
    ["a target with credentials", redirectTo("https://u:p@other.example/"), "leads to a URL with credentials"],
    ["a body sent once", redirectTo("/b", 307), "its body is larger than maxReplayBytes (4 bytes), sent once"],
    ["more than 20 hops", endlessRedirects().fetch, "more than 20 redirects"],
  ])("%s", async (_what, transport, message) => {
    const follow = followingFetch(() => transport, [], emitter, 4);
    // A 302 keeps a PUT and its body: only the 307 case carries one too large.
    const init = message.includes("sent once") ? { method: "PUT", body: "12345" } : { method: "PUT" };
    const error = await follow("https://api.example/a", init).catch((e: unknown) => e);
    expect(String(error)).toContain(message);
    expect(isAfterRedirect(error)).toBe(true);
  });
});

describe("a Request input followed through redirects", () => {
  it("keeps its own properties (cache, referrerPolicy, keepalive…) on every hop, as the platform's follower does", async () => {
    const inits: Array<RequestInit | undefined> = [];
    let n = 0;
    const fetch: FetchLike = async (_input, init) => {
      inits.push(init);
      return n++ < 2 ? new Response(null, { status: 302, headers: { location: `/hop${n}` } }) : new Response("ok");
    };
    const { clock, resilience } = setup(fetch);
    const request = new Request("https://api.example/a", {
      cache: "no-store",
      referrerPolicy: "no-referrer",
      keepalive: true,
    });
    const res = await clock.run(resilience.fetch(request));
    expect(await res.text()).toBe("ok");
    expect(inits).toHaveLength(3);
    for (const init of inits.slice(1)) {
      expect(init).toMatchObject({
        cache: "no-store",
        referrerPolicy: "no-referrer",
        keepalive: true,
        redirect: "manual",
      });
    }
  });
});
