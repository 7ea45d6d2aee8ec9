import { describe, expect, it } from "vitest";
import { plainInit } from "../../src/http/request/plain-init.ts";

describe("plainInit: every member fetch would read, as own fields", () => {
  it("returns a plain object (or one without prototype) as it is", () => {
    const init = { method: "POST", body: "x" };
    expect(plainInit(init)).toBe(init);
    const bare = Object.assign(Object.create(null), { method: "PUT" }) as RequestInit;
    expect(plainInit(bare)).toBe(bare);
    expect(plainInit(undefined)).toBeUndefined();
  });

  it("copies the members an init inherits, its own fields kept over them", () => {
    class JobInit {
      get method() {
        return "DELETE";
      }
      cache = "no-store" as const;
    }
    const defaults = Object.create({ method: "PATCH", keepalive: true, cf: { cacheTtl: 5 } }) as RequestInit;
    defaults.method = "POST";
    expect(plainInit(new JobInit() as RequestInit)).toEqual({ method: "DELETE", cache: "no-store" });
    // Own `method` wins; `keepalive` is inherited; a runtime extension only an own field carries.
    expect(plainInit(defaults)).toEqual({ method: "POST", keepalive: true });
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
});
