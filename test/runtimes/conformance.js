// @ts-check
import { degradation } from "@storycore/resilient-fetch/degradation";
import { fallback } from "@storycore/resilient-fetch/fallback";
/**
 * The conformance suite, in plain ES JavaScript so every runtime (and a
 * browser page) can load it as it is. It exercises the BUILT package, passed
 * in as `lib` by each host, against the conformance upstream at `api` (and a
 * second origin `alt`). Returns one result per check: pass, fail, or n/a
 * with the reason, never a silent skip.
 *
 * @param {{ lib: any, testing: any, api: string, alt: string, runtime: string, canExit: boolean }} env
 * @returns {Promise<Array<{ check: string, status: "pass" | "fail" | "n/a", detail: string }>>}
 */
export async function runConformance({ lib, testing, api, alt, runtime, canExit }) {
  const { createResilience, getResilienceInfo } = lib;
  const { TestClock } = testing;
  const id = `${runtime}-${Math.random().toString(36).slice(2, 8)}`;
  /** @type {Array<{ check: string, status: "pass" | "fail" | "n/a", detail: string }>} */
  const results = [];
  const count = async (/** @type {string} */ base, /** @type {string} */ route) =>
    await (await fetch(`${base}/__count/${id}?route=${route}`)).json();
  /** @param {string} check @param {() => Promise<string>} fn */
  const check = async (check, fn) => {
    try {
      results.push({ check, status: "pass", detail: await fn() });
    } catch (error) {
      results.push({ check, status: "fail", detail: String((error && /** @type {Error} */ (error).stack) || error) });
    }
  };
  const expect = (/** @type {boolean} */ ok, /** @type {string} */ what) => {
    if (!ok) throw new Error(what);
  };

  await check("retry with backoff: 503, 503, 200 → one 200 after 3 attempts", async () => {
    const clock = new TestClock();
    const r = createResilience({ clock });
    const res = await clock.run(r.fetch(`${api}/flaky/${id}`));
    await res.text();
    const info = getResilienceInfo(res);
    expect(res.status === 200 && info.attempts === 3, `status ${res.status}, attempts ${info.attempts}`);
    return `attempts ${info.attempts}, waited ${clock.now()} ms on the injected clock`;
  });

  await check("Retry-After: 1 honoured exactly", async () => {
    const clock = new TestClock();
    const r = createResilience({ clock });
    const res = await clock.run(r.fetch(`${api}/retry-after/${id}`));
    await res.text();
    expect(res.status === 200 && clock.now() === 1000, `status ${res.status}, waited ${clock.now()} ms`);
    return "waited 1000 ms";
  });

  await check(
    "idempotency: POST not retried on 500; retried with one stable key when idempotencyKey: true",
    async () => {
      const clock = new TestClock();
      const plain = createResilience({ clock });
      await (await clock.run(plain.fetch(`${api}/always500/${id}`, { method: "POST", body: "{}" }))).text();
      const once = await count(api, "always500");
      expect(once.n === 1, `POST without key reached the server ${once.n} times`);
      const keyed = createResilience({ clock, retry: { idempotencyKey: true } });
      await (await clock.run(keyed.fetch(`${api}/always500/${id}`, { method: "POST", body: "{}" }))).text();
      const after = await count(api, "always500");
      const keys = after.keys.slice(1);
      expect(
        after.n === 4 && keys.every((/** @type {string} */ k) => k && k === keys[0]),
        `n ${after.n}, keys ${JSON.stringify(keys)}`,
      );
      return `1 attempt without a key; 3 with key ${String(keys[0]).slice(0, 8)}…`;
    },
  );

  await check("breaker opens (no request while open) and recovers after its timeout", async () => {
    const clock = new TestClock();
    const r = createResilience({
      clock,
      retry: false,
      breaker: { failureThreshold: 2, timeout: 1000, successThreshold: 1 },
    });
    for (let i = 0; i < 2; i++) await (await r.fetch(`${api}/down/${id}`)).text();
    const blocked = await r.fetch(`${api}/down/${id}`).then(
      () => "resolved",
      (/** @type {Error} */ e) => e.name,
    );
    const seen = (await count(api, "down")).n;
    expect(blocked === "CircuitOpenError" && seen === 2, `third call ${blocked}, server saw ${seen}`);
    await fetch(`${api}/__heal/${id}?route=down`);
    await clock.advance(1000);
    const probe = await r.fetch(`${api}/down/${id}`);
    await probe.text();
    expect(probe.status === 200 && r.health().breakers[new URL(api).host].state === "closed", `probe ${probe.status}`);
    return "opened after 2 failures, probe closed it";
  });

  await check("fallback chain with credential hygiene across origins", async () => {
    const clock = new TestClock();
    const r = createResilience({
      clock,
      retry: false,
      fallback: fallback([
        {
          name: "c",
          endpoints: [
            { name: "primary", url: `${api}/always500` },
            { name: "alt", url: `${alt}/auth` },
          ],
        },
      ]),
    });
    const res = await clock.run(
      r.fetch(`${api}/always500/${id}`, { headers: { authorization: "Bearer caller-secret" } }),
    );
    const body = await res.json();
    expect(body.authorization === null && getResilienceInfo(res).endpoint === "alt", `alt saw ${body.authorization}`);
    return "served by the alternate origin, without the caller's Authorization";
  });

  await check("a cross-origin redirect never carries credentials", async () => {
    const r = createResilience({ retry: false });
    const mode = r.debugInfo().options.redirects;
    const target = encodeURIComponent(`${alt}/auth/${id}`);
    const res = await r.fetch(`${api}/redirect/${id}?to=${target}`, {
      headers: { authorization: "Bearer caller-secret", "x-api-key": "k-caller" },
    });
    const body = await res.json();
    if (mode === "library") {
      expect(
        body.authorization === null && body.apiKey === null && res.redirected,
        `followed by the library: alt saw authorization ${body.authorization}, x-api-key ${body.apiKey}`,
      );
      return "followed by the library: neither Authorization nor x-api-key reached the other origin";
    }
    // Browsers hide redirects from script; they drop Authorization themselves.
    expect(body.authorization === null, `followed by the platform: alt saw authorization ${body.authorization}`);
    return `followed by the platform: Authorization dropped by it; x-api-key ${body.apiKey === null ? "dropped" : "forwarded (the platform's choice)"}`;
  });

  await check("degradation rewrites a JSON body", async () => {
    const r = createResilience({ degradation: degradation() });
    r.degradation.setLevel("medium");
    const res = await r.fetch(`${api}/echo/${id}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ quality: 1, resolution: "1080p", steps: 50, model: "premium" }),
    });
    const sent = await res.json();
    expect(
      JSON.stringify(sent) === JSON.stringify({ quality: 0.8, resolution: "720p", steps: 30, model: "standard" }),
      JSON.stringify(sent),
    );
    return JSON.stringify(sent);
  });

  await check("a streamed response arrives chunk by chunk", async () => {
    const r = createResilience();
    const res = await r.fetch(`${api}/stream/${id}`);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    const first = decoder.decode((await reader.read()).value);
    await fetch(`${api}/__heal/${id}?route=stream`);
    let rest = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += decoder.decode(value);
    }
    expect(first === "chunk-1;" && rest === "chunk-2", `first ${JSON.stringify(first)}, rest ${JSON.stringify(rest)}`);
    return "first chunk read before the upstream sent the second";
  });

  await check("abort during backoff rejects at once with the reason", async () => {
    const r = createResilience({ retry: { maxRetryAfter: 60_000 } });
    const controller = new AbortController();
    const reason = new Error("user left");
    const started = Date.now();
    const call = r.fetch(`${api}/hold/${id}`, { signal: controller.signal });
    setTimeout(() => controller.abort(reason), 100);
    const error = await call.then(
      () => undefined,
      (/** @type {unknown} */ e) => e,
    );
    const elapsed = Date.now() - started;
    expect(error === reason && elapsed < 5_000, `rejected with ${String(error)} after ${elapsed} ms`);
    return `rejected after ${elapsed} ms (Retry-After was 30 s)`;
  });

  results.push(
    canExit
      ? {
          check: "no timer left behind",
          status: "pass",
          detail: "checked by the host: the process must exit on its own after this report",
        }
      : {
          check: "no timer left behind",
          status: "n/a",
          detail: `${runtime} has no process of its own to exit; leaks are covered by the Node, Deno and Bun runs`,
        },
  );
  return results;
}
