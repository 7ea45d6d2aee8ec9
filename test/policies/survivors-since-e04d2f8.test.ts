import { describe, expect, it } from "vitest";
import type { BreakerSnapshot } from "../../src/core/breaker-snapshot.ts";
import { MAX_TIMER_MS } from "../../src/core/clock.ts";
import { breakerDefaults } from "../../src/core/options/breaker-options.ts";
import { shownName, shownValue } from "../../src/core/shown-name.ts";
import { createResilience } from "../../src/index.ts";
import { transition } from "../../src/policies/breaker-state.ts";
import { startDeadline } from "../../src/policies/deadline.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

/**
 * Tests written for the survivors of the mutation run over the lines of
 * `src` changed between e04d2f8 and 17d0817 (the twelfth to fourteenth
 * sessions; docs/mutation.md). Each is named for the line it holds and was
 * watched failing with its mutant applied.
 */

const policy = { ...breakerDefaults, failureRate: undefined, maxHosts: undefined } as never;

describe("shown-name.ts: a refused value as a message shows it", () => {
  it("names a function and a symbol by their kind, never their text (line 9)", () => {
    expect(shownName(() => "https://u:secret@host.example")).toBe("a function");
    expect(shownName(Symbol("https://u:secret@host.example"))).toBe("a symbol");
    expect(shownName({ toString: () => "x" })).toBe("an object");
    expect(shownName(null)).toBe("null");
    expect(shownName(5)).toBe("5");
    expect(shownName("plain")).toBe('"plain"');
  });

  it("quotes a plain word and names any other string by its kind (line 19)", () => {
    expect(shownValue("five, 5.0 +x_y-z")).toBe('"five, 5.0 +x_y-z"');
    expect(shownValue("https://host.example/?key=k")).toBe("a string");
    expect(shownValue(7)).toBe("7");
  });
});

describe("breaker-state.ts: a late probe's answer, its lease run out exactly now", () => {
  const closedWithFailures = (now: number): BreakerSnapshot => ({
    v: 1,
    state: "closed",
    gen: 3,
    failures: [now - 10],
    window: null,
    lastFailureTime: now - 10,
    openUntil: null,
    leases: [],
    successes: 0,
    reason: null,
    changedAt: now - 100,
  });

  it("a success whose lease ends at this very millisecond counts for nothing (line 130)", () => {
    const s = closedWithFailures(1_000);
    expect(transition(s, { type: "success", lease: 1_000, gen: 2 }, 1_000, policy).state).toBe(s);
    // A lease still running counts as any other attempt: the run of failures ends.
    expect(transition(s, { type: "success", lease: 1_001, gen: 2 }, 1_000, policy).state.failures).toEqual([]);
  });

  it("a failure whose lease ends at this very millisecond counts for nothing (line 170)", () => {
    const s = closedWithFailures(1_000);
    expect(transition(s, { type: "failure", lease: 1_000, gen: 2, reason: "late" }, 1_000, policy).state).toBe(s);
    expect(
      transition(s, { type: "failure", lease: 1_001, gen: 2, reason: "in time" }, 1_000, policy).state.failures,
    ).toEqual([990, 1_000]);
  });
});

describe("follow-redirects.ts: a Location as Node's own follower reads it", () => {
  async function hopTo(location: string): Promise<string> {
    const { fetch, sent } = recordingFetch((req) =>
      req.url === "https://api.example/a"
        ? new Response(null, { status: 302, headers: { location } })
        : new Response("done"),
    );
    const clock = new TestClock(0);
    const resilience = createResilience({ clock, fetch, retry: false, redirects: "library" });
    await clock.run(resilience.fetch("https://api.example/a"));
    return sent[1]?.url as string;
  }

  it("reads UTF-8 bytes handed as one character each (lines 237-240)", async () => {
    // "/café" sent as UTF-8: Headers hands back é as the two characters Ã ©.
    expect(await hopTo("/caf\u00c3\u00a9")).toBe("https://api.example/caf%C3%A9");
    // A byte that is no UTF-8 becomes U+FFFD, as undici's follower reads it.
    expect(await hopTo("/caf\u00e9")).toBe("https://api.example/caf%EF%BF%BD");
    // Plain ASCII is taken as it is.
    expect(await hopTo("/plain?q=1")).toBe("https://api.example/plain?q=1");
  });

  it("takes identical repeated Location headers as one, and different ones as the text they make (line 237)", async () => {
    expect(await hopTo("/same, /same")).toBe("https://api.example/same");
    expect(await hopTo("/one, /two")).toBe("https://api.example/one,%20/two");
    expect(await hopTo("/x, /x, /y")).toBe("https://api.example/x,%20/x,%20/y");
  });
});

describe("deadline.ts: an attempt timeout longer than a timer can wait (line 194)", () => {
  const DAY = 86_400_000;

  it("wakes at the timer's limit (24.8 days), goes on, and times the attempt out at its own moment", async () => {
    const clock = new TestClock(0);
    // 30 days for the attempt, 60 for the call: both past setTimeout's 2^31 - 1 ms.
    const deadline = startDeadline(clock, 0, 60 * DAY, undefined, 30 * DAY);
    const timedOutAt: number[] = [];
    deadline.timeAttempt(new AbortController(), () => timedOutAt.push(clock.now()));
    await clock.advance(MAX_TIMER_MS + 1);
    // The wake at the limit found the attempt not yet due.
    expect(timedOutAt).toEqual([]);
    await clock.advance(30 * DAY - MAX_TIMER_MS - 2);
    expect(timedOutAt).toEqual([]);
    await clock.advance(1);
    expect(timedOutAt).toEqual([30 * DAY]);
    expect(deadline.fired()).toBe(false);
    deadline.cancel();
  });
});
