// @vitest-environment happy-dom

import * as lib from "@storycore/resilient-fetch";
import * as testing from "@storycore/resilient-fetch/testing/clock";
import { afterAll, beforeAll, it } from "vitest";
import { runConformance } from "./conformance.js";
import { expectConformance } from "./expect-conformance.ts";
import { startConformanceServers } from "./serve.ts";

let servers: Awaited<ReturnType<typeof startConformanceServers>>;
beforeAll(async () => {
  servers = await startConformanceServers();
});
afterAll(() => servers.close());

it("passes the conformance suite in happy-dom (its fetch, CORS preflights included)", async () => {
  const results = await runConformance({
    lib,
    testing,
    api: servers.api,
    alt: servers.alt,
    runtime: "happy-dom",
    canExit: false,
  });
  expectConformance(results, ["no timer left behind"], "platform");
}, 60_000);
