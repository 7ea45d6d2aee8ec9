/**
 * Memory, CPU and browser hints where the runtime exposes them; detected on
 * `globalThis`, never imported, so the core runs everywhere. Each reader
 * returns `undefined` when its runtime does not tell.
 */

interface ProcessLike {
  memoryUsage?: () => { rss: number };
  constrainedMemory?: () => number | undefined;
  cpuUsage?: () => { user: number; system: number };
}

interface NavigatorLike {
  connection?: { saveData?: boolean; effectiveType?: string };
  deviceMemory?: number;
  hardwareConcurrency?: number;
}

/**
 * Runs a runtime probe; a method that exists but throws (workerd's Node
 * compatibility layer has `process.cpuUsage` that throws "not implemented")
 * counts as "not exposed", never as an error of the request.
 */
function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** Memory in use as a share of what is available (0..1). */
export function readMemoryUsage(): number | undefined {
  return attempt(readMemory);
}

function readMemory(): number | undefined {
  const memory = (globalThis as { performance?: { memory?: { usedJSHeapSize: number; jsHeapSizeLimit: number } } })
    .performance?.memory;
  if (memory && memory.jsHeapSizeLimit > 0) return memory.usedJSHeapSize / memory.jsHeapSizeLimit; // Chromium
  const process = (globalThis as { process?: ProcessLike }).process;
  const limit = process?.constrainedMemory?.(); // Node >= 19: the cgroup limit, when there is one
  if (process?.memoryUsage && limit && limit > 0 && limit < Number.MAX_SAFE_INTEGER)
    return process.memoryUsage().rss / limit;
  return undefined;
}

/** A CPU meter: the share of all cores this process used since the last reading (Node, Bun, Deno). */
export function createCpuMeter(now: () => number): () => number | undefined {
  let last: { at: number; used: number } | undefined;
  let unavailable = false;
  const read = (): number | undefined => {
    const process = (globalThis as { process?: ProcessLike }).process;
    const cores = (globalThis as { navigator?: NavigatorLike }).navigator?.hardwareConcurrency;
    if (!process?.cpuUsage || !cores) return undefined;
    const usage = process.cpuUsage();
    const reading = { at: now(), used: usage.user + usage.system };
    const previous = last;
    last = reading;
    if (!previous || reading.at <= previous.at) return undefined;
    return Math.min(1, (reading.used - previous.used) / ((reading.at - previous.at) * 1000 * cores));
  };
  return () => {
    if (unavailable) return undefined;
    try {
      return read();
    } catch {
      unavailable = true; // it will not start working: stop asking
      return undefined;
    }
  };
}

/**
 * The best level index a browser's own signals allow (0 = full): Save-Data
 * or a slow connection or little device memory caps quality, whatever the
 * API's health.
 *
 * | signal | floor |
 * |---|---|
 * | `effectiveType` "slow-2g" | minimal |
 * | `effectiveType` "2g", `saveData` | low |
 * | `effectiveType` "3g", `deviceMemory` ≤ 1 GiB | medium |
 * | `deviceMemory` ≤ 2 GiB | high |
 */
export function readBrowserFloor(): number {
  const nav = (globalThis as { navigator?: NavigatorLike }).navigator;
  if (!nav) return 0;
  let floor = 0;
  const type = nav.connection?.effectiveType;
  if (type === "slow-2g") floor = 4;
  else if (type === "2g") floor = 3;
  else if (type === "3g") floor = 2;
  if (nav.connection?.saveData === true) floor = Math.max(floor, 3);
  const memory = nav.deviceMemory;
  if (typeof memory === "number") {
    if (memory <= 1) floor = Math.max(floor, 2);
    else if (memory <= 2) floor = Math.max(floor, 1);
  }
  return floor;
}
