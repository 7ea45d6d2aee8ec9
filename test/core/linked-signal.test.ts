import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { linkedSignal } from "../../src/core/linked-signal.ts";

describe("linkedSignal", () => {
  it("aborts with the reason of whichever aborts first, and once", () => {
    const parent = new AbortController();
    const own = new AbortController();
    const linked = linkedSignal(parent.signal, own.signal);
    expect(linked.aborted).toBe(false);
    own.abort("own reason");
    expect(linked.reason).toBe("own reason");
    parent.abort("parent reason");
    expect(linked.reason).toBe("own reason");

    const second = linkedSignal(new AbortController().signal, new AbortController().signal);
    const other = new AbortController();
    const third = linkedSignal(other.signal, new AbortController().signal);
    other.abort("gone");
    expect([second.aborted, third.reason]).toEqual([false, "gone"]);
  });

  it("is born aborted when either already is, with its reason", () => {
    expect(linkedSignal(AbortSignal.abort("p"), new AbortController().signal).reason).toBe("p");
    expect(linkedSignal(new AbortController().signal, AbortSignal.abort("o")).reason).toBe("o");
  });

  it("keeps one listener on a source however many signals follow it, and aborts every live one", () => {
    const parent = new AbortController();
    const followers = Array.from({ length: 500 }, () => linkedSignal(parent.signal, new AbortController().signal));
    expect(getEventListeners(parent.signal, "abort")).toHaveLength(1);
    parent.abort(new Error("shutdown"));
    expect(followers.every((s) => s.aborted && (s.reason as Error).message === "shutdown")).toBe(true);
    expect(getEventListeners(parent.signal, "abort")).toHaveLength(0);
  });

  it("keeps following after the work that made it ended (a body still being read)", () => {
    const parent = new AbortController();
    const own = new AbortController();
    const linked = linkedSignal(parent.signal, own.signal);
    // The call settled: its own controller is dropped, never aborted.
    parent.abort("late");
    expect(linked.reason).toBe("late");
  });
});
