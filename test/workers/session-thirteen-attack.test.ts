/**
 * Session thirteen, in real workerd, through the BUILT package (run `npm run
 * build` first): the library's redirect follower (`redirects: "library"`)
 * against workerd's own follower (plain `fetch`, `redirect: "follow"`), hop
 * by hop through Miniflare's outbound service (the conformance upstream's
 * `/redirect/…?to=` route, whose Location bytes are the `to` text written
 * one byte per character: `bytes("/café")` puts the UTF-8 bytes on the
 * wire); the redirect event's `to` and the follower's errors without the
 * Location's `?key=`; and the misspelt-option `ConfigError`s of
 * createResilience, ky's and the proxy's `resilience`, fallback header names
 * and `retry(fn)` of ./policies, without a URL's key or password.
 *
 * What workerd does (probed here): `Headers.get("location")` is already
 * decoded as UTF-8 (an invalid byte becomes U+FFFD), while its own follower
 * resolves the raw bytes (an invalid byte is sent as `%E9`).
 *
 * Held: UTF-8 `/café`, `/日本` and percent-encoding mixed with raw UTF-8
 * lead both followers to the same URL; a Location with spaces and a tab,
 * with `%` not followed by hex, and an 8 KB one too; the event's `to` and
 * the invalid-Location error carry no key; every misspelt-option ConfigError
 * tried (message, path, stack) is cut, a plain name still named.
 *
 * DEFECTS (first `it.fails`, asserting the promise of deaf97d: the
 * library's follower requests the URL fetch's own follower requests; 2 is
 * fixed since, the library taking workerd's decoded text as given, and 1 is
 * an exception docs/retry.md#redirects names, its test asserting it):
 * 1. A Location byte that is not UTF-8 (a lone 0xE9): workerd's follower
 *    requests `/caf%E9`, the library `/caf%EF%BF%BD` (it only sees the
 *    runtime's U+FFFD).
 * 2. UTF-8 text whose characters are all below U+0100 and whose Latin-1
 *    bytes happen to be valid UTF-8 (`/Ã©`, `/Â©`, sent as UTF-8): workerd
 *    already decoded it, the library decodes it a second time and requests
 *    `/%C3%A9` (`/é`) where workerd requests `/%C3%83%C2%A9`.
 */
import { createResilience } from "@storycore/resilient-fetch";
import { resilientProxy } from "@storycore/resilient-fetch/cloudflare";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { createClient } from "@storycore/resilient-fetch/ky";
import { retry } from "@storycore/resilient-fetch/policies";
import { describe, expect, it } from "vitest";

const API = "http://api.conformance";
const SECRET = "sk_live_S13SECRET";
/** The UTF-8 bytes of `s`, one character per byte (what the `to` route writes on the wire). */
const bytes = (s: string) => String.fromCharCode(...new TextEncoder().encode(s));
const run = Math.random().toString(36).slice(2, 8);

/** Where workerd's follower and the library's go for a Location of `loc` (`/always500/…`: one 500, no retry). */
async function both(loc: string): Promise<{ platform: string; library: string; to: string[] }> {
  const url = `${API}/redirect/${run}?to=${encodeURIComponent(loc)}`;
  const platform = await fetch(url);
  await platform.body?.cancel();
  const layer = createResilience({ redirects: "library", retry: false });
  const to: string[] = [];
  layer.on("redirect", (event) => to.push(event.to));
  const library = await layer.fetch(url);
  await library.body?.cancel();
  return { platform: platform.url, library: library.url, to };
}

describe("the library's follower goes where workerd's goes", () => {
  it("UTF-8 /café, /日本, percent-encoding mixed with raw UTF-8; spaces and a tab, a bare %, 8 KB", async () => {
    const shapes = [
      bytes(`/always500/café-${run}`),
      bytes(`/always500/日本-${run}`),
      bytes(`/always500/caf%C3%A9/é-${run}?q=日`),
      `/always500/a b\tc-${run}`,
      `/always500/100%zz%4-${run}`,
      `/always500/${"a".repeat(8000)}-${run}`,
    ];
    for (const shape of shapes) {
      const { platform, library, to } = await both(shape);
      expect(library).toBe(platform);
      expect(to).toEqual([platform.split("?")[0]]);
    }
  });

  // docs/retry.md#redirects names this exception: workerd's Headers hand
  // the library U+FFFD for a byte that is not UTF-8, where its own follower
  // sends the byte.
  it("a Location byte that is not UTF-8 (lone 0xE9): workerd's follower sends %E9, the library U+FFFD, as documented", async () => {
    const { platform, library } = await both(`/always500/caf\u00e9-${run}`);
    expect(platform).toBe(`${API}/always500/caf%E9-${run}`);
    expect(library).toBe(`${API}/always500/caf%EF%BF%BD-${run}`);
  });

  it("UTF-8 text all below U+0100 (/Ã©, /Â©) is not decoded a second time: the library goes where workerd goes", async () => {
    for (const text of ["Ã©", "Â©"]) {
      const { platform, library } = await both(bytes(`/always500/${text}-${run}`));
      expect(platform).toBe(`${API}/always500/${encodeURI(text)}-${run}`); // holds: /%C3%83%C2%A9-…
      // Failed before the fix: the library requested /%C3%A9-… (é) and /%C2%A9-… (©), URLs no server named.
      expect(library).toBe(platform);
    }
  });

  it("the redirect event's to and the follower's errors carry no key from the Location", async () => {
    const { platform, to } = await both(`/always500/k-${run}?key=${SECRET}`);
    expect(platform).toContain(SECRET); // the request itself keeps it
    expect(to).toEqual([`${API}/always500/k-${run}`]);
    const layer = createResilience({ redirects: "library", retry: false });
    const error = await layer
      .fetch(`${API}/redirect/${run}?to=${encodeURIComponent(`http://[::1?key=${SECRET}`)}`)
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(String((error as Error).message)).toMatch(/invalid Location/);
    expect(textOf(error)).not.toContain(SECRET);
  });
});

function textOf(error: unknown): string {
  const seen: string[] = [];
  for (
    let e = error as { message?: unknown; stack?: unknown; path?: unknown; cause?: unknown } | undefined, i = 0;
    e && i < 5;
    e = e.cause as typeof e, i++
  ) {
    seen.push(String(e), String(e.message), String(e.stack), String(e.path));
  }
  return seen.join("\n");
}

describe("a misspelt option named by a URL is cut in its ConfigError", () => {
  const urls = [
    `//admin:hunter2@a.example/?key=${SECRET}`,
    `https://admin:hunter2@a.example/v1?key=${SECRET}`,
    `a.example/v1?key=${SECRET}`,
    `see https://admin:hunter2@a.example/?key=${SECRET}`,
    `\thttps://admin:hunter2@a.example/?key=${SECRET}`,
    `https:admin:hunter2@a.example/?key=${SECRET}`,
    `admin:hunter2@a.example/?key=${SECRET}`,
    `https://a.example/v1#key=${SECRET}`,
    `{"url":"https://u:hunter2@a.example/?key=${SECRET}"}`,
    `wss://admin:hunter2@a.example/?key=${SECRET}`,
    `https://admin:hunter2@bücher.example/?key=${SECRET}`,
  ];
  const makers: Record<string, (key: string) => unknown> = {
    createResilience: (key) => createResilience({ retry: { [key]: 1 } } as never),
    ky: (key) => createClient({ resilience: { breaker: { [key]: 1 } } as never }),
    proxy: (key) =>
      resilientProxy({
        routes: [{ path: "/", upstream: "https://up.example" }],
        resilience: { timeout: { [key]: 1 } } as never,
      }),
    "fallback header name": (key) =>
      fallback([{ name: "c", endpoints: [{ name: "a", url: "https://a.example/", headers: { [key]: 5 as never } }] }]),
    "retry(fn)": (key) => retry(async () => 1, { [key]: 1 } as never),
  };
  const caught = async (make: () => unknown) => {
    try {
      await make();
    } catch (error) {
      return error;
    }
    return undefined;
  };

  for (const [where, make] of Object.entries(makers)) {
    it(`${where}: no key or password, a plain name still named`, async () => {
      for (const url of urls) {
        const error = await caught(() => make(url));
        expect((error as Error).name).toBe("ConfigError");
        expect(textOf(error)).not.toContain(SECRET);
        expect(textOf(error)).not.toContain("hunter2");
      }
      const plain = await caught(() => make("maxAttempt"));
      expect((plain as Error).name).toBe("ConfigError");
      expect((plain as Error).message).toContain("maxAttempt");
      if (where === "retry(fn)") {
        expect(((await caught(() => make(urls[1] as string))) as Error).message).toBe(
          "retry: unknown option (its name not shown)",
        );
      }
    });
  }
});
