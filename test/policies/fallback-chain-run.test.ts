import { describe, expect, it } from "vitest";
import { FallbackChain, systemClock } from "../../src/policies/index.ts";

/** A chain of three entries that answer with their own name. */
function chainOfThree(): FallbackChain<{ id: number }, string> {
  const chain = new FallbackChain<{ id: number }, string>("three", { clock: systemClock });
  for (const name of ["a", "b", "c"]) chain.add(() => name, { name });
  return chain;
}

describe("FallbackChain.run's options", () => {
  it("hand the run's input to skip, accept and moveOn, so one set of functions serves every run", async () => {
    const input = { id: 7 };
    const seen: Array<[string, unknown]> = [];
    const result = await chainOfThree().run(input, {
      skip: (name, given) => {
        seen.push([`skip ${name}`, given]);
        return name === "a" ? "down" : undefined;
      },
      accept: (value, name, given) => {
        seen.push([`accept ${name}`, given]);
        return value === "b" ? "not good enough" : undefined;
      },
      moveOn: (_failure, given) => {
        seen.push(["moveOn", given]);
        return true;
      },
    });
    expect(result).toMatchObject({ ok: true, value: "c", name: "c" });
    expect(seen.map(([what]) => what)).toEqual(["skip a", "skip b", "accept b", "moveOn", "skip c", "accept c"]);
    for (const [, given] of seen) expect(given).toBe(input);
  });

  it("name the entry whose value was turned down last, when nothing is accepted", async () => {
    const result = await chainOfThree().run({ id: 1 }, { accept: () => "no" });
    expect(result).toEqual({ ok: false, errors: expect.any(Object), lastRejected: "c", lastRejectedBy: "c" });
    const stopped = await chainOfThree().run({ id: 2 }, { accept: () => "no", moveOn: () => false });
    expect(stopped).toMatchObject({ ok: false, lastRejected: "a", lastRejectedBy: "a" });
    const none = await chainOfThree().run({ id: 3 }, { skip: () => "down" });
    expect(none).toMatchObject({ ok: false, lastRejected: undefined, lastRejectedBy: undefined });
  });
});
