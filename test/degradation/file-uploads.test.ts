import { describe, expect, it } from "vitest";
import { degradation } from "../../src/degradation/index.ts";
import { fallback } from "../../src/fallback/index.ts";
import { createResilience } from "../../src/index.ts";
import { httpUpstream, serveDuringFile } from "../helpers/http-upstream.ts";

// At a degraded level the layer looks for JSON to rewrite. A file upload (an
// image, a video) must never be read into memory to find out: a Blob from
// an `<input type="file">` or `fs.openAsBlob` can be gigabytes.
const api = httpUpstream();
serveDuringFile(api);

/** A Blob that counts how often it is read whole (the layer's way to read one). */
class WatchedBlob extends Blob {
  wholeReads = 0;
  override arrayBuffer(): Promise<ArrayBuffer> {
    this.wholeReads++;
    return super.arrayBuffer();
  }
  override text(): Promise<string> {
    this.wholeReads++;
    return super.text();
  }
}

const json = '{"steps":50}';
const calm = { triggers: { cpuUsage: 1, memoryUsage: 1 }, browserSignals: false } as const;

function degraded() {
  const layer = createResilience({ retry: false, degradation: degradation(calm) });
  layer.degradation.setLevel("medium");
  return layer;
}

describe("a file upload at a degraded level", () => {
  it("a Blob labelled as neither JSON nor text is sent unread and unrewritten", async () => {
    const layer = degraded();
    for (const type of ["video/mp4", "image/png", "application/octet-stream"]) {
      api.reset();
      const upload = new WatchedBlob([json], { type });
      await (await layer.fetch(`${api.base}/upload`, { method: "POST", body: upload })).text();
      expect([type, upload.wholeReads, api.hits[0]?.body]).toEqual([type, 0, json]);
    }
  });

  it("an unlabelled Blob whose first bytes are no object or array is not read whole", async () => {
    const layer = degraded();
    api.reset();
    const upload = new WatchedBlob(["GIF89a", "x".repeat(10_000)]);
    await (await layer.fetch(`${api.base}/upload`, { method: "PUT", body: upload })).text();
    expect(upload.wholeReads).toBe(0);
    expect(api.hits[0]?.bytes.length).toBe(10_006);
  });

  it("an unlabelled or JSON-labelled Blob of JSON is rewritten as before", async () => {
    const layer = degraded();
    for (const type of ["", "application/json", "text/plain"]) {
      api.reset();
      await (await layer.fetch(`${api.base}/gen`, { method: "POST", body: new Blob([json], { type }) })).text();
      expect([type, api.hits[0]?.body]).toEqual([type, '{"steps":30}']);
    }
  });

  it("bytes labelled application/octet-stream are no JSON, whatever they hold", async () => {
    const layer = degraded();
    api.reset();
    const body = new TextEncoder().encode(json);
    await (
      await layer.fetch(`${api.base}/gen`, {
        method: "POST",
        body,
        headers: { "content-type": "application/octet-stream" },
      })
    ).text();
    expect(api.hits[0]?.body).toBe(json);
  });

  it("a chain's transform gets no body for an image upload, and the image goes as it was", async () => {
    const given: unknown[] = [];
    const layer = createResilience({
      retry: false,
      fallback: fallback([
        {
          name: "uploads",
          endpoints: [
            {
              name: "primary",
              url: `${api.base}/v1`,
              transform: (request) => {
                given.push(request.body);
                return request;
              },
            },
          ],
        },
      ]),
    });
    api.reset();
    const upload = new WatchedBlob([json], { type: "image/png" });
    await (await layer.fetch(`${api.base}/v1/images`, { method: "POST", body: upload })).text();
    expect(given).toEqual([undefined]);
    expect(upload.wholeReads).toBe(0);
    expect(api.hits[0]?.body).toBe(json);
  });
});
