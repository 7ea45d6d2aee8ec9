import * as lib from "@storycore/resilient-fetch";
import * as testing from "@storycore/resilient-fetch/testing/clock";
import { it } from "vitest";
import { runConformance } from "../runtimes/conformance.js";
import { expectConformance } from "../runtimes/expect-conformance.ts";

/** The conformance suite in real workerd; the upstream answers through Miniflare's outbound service. */
it("passes the conformance suite in workerd", async () => {
  const results = await runConformance({
    lib,
    testing,
    api: "http://api.conformance",
    alt: "http://alt.conformance",
    runtime: "workerd",
    canExit: false,
  });
  expectConformance(results, ["no timer left behind"]);
}, 60_000);
