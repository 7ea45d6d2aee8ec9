/**
 * Outside-in attack on load and leaks in fallback chains: storms of 300 calls, 30 at a time, through chains of 2
 * and 3 endpoints with `validate`, hedged and not, GETs, keyless and keyed POSTs, callers aborting at random points,
 * `timeout.total` and `timeout.attempt` set, against real node:http servers answering at random with a fixed seed.
 * Docs: docs/fallback.md ("An abort, or `timeout.total` passing, rejects the call with the caller's reason or the
 * `TimeoutError` ...; that answer, like every answer not returned (a losing hedge, a body that failed `validate`),
 * is released: its body drained or cancelled"; "a POST without an `Idempotency-Key` goes to the next endpoint only
 * when it surely was not processed (429, 503, ...)"; "So does a 2xx that fails `validate`: ... the call resolves
 * with that answer as it is"; hedge "the first acceptable answer wins and the others are aborted (their upstreams
 * see the connection closed)"; `statistics()` "a run its caller aborted ... is not counted"; "`validate` reads at
 * most `maxReplayBytes` of the body, within `timeout.attempt`"); docs/retry.md ("A POST or PATCH without an
 * `Idempotency-Key` ... After a 500, a reset connection or an attempt or total timeout it is not sent again"; "the
 * layer also stops listening when a call settles, but for one listener it keeps on a signal it links a timeout or
 * a hedge to, however many calls that signal serves"; "it costs no memory per call on a signal that lives long";
 * "its retries, next endpoints and hedges keep its own `Idempotency-Key`"; "The body of a response nobody will
 * read ... is drained in the background when it is small (up to 64 KiB, within 1 s) ... and cancelled
 * otherwise"); SECURITY.md ("it must not leak a key, double-submit, or grow without bound"; row "Nothing outlives
 * its call": "every timer is cleared when its call settles, but housekeeping, under `unref`'d timers"; "a call
 * settles at its abort or timeout"); docs/health-and-events.md (`request` "fires once per call the layer started";
 * `debugInfo()` totals leave "a call its caller aborted" out).
 * How: `createResilience`, `getResilienceInfo` (root), `fallback` (./fallback); three node:http servers on
 * 127.0.0.1 counting their sockets and their open exchanges, answering per request (seeded hash of server, call
 * id and attempt) 200 JSON, 503, 500, a trickled 200, a 200 whose body stalls, no headers at all, a reset
 * mid-body, a 200 larger than `maxReplayBytes` (4 KiB) and a 200 `validate` refuses; `watchUnhandled`
 * (test/helpers/unhandled.ts); `process.getActiveResourcesInfo()` for ref'd timers; `getEventListeners` on an
 * app-wide signal given to 40% of the calls; heap after `gc` (through `v8.setFlagsFromString("--expose-gc")`)
 * over six storms on one layer and one signal, as test/security/longrun-thirty-attack.test.ts measures.
 * Paths: chain (hedged 3 endpoints, plain 2 endpoints), hedge, `validate` (pass, refuse, too large, stalled,
 * reset, trickled), keyless POST plain and on a hedged chain, keyed POST hedged, retries, `timeout.attempt`,
 * `timeout.total`, caller aborts before, during and after the call.
 *
 * Defects pinned: none.
 *
 * Held (plain `it`):
 * - Every call of the storm settles, each within `timeout.total` (900 ms) and a 2 s margin; no unhandled
 *   rejection; a caller's abort that lands before its call settled rejects it with the caller's own reason.
 * - No ref'd `Timeout` left once every call settled (drains run under unref'd timers); 1.5 s later no server-side
 *   exchange is open (losing hedges, refused and stalled bodies, dropped answers all closed or finished): only
 *   idle keep-alive sockets remain.
 * - The app-wide signal, given to some 120 calls (and 1,800 more over the memory storms), keeps at most one abort
 *   listener.
 * - A keyless POST, on the plain chain or the hedged one, reaches a server again only after a 503 (never after a
 *   500, a reset, a stall, a timeout or a 2xx `validate` refused), never gains an `Idempotency-Key`; a keyed POST
 *   carries the caller's key to every endpoint, retry and hedge.
 * - Every answer served names (`getResilienceInfo(res).endpoint`) an endpoint whose server saw that call, and
 *   carries that call's id (no answer crosses to another call).
 * - One `request` event per call; `debugInfo().totals.calls` = calls less those their caller aborted; per endpoint
 *   `statistics()` `successes` = the valid answers it served (its `calls` may exceed what its server saw: a
 *   hedge aborted before its request arrived is counted, as "all are counted" says).
 * - Heap after `gc` levels off: over six storms (1,800 calls) on one layer and one long-lived signal it rose
 *   about 2.5 MB over the first three and stayed within ±0.6 MB over the last three (bound: 1.5 MB for 900 calls).
 *
 * Not pinned (checked by hand, consistent with the docs): a GET whose endpoints all fail after a turned-down 2xx
 * resolves with the last answer given (its body as it is: a reset one fails the caller's read), and with
 * `timeout.total` passing first it rejects with the `TimeoutError` instead.
 */
import { getEventListeners, once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience, getResilienceInfo, type StandardSchemaLike } from "../../src/index.ts";
import { watchUnhandled } from "../helpers/unhandled.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const SEED = 31;
/** A float in [0, 1) from a string, FNV-1a then a mulberry32 step: the same answer mix on every run. */
function draw(key: string): number {
  let h = 0x811c9dc5 ^ SEED;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  let t = (h + 0x6d2b79f5) | 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

type Behaviour = "ok" | "s503" | "s500" | "trickle" | "stallBody" | "stallHead" | "reset" | "big" | "bad";
const MIX: Array<[Behaviour, number]> = [
  ["ok", 0.35],
  ["s503", 0.15],
  ["trickle", 0.1],
  ["stallBody", 0.06],
  ["stallHead", 0.06],
  ["reset", 0.07],
  ["big", 0.07],
  ["bad", 0.08],
  ["s500", 0.06],
];
function pick(x: number): Behaviour {
  let acc = 0;
  for (const [b, w] of MIX) {
    acc += w;
    if (x < acc) return b;
  }
  return "ok";
}

interface ServerHit {
  id: string;
  kind: string;
  method: string;
  behaviour: Behaviour;
  key: string | undefined;
}

function stormServer(name: string) {
  const hits: ServerHit[] = [];
  const sockets = new Set<Socket>();
  const busy = new Set<ServerResponse>();
  const perId = new Map<string, number>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    busy.add(res);
    const timers: NodeJS.Timeout[] = [];
    res.on("close", () => {
      busy.delete(res);
      for (const t of timers) clearTimeout(t);
    });
    req.resume();
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      const id = url.searchParams.get("id") ?? "?";
      const kind = url.pathname.split("/")[1] ?? "";
      const n = (perId.get(`${kind}:${id}`) ?? 0) + 1;
      perId.set(`${kind}:${id}`, n);
      const behaviour = pick(draw(`${name}:${kind}:${id}:${n}`));
      const key = req.headers["idempotency-key"] as string | undefined;
      hits.push({ id, kind, method: req.method ?? "", behaviour, key });
      const json = JSON.stringify({ ok: true, id, from: name });
      switch (behaviour) {
        case "ok":
          res.writeHead(200, { "content-type": "application/json" }).end(json);
          return;
        case "s503":
          res.writeHead(503, { "content-type": "text/plain" }).end("busy");
          return;
        case "s500":
          res.writeHead(500, { "content-type": "text/plain" }).end("boom");
          return;
        case "bad":
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: false, id, from: name }));
          return;
        case "big":
          res
            .writeHead(200, { "content-type": "application/json" })
            .end(JSON.stringify({ ok: true, id, from: name, pad: "x".repeat(20_000) }));
          return;
        case "trickle": {
          res.writeHead(200, { "content-type": "application/json" });
          // Marked: on a loaded machine `validate` may give up on it (timeout.attempt), valid as it is.
          const slow = JSON.stringify({ ok: true, id, from: name, trickled: true });
          const parts = slow.match(/.{1,8}/g) ?? [slow];
          let i = 0;
          const step = () => {
            if (i >= parts.length) {
              res.end();
              return;
            }
            res.write(parts[i++]);
            timers.push(setTimeout(step, 15));
          };
          step();
          return;
        }
        case "stallBody":
          res.writeHead(200, { "content-type": "application/json" });
          res.write('{"ok":tr');
          return;
        case "stallHead":
          return;
        case "reset":
          res.writeHead(200, { "content-type": "application/json", "content-length": String(json.length + 50) });
          res.write(json.slice(0, 10), () => {
            timers.push(setTimeout(() => req.socket.destroy(), 5));
          });
          return;
      }
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const self = {
    name,
    hits,
    sockets,
    busy,
    base: "",
    async start() {
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      self.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    async stop() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
  return self;
}

const servers = [stormServer("A"), stormServer("B"), stormServer("C")];
beforeAll(async () => {
  await Promise.all(servers.map((s) => s.start()));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** A Standard Schema: a JSON object whose `ok` is true. */
const Valid: StandardSchemaLike = {
  "~standard": {
    version: 1,
    vendor: "attack",
    validate: (value: unknown) =>
      typeof value === "object" && value !== null && (value as { ok?: unknown }).ok === true
        ? { value }
        : { issues: [{ message: "not ok" }] },
  },
} as StandardSchemaLike;

const [A, B, C] = servers as [
  ReturnType<typeof stormServer>,
  ReturnType<typeof stormServer>,
  ReturnType<typeof stormServer>,
];

const TOTAL = 900;

function layer() {
  return createResilience({
    timeout: { total: TOTAL, attempt: 300 },
    retry: { maxAttempts: 2, initialDelay: 5, maxDelay: 20 },
    breaker: { failureThreshold: 100_000 },
    maxReplayBytes: 4096,
    fallback: fallback([
      {
        name: "g",
        hedge: { delay: 60 },
        endpoints: [
          { name: "gA", url: `${A.base}/g`, validate: Valid },
          { name: "gB", url: `${B.base}/g`, validate: Valid },
          { name: "gC", url: `${C.base}/g`, validate: Valid },
        ],
      },
      {
        name: "p",
        endpoints: [
          { name: "pA", url: `${A.base}/p`, validate: Valid },
          { name: "pB", url: `${B.base}/p`, validate: Valid },
        ],
      },
    ]),
  });
}
type Layer = ReturnType<typeof layer>;

/** The call kinds: a GET down the hedged chain, keyless POSTs down the plain and the hedged one, a keyed POST hedged. */
type Kind = "get" | "post" | "postHedged" | "keyed";
const KINDS: Kind[] = ["get", "post", "postHedged", "keyed"];
/** The chain (and the servers' first path segment) a kind goes down. */
const chainOf = (kind: Kind): "g" | "p" => (kind === "post" ? "p" : "g");

interface Outcome {
  id: string;
  kind: Kind;
  /** From the call to its settling. */
  ms: number;
  status?: number;
  error?: unknown;
  endpoint?: string | undefined;
  /** The body as the caller read it (`undefined`: the read failed or was cut at 300 ms). */
  body?: string | undefined;
  /** Whether the caller's own signal was aborted by the time the call settled. */
  aborted: boolean;
  /** When the caller aborts, for a call with a signal of its own (else the app-wide signal, never aborted). */
  abortAt?: number | undefined;
  /** When the abort actually ran (ms from the call), which a busy event loop makes later than `abortAt`. */
  firedAt?: number | undefined;
}

/** Reads a body, cancelling it after `ms`: a body that stalls is the caller's to give up on. */
async function readBounded(res: Response, ms: number): Promise<string | undefined> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const timer = setTimeout(() => void reader.cancel().catch(() => {}), ms);
  const chunks: Uint8Array[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    return Buffer.concat(chunks).toString("utf8");
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** `calls` calls, `concurrency` at a time; 60% of callers abort at a random point in 1..900 ms. */
async function storm(r: Layer, app: AbortSignal, prefix: string, calls: number, concurrency: number) {
  const outcomes: Outcome[] = [];
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= calls) return;
      const id = `${prefix}${i}`;
      const kind = KINDS[Math.floor(draw(`kind:${id}`) * KINDS.length)] as Kind;
      const own = draw(`sig:${id}`) < 0.6;
      const controller = new AbortController();
      const abortAt = 1 + Math.floor(draw(`abort:${id}`) * 900);
      const started = performance.now();
      let firedAt: number | undefined;
      const abortTimer = own
        ? setTimeout(() => {
            firedAt = performance.now() - started;
            controller.abort(new Error(`caller ${id}`));
          }, abortAt)
        : undefined;
      const signal = own ? controller.signal : app;
      const url = `${A.base}/${chainOf(kind)}/x?id=${id}`;
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (kind === "keyed") headers["idempotency-key"] = `key-${id}`;
      const init: RequestInit =
        kind === "get" ? { signal } : { method: "POST", body: JSON.stringify({ id }), headers, signal };
      const out: Outcome = { id, kind, ms: 0, aborted: false, abortAt: own ? abortAt : undefined };
      try {
        const res = await r.fetch(url, init);
        out.ms = performance.now() - started;
        out.status = res.status;
        out.endpoint = getResilienceInfo(res)?.endpoint;
        out.body = await readBounded(res, 300);
      } catch (error) {
        out.ms = performance.now() - started;
        out.error = error;
      }
      out.aborted = controller.signal.aborted;
      out.firedAt = firedAt;
      clearTimeout(abortTimer);
      outcomes.push(out);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return outcomes;
}

const timeouts = () => process.getActiveResourcesInfo().filter((x) => x === "Timeout").length;
const busyCount = () => servers.reduce((n, s) => n + s.busy.size, 0);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const CALLS = 300;

/** One storm's outcomes, with what was measured from outside the library right after it. */
interface StormReport {
  outcomes: Outcome[];
  unhandled: unknown[];
  hung: boolean;
  timersBefore: number;
  timersAfter: number;
  busyAfter: number;
  listeners: number;
  requestEvents: number;
  totals: { calls: number; failures: number };
  stats: Record<string, { fallbacks: Record<string, { calls: number; successes: number }> }>;
  hits: Array<ServerHit & { server: string }>;
}

async function runStorm(
  prefix: string,
  r: Layer = layer(),
  app: AbortController = new AbortController(),
  settleMs = 1_500,
): Promise<StormReport> {
  for (const s of servers) s.hits.length = 0;
  let requestEvents = 0;
  const off = r.on("request", () => {
    requestEvents++;
  });
  const timersBefore = timeouts();
  let hung = false;
  const { value: outcomes, unhandled } = await watchUnhandled(async () => {
    // Every call settles: a storm that has not ended within this bound counts as hung.
    let guardTimer: NodeJS.Timeout | undefined;
    const guard = new Promise<"hung">((resolve) => {
      guardTimer = setTimeout(() => resolve("hung"), 20_000);
    });
    const winner = await Promise.race([storm(r, app.signal, prefix, CALLS, 30), guard]);
    clearTimeout(guardTimer);
    if (winner === "hung") {
      hung = true;
      return [];
    }
    return winner;
  });
  const timersAfter = timeouts();
  // Exchanges closing (a drain takes up to 1 s) are waited for up to `settleMs` and 5 s more on a busy machine.
  await sleep(settleMs);
  for (let waited = 0; busyCount() > 0 && waited < 5_000; waited += 50) await sleep(50);
  off();
  return {
    outcomes,
    unhandled,
    hung,
    timersBefore,
    timersAfter,
    busyAfter: busyCount(),
    listeners: getEventListeners(app.signal, "abort").length,
    requestEvents,
    totals: r.debugInfo().totals,
    stats: r.health().fallback as StormReport["stats"],
    hits: servers.flatMap((s) => s.hits.map((h) => ({ ...h, server: s.name }))),
  };
}

describe("a storm of 300 chained calls, 30 at a time, against real servers answering at random", () => {
  let report: StormReport;
  beforeAll(async () => {
    report = await runStorm("s1-");
  }, 30_000);

  it("the mix reached every kind of answer and every kind of outcome (the storm is no idle one)", () => {
    const behaviours = new Set(report.hits.map((h) => h.behaviour));
    expect([...behaviours].sort()).toEqual(MIX.map(([b]) => b).sort());
    const o = report.outcomes;
    expect(o.filter((x) => x.status === 200 && x.endpoint && !x.endpoint.endsWith("A")).length).toBeGreaterThan(10);
    expect(o.filter((x) => x.error !== undefined && x.aborted).length).toBeGreaterThan(5);
    expect(o.filter((x) => (x.error as Error | undefined)?.name === "FallbackExhaustedError").length).toBeGreaterThan(
      0,
    );
    expect(new Set(report.hits.map((h) => h.server)).size).toBe(3);
  });

  it("every call settles, each within timeout.total and a margin, with no unhandled rejection", () => {
    expect(report.hung).toBe(false);
    expect(report.outcomes).toHaveLength(CALLS);
    expect(report.unhandled).toEqual([]);
    // The margin is for a busy machine (CI runs test files side by side): the bound holds the total, not speed.
    const late = report.outcomes.filter((o) => o.ms > TOTAL + 2_000);
    expect(late.map((o) => [o.id, Math.round(o.ms)])).toEqual([]);
  });

  it("a caller's abort before the call settled rejects it with the caller's own reason", () => {
    const wrong = report.outcomes.filter(
      (o) =>
        // A margin for the continuation of a call that settled just before the abort ran, on a busy machine.
        o.firedAt !== undefined &&
        o.firedAt < o.ms - 250 &&
        !(o.error instanceof Error && o.error.message === `caller ${o.id}`),
    );
    expect(wrong.map((o) => [o.id, o.firedAt, Math.round(o.ms), o.status])).toEqual([]);
  });

  it("no ref'd timer is left once every call settled; within 1.5 s every server-side exchange is closed or done", () => {
    expect(report.timersAfter).toBeLessThanOrEqual(report.timersBefore);
    expect(report.busyAfter).toBe(0);
    // Whatever sockets remain open are idle keep-alive ones (none mid-exchange, above).
    expect(servers.every((s) => s.sockets.size <= 60)).toBe(true);
  });

  it("the long-lived caller signal (120-odd calls) keeps at most one abort listener", () => {
    expect(report.outcomes.filter((o) => o.abortAt === undefined).length).toBeGreaterThan(50);
    expect(report.listeners).toBeLessThanOrEqual(1);
  });

  it("a keyless POST, hedged chain or not, reaches a server again only after a 503; no key is added; no hedge", () => {
    const posts = report.outcomes.filter((o) => o.kind === "post" || o.kind === "postHedged");
    const resent: string[] = [];
    for (const o of posts) {
      const list = report.hits.filter((h) => h.id === o.id);
      if (list.slice(0, -1).some((h) => h.behaviour !== "s503"))
        resent.push(`${o.id}: ${list.map((h) => h.server + h.behaviour).join(",")}`);
      if (list.some((h) => h.key !== undefined || h.method !== "POST")) resent.push(`${o.id}: key or method`);
    }
    expect(posts.length).toBeGreaterThan(100);
    expect(resent).toEqual([]);
  });

  it("a keyed POST carries the caller's own key to every endpoint, retry and hedge", () => {
    const keyed = report.outcomes.filter((o) => o.kind === "keyed");
    const hits = report.hits.filter((h) => keyed.some((o) => o.id === h.id));
    expect(new Set(hits.map((h) => h.id)).size).toBeGreaterThan(40);
    expect(hits.filter((h) => h.key !== `key-${h.id}`)).toEqual([]);
    // Hedged and moved on: more requests than calls.
    expect(hits.length).toBeGreaterThan(keyed.length);
  });

  it("a served answer names an endpoint whose server saw this call, and carries this call's id", () => {
    const wrong: string[] = [];
    for (const o of report.outcomes) {
      if (o.status === undefined || !o.endpoint) continue;
      const server = o.endpoint.slice(1);
      if (!report.hits.some((h) => h.id === o.id && h.server === server && h.kind === chainOf(o.kind)))
        wrong.push(`${o.id} ${o.endpoint} unseen`);
      if (o.body?.startsWith("{") && o.body.endsWith("}")) {
        const parsed = JSON.parse(o.body) as { id: string; from: string };
        if (parsed.id !== o.id || parsed.from !== server) wrong.push(`${o.id} got ${parsed.id} from ${parsed.from}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("events and health agree: one request event per call, totals leave aborted calls out", () => {
    expect(report.requestEvents).toBe(CALLS);
    const aborted = report.outcomes.filter((o) => o.error !== undefined && o.aborted).length;
    expect(report.totals.calls).toBe(CALLS - aborted);
  });

  it("chain statistics agree with the servers: successes = answers served valid", () => {
    const wrong: string[] = [];
    for (const [chain, stats] of Object.entries(report.stats)) {
      for (const [name, s] of Object.entries(stats.fallbacks)) {
        const server = name.slice(1);
        // `calls` is not bounded by what a server saw: a hedge aborted before its request reached the server is
        // counted too ("all are counted", docs/fallback.md), and so is a connection that failed.
        const ids = new Set(report.hits.filter((h) => h.server === server && h.kind === chain).map((h) => h.id));
        // A success was served by its server; calls alone may all have been hedges aborted on a loaded machine.
        if (s.calls < s.successes || (s.successes > 0 && ids.size === 0))
          wrong.push(`${name}: calls ${s.calls}, its server saw ${ids.size}`);
        const mine = report.outcomes.filter((o) => o.status === 200 && o.endpoint === name);
        // Valid: `ok: true` within maxReplayBytes (a keyless POST's turned-down answer is returned as it is).
        const valid = mine.filter((o) => o.body?.includes('"ok":true') && o.body.length < 4096).length;
        // A trickled body `validate` gave up on (too slow) and the call answered with, every endpoint failed.
        const slow = mine.filter((o) => o.body?.includes('"trickled":true')).length;
        const unread = mine.filter((o) => o.body === undefined).length;
        if (s.successes < valid - slow || s.successes > valid + unread)
          wrong.push(`${name}: successes ${s.successes}, served valid ${valid} (+${unread} unread)`);
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe("memory over repeated storms on one layer and one long-lived caller signal", () => {
  it("heap after gc levels off: 900 more calls grow it by under 1.5 MB (1.7 KB a call)", async () => {
    const r = layer();
    const app = new AbortController();
    const heaps: number[] = [];
    for (const round of [0, 1, 2, 3, 4, 5]) {
      const report = await runStorm(`h${round}-`, r, app, 0);
      expect(report.outcomes).toHaveLength(CALLS);
      await collect();
      heaps.push(process.memoryUsage().heapUsed);
    }
    expect(getEventListeners(app.signal, "abort").length).toBeLessThanOrEqual(1);
    const growth = (heaps[5] as number) - (heaps[2] as number);
    expect(growth, `heaps ${heaps.map((h) => Math.round(h / 1024)).join(", ")} KiB`).toBeLessThan(1_500_000);
  }, 40_000);
});
