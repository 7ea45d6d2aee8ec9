import { describe, expect, it } from "vitest";
import { createResilience } from "../../src/index.ts";
import { createClient } from "../../src/ky/index.ts";

/**
 * A header value no request can carry, through the ky client: named, never
 * quoted (ky builds its `Headers` before any hook, and Node's refusal quotes
 * the value, often a credential).
 */

const NAMED =
  'ky: header "authorization" has a control character (CR, LF, NUL…) or a character above U+00FF in its value';

function client() {
  const sent: string[] = [];
  const resilience = createResilience({
    fetch: async (input, init) => {
      sent.push(new Headers(init?.headers ?? (input as Request).headers).get("authorization") ?? "");
      return new Response("ok");
    },
  });
  return { api: createClient({ prefix: "https://api.example/", resilience }), sent };
}

function thrown(run: () => unknown): Error | undefined {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  return undefined;
}

describe("the ky client and a header value no request can carry", () => {
  it.each(["Bearer SECRET\r\nx-injected: 1", "Bearer SECRET\u0000", "Bearer SE\nCRET"])(
    "a call's headers holding %j: a TypeError naming the header, the value nowhere, nothing sent",
    (value) => {
      const { api, sent } = client();
      for (const headers of [{ authorization: value }, [["authorization", value]] as [string, string][]]) {
        const error = thrown(() => api.get("x", { headers }));
        expect(error).toBeInstanceOf(TypeError);
        expect(error?.message).toBe(NAMED);
        expect(`${error?.stack}`).not.toContain("SECRET");
      }
      expect(sent).toEqual([]);
    },
  );

  it("in the headers of createClient, extend (an object or a function) and create: refused at once", () => {
    const { api } = client();
    const headers = { authorization: "Bearer SECRET\r\nx: y" };
    for (const make of [
      () => createClient({ headers }),
      () => api.extend({ headers }),
      () => api.extend(() => ({ headers })),
      () => api.create({ headers }),
    ]) {
      const error = thrown(make);
      expect(error).toBeInstanceOf(TypeError);
      expect(error?.message).toBe(NAMED);
    }
  });

  it("a value with line breaks around it is sent trimmed, as fetch sends it", async () => {
    const { api, sent } = client();
    expect(await api.get("x", { headers: { authorization: "Bearer key\n" } }).text()).toBe("ok");
    expect(
      await api
        .extend({ headers: { authorization: "\tBearer key \r\n" } })
        .get("x")
        .text(),
    ).toBe("ok");
    expect(sent).toEqual(["Bearer key", "Bearer key"]);
  });

  it("an error that is no header's is left as ky threw it", () => {
    const { api } = client();
    const error = thrown(() => api.get("x", { headers: { "bad name": "v" } }));
    expect(error).toBeInstanceOf(TypeError);
    expect(error?.message).not.toBe(NAMED);
  });
});
