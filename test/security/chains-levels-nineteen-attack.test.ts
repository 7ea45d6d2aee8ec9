/**
 * Outside-in attack on docs/degradation.md and docs/fallback.md where a level rewrite meets the bytes of a body
 * and a chain's routing: JSON bodies whose untouched bytes are no UTF-8 (bytes, a Blob, the ky client, a
 * `Request` input with headers and a signal down a chain whose primary answers 503), and byte-for-byte checks of a
 * rewrite (a 64-bit seed, a byte-order mark, an escaped key, a duplicate key, odd spacing, escapes in strings, a
 * nested `steps` no rule names), forms and text naming `steps`, and a `{ query }` rule on a repeated parameter with
 * encoded paths, `+`, a bare `flag` and a fragment, rebased onto a spare whose URL ends in `/` and carries its own
 * `?key=`, the chain reached as `https://A.test:443/v1/x/../jobs`. How: public entries only; `hostFetch` records each
 * request as the platform builds it; `TestClock`, zero retry delays, no sleeps. Not repeated: the charset label
 * (bodies-seventeen-attack 5), streams (chain-degrade-doc-attack 4), own `?key=` forms (chain-fixes-attack).
 *
 * Defects pinned (first `it.fails`, asserting the documented behaviour, on
 * the code they were written against; fixed since, so plain `it`: such
 * bytes are now sent as written, unrewritten, one of the two outcomes the
 * tests accept):
 * 1. docs/degradation.md: "Only the values a rule changes are rewritten: the other bytes of a JSON body (a leading
 *    byte-order mark included, and its kind …) … stay as you wrote them", and "JSON is UTF-8, and a rewrite would
 *    send such bytes back as UTF-8, so they are sent as you wrote them, unrewritten". A body of bytes (or a Blob)
 *    labelled `application/json` with no charset, `{"steps":50,"p":"<FF FE>"}`, is rewritten at `medium`: `steps`
 *    becomes 30 and the two bytes no rule touches arrive as EF BF BD EF BF BD (two U+FFFD). The same on a plain
 *    call with bytes (1a) or a Blob (1b), through the ky client (1c), and with a `Request` input down a chain (1d:
 *    primary and spare both get the altered bytes). Cause: `readJsonBody` (src/http/request/json-body.ts,
 *    `decode`) decodes with a non-fatal `TextDecoder("utf-8")`, which replaces malformed sequences, and
 *    `rewriteRequest` (src/degradation/rewrite-request.ts, `sameKind`) encodes the spliced text back with
 *    `TextEncoder`: bytes that are no UTF-8 are never "sent as written" (a fatal decoder, leaving the body alone
 *    when it throws, would keep them).
 *
 * Held (plain `it`): the same body labelled `charset=iso-8859-1` goes as written; a UTF-8 JSON `Request` body with
 * a BOM, a 64-bit seed, an escaped key (`st\u0065ps`), a duplicate `model` (the last, which JSON.parse reads, is
 * the one rewritten), spacing, escapes and a nested `steps` reaches primary and spare with only the two values
 * changed; the chain routes `https://A.test:443/v1/x/../jobs` to the spare's `/v2/jobs` with the query; the level
 * header and the caller's `authorization` reach the primary and not the spare's origin; `getResilienceInfo` names
 * the spare and `medium`; `FormData`, `URLSearchParams` and a non-JSON text body naming `steps` go as written; a
 * `{ query }` rule adjusts each place of a repeated parameter from its own value, leaves `q=a+b%2Fc`, `flag`, the
 * encoded path and the fragment as written, and the spare (URL ending in `/`, own `?key=S`) gets one slash and
 * its key first.
 */
import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { header, hostFetch, status } from "../helpers/host-fetch.ts";
import { FAST } from "../helpers/platform-layer.ts";

const ok = () => new Response("ok");
const enc = (s: string): number[] => [...new TextEncoder().encode(s)];

/** `{"steps":50,"p":"<0xFF 0xFE>"}`: a JSON body with two bytes that are no UTF-8 in a field no rule touches. */
const NOT_UTF8 = new Uint8Array([...enc('{"steps":50,"p":"'), 0xff, 0xfe, ...enc('"}')]);
/** The same with only the value `steps` rewritten (50 → 30 at `medium`): what the doc allows on the wire. */
const NOT_UTF8_REWRITTEN = new Uint8Array([...enc('{"steps":30,"p":"'), 0xff, 0xfe, ...enc('"}')]);

/** Bytes that arrived are the caller's, or the caller's with only the value `steps` changed. */
function expectOnlyStepsChanged(bytes: Uint8Array | null | undefined): void {
  const got = [...(bytes ?? [])];
  expect([[...NOT_UTF8], [...NOT_UTF8_REWRITTEN]]).toContainEqual(got);
}

function medium(extra: Parameters<typeof createResilience>[0] = {}) {
  const layer = createResilience({ retry: FAST, clock: new TestClock(0), degradation: degradation(), ...extra });
  layer.degradation?.setLevel("medium");
  return layer;
}

describe("a JSON body whose untouched bytes are no UTF-8, rewritten at a degraded level", () => {
  it("plain call, bytes labelled application/json: the other bytes stay as written", async () => {
    const net = hostFetch({ "a.test": ok });
    const layer = medium({ fetch: net.fetch });
    const res = await layer.fetch("https://a.test/jobs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: NOT_UTF8,
    });
    expect(getResilienceInfo(res)?.degradationLevel).toBe("medium");
    expectOnlyStepsChanged(net.log[0]?.bytes);
  });

  it("plain call, a Blob of type application/json: the other bytes stay as written", async () => {
    const net = hostFetch({ "a.test": ok });
    const layer = medium({ fetch: net.fetch });
    await layer.fetch("https://a.test/jobs", {
      method: "POST",
      body: new Blob([NOT_UTF8], { type: "application/json" }),
    });
    expectOnlyStepsChanged(net.log[0]?.bytes);
  });

  it("the ky client (a Request reaches the layer)", async () => {
    const net = hostFetch({ "a.test": ok });
    const api = createClient({ prefix: "https://a.test/v1", resilience: medium({ fetch: net.fetch }) });
    await api.post("jobs", { body: NOT_UTF8, headers: { "content-type": "application/json" } });
    expectOnlyStepsChanged(net.log[0]?.bytes);
  });

  it("a Request input down a fallback chain: the primary 503s, the spare gets the same bytes", async () => {
    const net = hostFetch({ "a.test": status(503), "b.test": ok });
    const layer = medium({
      fetch: net.fetch,
      retry: { ...FAST, maxAttempts: 1 },
      fallback: fallback([
        {
          name: "gen",
          endpoints: [
            { name: "primary", url: "https://a.test/v1" },
            { name: "spare", url: "https://b.test/v2" },
          ],
        },
      ]),
    });
    const request = new Request("https://a.test/v1/jobs", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: NOT_UTF8,
      signal: new AbortController().signal,
    });
    const res = await layer.fetch(request);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "spare", degradationLevel: "medium" });
    expect(net.log.map((r) => r.url)).toEqual(["https://a.test/v1/jobs", "https://b.test/v2/jobs"]);
    expectOnlyStepsChanged(net.log[0]?.bytes);
    expectOnlyStepsChanged(net.log[1]?.bytes);
  });

  it("control: the same body labelled with charset=iso-8859-1 is sent as written", async () => {
    const net = hostFetch({ "a.test": ok });
    const layer = medium({ fetch: net.fetch });
    await layer.fetch("https://a.test/jobs", {
      method: "POST",
      headers: { "content-type": "application/json; charset=iso-8859-1" },
      body: NOT_UTF8,
    });
    expect([...(net.log[0]?.bytes ?? [])]).toEqual([...NOT_UTF8]);
  });
});

describe("held: rewrites by level on a chain, a Request input, forms and queries", () => {
  const chain = (first: string, spare: string) =>
    fallback([
      {
        name: "gen",
        endpoints: [
          { name: "primary", url: first },
          { name: "spare", url: spare },
        ],
      },
    ]);

  it("tricky UTF-8 JSON (64-bit seed, escaped key, duplicate key, spacing, escapes) through a Request down a chain", async () => {
    const net = hostFetch({ "a.test": status(503), "b.test": ok });
    const layer = medium({
      fetch: net.fetch,
      retry: { ...FAST, maxAttempts: 1 },
      fallback: chain("https://a.test/v1/", "https://b.test/v2"),
      degradation: degradation({ levelHeader: "x-degradation-level" }),
    });
    layer.degradation?.setLevel("medium");
    const body =
      '\uFEFF{ "seed" : 18446744073709551615,\n\t"st\\u0065ps":50, "p":"caf\u00e9 \\ud83d\\ude00 \\"{[", "model" :"premium",' +
      ' "model":"premium", "z": [1 , {"steps":50}] }';
    const expected = body
      .replace('"st\\u0065ps":50', '"st\\u0065ps":30')
      .replace(' "model":"premium"', ' "model":"standard"');
    const request = new Request("https://A.test:443/v1/x/../jobs?seed=7", {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: "Bearer caller" },
      body,
      signal: new AbortController().signal,
    });
    const res = await layer.fetch(request);
    expect(getResilienceInfo(res)).toMatchObject({ endpoint: "spare", fromFallback: true, degradationLevel: "medium" });
    expect(net.log.map((r) => r.url)).toEqual(["https://a.test/v1/jobs?seed=7", "https://b.test/v2/jobs?seed=7"]);
    for (const r of net.log)
      expect(new TextDecoder("utf-8", { ignoreBOM: true }).decode(r.bytes ?? undefined)).toBe(expected);
    expect(header(net.log[0], "x-degradation-level")).toBe("medium");
    expect(header(net.log[0], "authorization")).toBe("Bearer caller");
    expect(header(net.log[1], "x-degradation-level")).toBeUndefined();
    expect(header(net.log[1], "authorization")).toBeUndefined();
  });

  it("FormData, URLSearchParams and a text body naming steps are sent as written", async () => {
    const net = hostFetch({ "a.test": ok });
    const layer = medium({ fetch: net.fetch });
    const form = new FormData();
    form.set("steps", "50");
    await layer.fetch("https://a.test/f", { method: "POST", body: form });
    await layer.fetch("https://a.test/u", { method: "POST", body: new URLSearchParams({ steps: "50" }) });
    await layer.fetch("https://a.test/t", { method: "POST", body: 'steps=50 {"steps":50}' });
    expect(net.log[0]?.text).toContain("\r\n\r\n50\r\n");
    expect(net.log[1]?.text).toBe("steps=50");
    expect(net.log[2]?.text).toBe('steps=50 {"steps":50}');
  });

  it("a query rule edits each place of a repeated parameter and no other byte, then the chain rebases it", async () => {
    const net = hostFetch({ "a.test": status(503), "b.test": ok });
    const layer = createResilience({
      retry: { ...FAST, maxAttempts: 1 },
      clock: new TestClock(0),
      fetch: net.fetch,
      fallback: chain("https://a.test/v1", "https://b.test/v2/?key=S"),
      degradation: degradation({
        rules: [{ match: "https://a.test/v1", params: { steps: { query: "steps" }, model: { query: "m" } } }],
      }),
    });
    layer.degradation?.setLevel("low");
    await layer.fetch("https://a.test/v1/a%2Fb/jobs?steps=50&q=a+b%2Fc&flag&steps=10&m=premium&m=other#frag");
    expect(net.log.map((r) => r.url)).toEqual([
      "https://a.test/v1/a%2Fb/jobs?steps=20&q=a+b%2Fc&flag&steps=10&m=basic&m=other#frag",
      "https://b.test/v2/a%2Fb/jobs?key=S&steps=20&q=a+b%2Fc&flag&steps=10&m=basic&m=other#frag",
    ]);
  });
});
