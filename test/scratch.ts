import { createResilience } from "../src/index.ts";
for (const o of [{ timeout: 5 }, { timeout: {attempt: ""} },{ timeout: {attempt: -1} }, {retry: 3}, {breaker: 5}]) {
  try { createResilience(o as never); console.log("ok", o); } catch (e) { console.log((e as Error).message); }
}
