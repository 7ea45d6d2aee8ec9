import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** How a chaos upstream answers, by share of requests (the rest answer 200 with valid JSON). */
export interface ChaosMix {
  reset: number;
  hang: number;
  slow: number;
  unavailable: number;
  limited: number;
  truncated: number;
  malformed: number;
}

/**
 * A local upstream that fails in every way generation APIs do. A seeded
 * sequence picks each request's fate, so a run can be repeated.
 */
export async function startChaosServer(
  mix: ChaosMix,
  seed: number,
): Promise<{ url: string; close: () => Promise<void>; counts: Record<string, number> }> {
  let state = seed >>> 0;
  const random = () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
  const counts: Record<string, number> = {};
  const fates = Object.entries(mix) as Array<[keyof ChaosMix, number]>;
  const server: Server = createServer((req, res) => {
    req.resume();
    // Warm-up requests open the client's connections; they take no fate.
    if (req.url === "/warm") return res.writeHead(204).end();
    let r = random();
    let fate = "ok";
    for (const [name, share] of fates) {
      if (r < share) {
        fate = name;
        break;
      }
      r -= share;
    }
    counts[fate] = (counts[fate] ?? 0) + 1;
    switch (fate) {
      case "reset":
        req.socket.destroy();
        return;
      case "hang":
        return; // never answers; the client's timeout ends it
      case "slow":
        setTimeout(
          () => res.writeHead(200, { "content-type": "application/json" }).end('{"id":"slow","status":"done"}'),
          150,
        );
        return;
      case "unavailable":
        res.writeHead(503, { "retry-after": "0" }).end();
        return;
      case "limited":
        res.writeHead(429, { "retry-after": "1" }).end();
        return;
      case "truncated":
        res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
        res.write('{"id":"trunc');
        setTimeout(() => req.socket.destroy(), 5);
        return;
      case "malformed":
        res.writeHead(200, { "content-type": "application/json" }).end('{"id": "bad", "status": ');
        return;
      default:
        res.writeHead(200, { "content-type": "application/json" }).end('{"id":"ok","status":"done"}');
    }
  });
  server.keepAliveTimeout = 2_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
