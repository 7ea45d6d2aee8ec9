/**
 * A redirect's later hop refused by its host's open breaker rejects with a
 * `CircuitOpenError` whose `afterRedirect` is `true`: the first host had the
 * request (docs/retry.md's error table and "Redirects"). A call refused
 * before anything was sent has no such field, so a caller can tell "nothing
 * of it was sent" from "sent, then refused at the hop".
 */
import { describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { CircuitOpenError, createResilience, isCircuitOpenError, isFallbackExhaustedError } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { hostFetch } from "../helpers/host-fetch.ts";
import { rejection } from "../helpers/settled.ts";

/** A layer whose host b is open (one 503), a redirecting to b; retries off; a chain "jobs" over a and c. */
async function withOpenB() {
  const t = hostFetch({
    "a.example": () => new Response(null, { status: 307, headers: { location: "https://b.example/x" } }),
    "b.example": () => new Response("down", { status: 503 }),
    "c.example": () => new Response("c"),
  });
  const layer = createResilience({
    clock: new TestClock(0),
    fetch: t.fetch,
    retry: false,
    breaker: { failureThreshold: 1, timeout: 60_000 },
    fallback: fallback([
      {
        name: "jobs",
        endpoints: [
          { name: "a", url: "https://a.example/v1" },
          { name: "c", url: "https://c.example/v1" },
        ],
      },
    ]),
  });
  await layer.fetch("https://b.example/open");
  t.log.length = 0;
  return { t, layer };
}

describe("CircuitOpenError.afterRedirect", () => {
  it("is true when a redirect's hop is refused, and the first host had the POST once", async () => {
    const { t, layer } = await withOpenB();
    const error = await rejection(layer.fetch("https://a.example/jobs", { method: "POST", body: "job" }));
    expect(isCircuitOpenError(error)).toBe(true);
    expect(error).toMatchObject({ key: "b.example", afterRedirect: true });
    expect(Object.keys(error as object)).toContain("afterRedirect");
    expect(t.log.map((r) => `${r.method} ${r.url}`)).toEqual(["POST https://a.example/jobs"]);
  });

  it("is absent when the call itself is refused: nothing of it was sent", async () => {
    const { t, layer } = await withOpenB();
    const error = await rejection(layer.fetch("https://b.example/y", { method: "POST", body: "job" }));
    expect(isCircuitOpenError(error)).toBe(true);
    expect((error as CircuitOpenError).afterRedirect).toBeUndefined();
    expect("afterRedirect" in (error as object)).toBe(false);
    expect(t.log).toEqual([]);
  });

  it("is true in a chain's errors for the endpoint whose redirect hop was refused", async () => {
    const { t, layer } = await withOpenB();
    const error = await rejection(layer.fetch("https://a.example/v1/jobs", { method: "POST", body: "job" }));
    // The keyless POST that reached a is not sent to c: the chain stops there.
    expect(isFallbackExhaustedError(error)).toBe(true);
    const a = (error as { errors: Record<string, unknown> }).errors.a;
    expect(isCircuitOpenError(a) && a.afterRedirect).toBe(true);
    expect(t.log.map((r) => `${r.method} ${r.url}`)).toEqual(["POST https://a.example/v1/jobs"]);
  });

  it("is set on no other error of a hop: an unreachable target's failure has none", async () => {
    const t = hostFetch({
      "a.example": () => new Response(null, { status: 307, headers: { location: "https://d.example/x" } }),
    });
    const layer = createResilience({ clock: new TestClock(0), fetch: t.fetch, retry: false });
    const error = await rejection(layer.fetch("https://a.example/x"));
    expect(isCircuitOpenError(error)).toBe(false);
    expect("afterRedirect" in (error as object)).toBe(false);
    expect("afterRedirect" in ((error as Error).cause as object)).toBe(false);
  });

  it("leaves a hop's error that cannot take the field as it is", async () => {
    // A transport (another layer, say) that rejects a hop with an error whose
    // properties cannot be defined: the call still rejects with that error's
    // kind, not with the trap's.
    const stubborn = new Proxy(new CircuitOpenError("e.example", 5), {
      defineProperty() {
        throw new Error("trap");
      },
    });
    const t = hostFetch({
      "a.example": () => new Response(null, { status: 307, headers: { location: "https://e.example/x" } }),
      "e.example": () => Promise.reject(stubborn),
    });
    const layer = createResilience({ clock: new TestClock(0), fetch: t.fetch, retry: false });
    const error = await rejection(layer.fetch("https://a.example/x"));
    expect((error as Error).message).not.toBe("trap");
    expect(JSON.stringify([String(error), String((error as Error).cause)])).not.toContain("trap");
  });

  it("is read on a CircuitOpenError only: another error with such a field is judged as it is", async () => {
    // A refused connection is surely not sent: the keyless POST goes again, whatever field its error has.
    let n = 0;
    const refused = Object.assign(new TypeError("fetch failed", { cause: { code: "ECONNREFUSED" } }), {
      afterRedirect: true,
    });
    const layer = createResilience({
      clock: new TestClock(0),
      retry: { initialDelay: 0, jitter: "none" },
      fetch: async () => {
        n++;
        if (n === 1) throw refused;
        return new Response("ok");
      },
    });
    const res = await layer.fetch("https://a.example/jobs", { method: "POST", body: "job" });
    expect(await res.text()).toBe("ok");
    expect(n).toBe(2);
  });

  it("is never set by the constructor", () => {
    expect(new CircuitOpenError("k", 0).afterRedirect).toBeUndefined();
  });
});
