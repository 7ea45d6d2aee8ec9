import { type BreakerSnapshot, initialBreakerState, MAX_HOLD_MS } from "../core/breaker-snapshot.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { breakerDefaults, type ResolvedBreakerPolicy } from "../core/options/breaker-options.ts";
import { redactUrlsIn } from "../core/redact-url.ts";
import { transition } from "../policies/breaker-state.ts";
import { clampHold, fromStored } from "../stores/shared-snapshot.ts";
import type { DurableObjectStateLike } from "./bindings.ts";
import {
  fromWirePolicy,
  policySchema,
  probeSchema,
  type ReportBody,
  reportSchema,
  type Verdict,
  type WirePolicy,
} from "./do-protocol.ts";

/** Clocks closer than this are taken to agree: a hold's end is then read as the isolate sent it. */
const CLOCKS_AGREE_MS = 1_000;

const STORAGE_KEY = "snapshot";
/** The policy the last report or probe carried, stored beside the state: an evicted object's alarm applies it. */
const POLICY_KEY = "policy";

/**
 * The Durable Object behind `durableObjectStore`: one object per host, the
 * strongly consistent breaker for every isolate. It runs the same pure
 * `transition` as local breakers: batched outcomes move it, it grants at most
 * `halfOpenMaxCalls` probe leases that expire (a probe whose isolate died
 * frees its slot and counts as a failure), and an alarm moves open to
 * half-open. State is persisted on transitions and lease changes only, and
 * the policy the isolates last sent with them, or as soon as it changes
 * while an alarm is due, so that an object evicted and built again still
 * runs its alarm (with the breaker defaults when no policy was ever stored). It never calls the
 * upstream itself. Bind it in `wrangler.toml` and export it from your Worker:
 *
 * @example
 * export { BreakerStateObject } from "@storycore/resilient-fetch/cloudflare";
 */
export class BreakerStateObject {
  readonly #state: DurableObjectStateLike;
  readonly #now: () => number;
  #snapshot: BreakerSnapshot;
  #policy: WirePolicy | undefined;
  /** The policy as last stored (JSON), written again only when it changes. */
  #storedPolicy: string | undefined;

  /**
   * Workers call it with `(state, env)`. `clock` exists for simulations that
   * run many isolates on one injected clock; in Workers it is wall time.
   */
  constructor(state: DurableObjectStateLike, _env?: unknown, clock?: Clock) {
    this.#state = state;
    this.#now = () => (clock ?? systemClock).now();
    // Closed since no known time: a closed verdict of an object built again
    // (evicted while closed, nothing stored) is no news to an isolate that
    // tripped meanwhile (verdicts are ordered by `changedAt`).
    this.#snapshot = initialBreakerState(0);
    void state.blockConcurrencyWhile(async () => {
      const stored = fromStored(await state.storage.get(STORAGE_KEY));
      // Another version's hold, however long, is cut to a day from now, as an isolate cuts one it reads.
      if (stored) this.#snapshot = clampHold(stored, this.#now());
      const policy = policySchema.safeParse(await state.storage.get(POLICY_KEY));
      if (policy.success && this.#policy === undefined) {
        this.#policy = policy.data;
        this.#storedPolicy = JSON.stringify(policy.data);
      }
    });
  }

  async fetch(request: Request): Promise<Response> {
    if (request.method !== "POST") return new Response("method not allowed", { status: 405 });
    const path = new URL(request.url).pathname;
    let body: unknown;
    try {
      body = await request.json();
    } catch {
      return Response.json({ error: "body must be JSON" }, { status: 400 });
    }
    const now = this.#now();
    if (path === "/report") {
      const parsed = reportSchema.safeParse(body);
      if (!parsed.success) return Response.json({ error: "invalid report" }, { status: 400 });
      return Response.json(await this.#report(parsed.data, now));
    }
    if (path === "/probe") {
      const parsed = probeSchema.safeParse(body);
      if (!parsed.success) return Response.json({ error: "invalid probe request" }, { status: 400 });
      this.#policy = parsed.data.policy;
      return Response.json(await this.#probe(fromWirePolicy(parsed.data.policy), now));
    }
    return Response.json({ error: `unknown path ${path}` }, { status: 404 });
  }

  /** Alarms move open to half-open (idempotent: `tick` does nothing early or twice). */
  async alarm(): Promise<void> {
    const policy = this.#policy ? fromWirePolicy(this.#policy) : breakerDefaults;
    await this.#apply((s) => transition(s, { type: "tick" }, this.#now(), policy).state);
  }

  async #report(report: ReportBody, now: number): Promise<Verdict> {
    const policy = fromWirePolicy(report.policy);
    this.#policy = report.policy;
    await this.#apply((start) => {
      let s = transition(start, { type: "tick" }, now, policy).state;
      // An isolate's trip holds the object open only while it is closed: half-open, its
      // probes decide (a trip from calls made on an older closed verdict must not take
      // a probe's lease), and open, it is open already. A Retry-After hold always holds.
      const trip = report.reason !== undefined && !report.reason.startsWith("Retry-After");
      // A hold is the time left on the isolate's clock when it was sent, counted from now
      // on the object's: the two clocks need not agree. The difference seen here is the
      // clocks' and the time on the wire together; under a second the clocks are taken to
      // agree, so a report's time on the wire does not lengthen the hold others see.
      const skew = report.sentAt === undefined ? 0 : now - report.sentAt;
      const holdUntil =
        report.holdUntil === undefined || Math.abs(skew) < CLOCKS_AGREE_MS ? report.holdUntil : report.holdUntil + skew;
      if (holdUntil !== undefined && holdUntil > now && (!trip || s.state === "closed")) {
        const until = Math.min(holdUntil, now + MAX_HOLD_MS); // one isolate cannot hold a host for good
        s = transition(s, { type: "hold", until, reason: report.reason ?? "Retry-After" }, now, policy).state;
      }
      if (report.probe) {
        const input = { lease: report.probe.lease, gen: report.probe.gen };
        const { ok } = report.probe;
        s = transition(
          s,
          ok === null
            ? { type: "release", ...input }
            : ok
              ? { type: "success", ...input }
              : { type: "failure", ...input, reason: "probe failed" },
          now,
          policy,
        ).state;
      }
      // Outcomes from closed isolates only count while closed (a late batch
      // cannot re-open a recovering host twice). A batch has lost their
      // order, so failures are spread evenly among the successes: a run of
      // failures that never happened must not open the host.
      const total = report.fail + report.ok;
      for (let i = 0; i < total && s.state === "closed"; i++) {
        const failure = Math.floor(((i + 1) * report.fail) / total) > Math.floor((i * report.fail) / total);
        s = failure
          ? transition(s, { type: "failure", lease: null, gen: -1, reason: "reported failures" }, now, policy).state
          : transition(s, { type: "success", lease: null, gen: -1 }, now, policy).state;
      }
      return s;
    });
    return this.#verdict(null);
  }

  async #probe(policy: ResolvedBreakerPolicy, now: number): Promise<Verdict> {
    let lease: number | null = null;
    await this.#apply((s) => {
      const step = transition(s, { type: "request" }, now, policy);
      lease = step.admitted ? step.lease : null;
      return step.state;
    });
    // Closed: any isolate may go (lease null but granted, signalled by state).
    return this.#verdict(lease);
  }

  async #apply(change: (s: BreakerSnapshot) => BreakerSnapshot): Promise<void> {
    const before = this.#snapshot;
    const after = change(before);
    this.#snapshot = after;
    const moved = after.gen !== before.gen || after.leases.length !== before.leases.length;
    if (moved) {
      // Persist transitions (and lease counts) before answering: the output gate
      // holds the response until the write is durable.
      await this.#state.storage.put(STORAGE_KEY, after);
      if (after.state === "open" && after.openUntil !== null) await this.#state.storage.setAlarm(after.openUntil);
      const nextExpiry = after.state === "half_open" ? Math.min(...after.leases) : Number.POSITIVE_INFINITY;
      if (Number.isFinite(nextExpiry)) await this.#state.storage.setAlarm(nextExpiry);
    }
    // The thresholds go with a transition, or as soon as they change while an
    // alarm is due (open, half-open): never for a closed host's counts alone.
    const policy = JSON.stringify(this.#policy);
    if (this.#policy && policy !== this.#storedPolicy && (moved || after.state !== "closed")) {
      await this.#state.storage.put(POLICY_KEY, this.#policy);
      this.#storedPolicy = policy;
    }
  }

  #verdict(lease: number | null): Verdict {
    const s = this.#snapshot;
    // A reason stored by another version may be longer than an isolate reads (300): cut, not
    // refused; its URLs' secrets cut first, so that the cut cannot leave part of one unrecognised.
    const reason = s.reason === null ? null : redactUrlsIn(s.reason).slice(0, 300);
    return { state: s.state, gen: s.gen, openUntil: s.openUntil, reason, changedAt: s.changedAt, lease };
  }
}
