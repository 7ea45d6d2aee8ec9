import { describe, expect, it } from "vitest";
import { plainInit } from "../../src/http/request/plain-init.ts";
import { createResilience } from "../../src/index.ts";
import { TestClock } from "../../src/testing/index.ts";
import { recordingFetch } from "../helpers/recording-fetch.ts";

describe("plainInit: the caller's init read once, into an object of the call's own", () => {
  it("copies a plain object (the caller's next edit changes nothing), and leaves no init as none", () => {
    const init = { method: "POST", body: "x", cf: { cacheTtl: 5 } };
    const plain = plainInit(init);
    init.method = "PUT";
    expect(plain).not.toBe(init);
    expect(plain).toEqual({ method: "POST", body: "x", cf: init.cf });
    expect(plainInit(undefined)).toBeUndefined();
  });

  it("copies the members an init inherits or hides, its own fields kept over them", () => {
    class JobInit {
      get method() {
        return "DELETE";
      }
      cache = "no-store" as const;
    }
    const defaults = Object.create({ method: "PATCH", keepalive: true, cf: { cacheTtl: 5 } }) as RequestInit;
    defaults.method = "POST";
    const hidden = Object.defineProperty({}, "method", { value: "PUT", enumerable: false });
    expect(plainInit(new JobInit() as RequestInit)).toEqual({ method: "DELETE", cache: "no-store" });
    // Own `method` wins; `keepalive` is inherited; a runtime extension counts only as an own field.
    expect(plainInit(defaults)).toEqual({ method: "POST", keepalive: true });
    expect(plainInit(hidden)).toEqual({ method: "PUT" });
  });

  it("reads a Request given as init through its own getters", () => {
    const request = new Request("https://a.example/", { method: "DELETE", headers: { "x-a": "1" }, cache: "no-store" });
    const plain = plainInit(request as RequestInit) as RequestInit;
    expect([plain.method, new Headers(plain.headers).get("x-a"), plain.cache, plain.signal]).toEqual([
      "DELETE",
      "1",
      "no-store",
      request.signal,
    ]);
  });

  it("reads each getter once, and a getter that throws rejects the call at once, nothing sent", async () => {
    let reads = 0;
    const counted = {
      get method() {
        reads++;
        return "PUT";
      },
    };
    const { fetch, sent } = recordingFetch();
    const resilience = createResilience({ fetch, clock: new TestClock(0), redirects: "library" });
    await resilience.fetch("https://a.example/", counted);
    expect([reads, sent[0]?.init?.method]).toEqual([1, "PUT"]);
    const failing = {
      get keepalive(): boolean {
        throw new TypeError("no keepalive here");
      },
    };
    await expect(resilience.fetch("https://a.example/", failing)).rejects.toThrow("no keepalive here");
    expect(sent.length).toBe(1);
  });

  it("refuses an init that is no object, as fetch does", () => {
    expect(() => plainInit("POST" as never)).toThrow(
      new TypeError("resilience.fetch: init must be an object, got string"),
    );
  });
});
