/**
 * A small image-generation app on the library: a fallback chain over two
 * providers (primary, then backup), retries, a breaker per provider and
 * degradation, with the level, each breaker, a live log of what the library
 * did, and buttons that make each (fake) provider flaky, slow or down.
 * `npm run example:browser` serves it with its fake API; the provider URLs
 * can be given as `?primary=…&backup=…`.
 */
import {
  createResilience,
  getResilienceInfo,
  isCircuitOpenError,
  isFallbackExhaustedError,
  isResilienceError,
} from "@storycore/resilient-fetch";
import { degradation } from "@storycore/resilient-fetch/degradation";
import { fallback } from "@storycore/resilient-fetch/fallback";
import { drawGenerated, type Generated } from "./art.ts";

const params = new URLSearchParams(location.search);
const providers = {
  primary: params.get("primary") ?? "http://127.0.0.1:9201",
  backup: params.get("backup") ?? "http://127.0.0.1:9202",
};
const MODES = ["ok", "flaky", "slow", "down"] as const;
const LEVELS = ["full", "high", "medium", "low", "minimal"];

const resilience = createResilience({
  retry: { maxAttempts: 3, initialDelay: 300, idempotencyKey: true },
  timeout: { attempt: 4_000, total: 20_000 },
  breaker: { failureThreshold: 3, timeout: 15_000 },
  degradation: degradation({
    window: 20_000,
    minSamples: 4,
    stepInterval: 2_000,
    restoreAfter: 15_000,
    triggers: { responseTime: 1_500 },
  }),
  fallback: fallback([
    {
      name: "images",
      endpoints: [
        { name: "primary", url: `${providers.primary}/v1/images` },
        { name: "backup", url: `${providers.backup}/v1/images`, expectedQuality: 0.8 },
      ],
    },
  ]),
});

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = <K extends keyof HTMLElementTagNameMap>(tag: K, className = "", text = "") => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
};
const hostOf = (url: string) => new URL(url).host;
const nameOfHost = (host: string) =>
  (Object.keys(providers) as Array<keyof typeof providers>).find((n) => hostOf(providers[n]) === host) ?? host;

// --- the log: what the library did, newest first ------------------------------
function log(kind: string, text: string): void {
  const item = el("li", `log-${kind}`);
  item.append(el("time", "", new Date().toTimeString().slice(0, 8)), el("span", "kind", kind), el("span", "", text));
  $("log").prepend(item);
  while ($("log").children.length > 60) $("log").lastElementChild?.remove();
}
resilience.on("retry", (e) =>
  log(
    "retry",
    `${nameOfHost(e.key)}: attempt ${e.attempt} failed (${e.reason}); next in ${Math.round(e.delay)} ms${e.retryAfter ? " (Retry-After)" : ""}`,
  ),
);
resilience.on("fallback", (e) =>
  log("fallback", `${e.from} passed over (${e.reason})${e.next ? `, trying ${e.next}` : ""}`),
);
resilience.on("breaker", (e) => {
  log("breaker", `${nameOfHost(e.key)}: ${e.from} → ${e.to}${e.reason ? ` (${e.reason})` : ""}`);
  renderStatus();
});
resilience.on("degradation", (e) => {
  log("level", `${e.from} → ${e.to} (${e.reason})`);
  renderStatus();
});

// --- the side panel: level, breakers, provider modes -----------------------------
function renderStatus(): void {
  const level = resilience.degradation.currentLevel();
  $("level").textContent = level.name;
  // Five bars at full, one at minimal.
  const bars = LEVELS.length - LEVELS.indexOf(level.name);
  $("level-meter").replaceChildren(...LEVELS.map((_, i) => el("span", i < bars ? "on" : "")));
  $("level-reason").textContent = level.reason ?? "";
  const breakers = resilience.health().breakers;
  for (const [name, url] of Object.entries(providers)) {
    const state = breakers[hostOf(url)]?.state ?? "closed";
    const pill = document.querySelector<HTMLElement>(`[data-breaker="${name}"]`);
    if (pill) {
      pill.dataset.state = state;
      pill.textContent = state.replace("_", "-");
    }
  }
}

async function setMode(name: keyof typeof providers, mode: (typeof MODES)[number]): Promise<void> {
  // Controls go straight to the fake API with plain fetch: they are not traffic to protect.
  const res = await fetch(`${providers[name]}/__mode`, { method: "POST", body: JSON.stringify({ mode }) });
  if (!res.ok) return log("error", `could not set ${name} to ${mode}: ${res.status}`);
  for (const b of document.querySelectorAll<HTMLButtonElement>(`button[data-provider="${name}"]`)) {
    b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
  }
  log("api", `${name} is now ${mode}`);
}

function buildProviders(): void {
  const list = $("providers");
  for (const name of Object.keys(providers) as Array<keyof typeof providers>) {
    const row = el("li", "provider");
    const head = el("div", "provider-head");
    const pill = el("span", "pill", "closed");
    pill.dataset.breaker = name;
    pill.dataset.state = "closed";
    head.append(el("strong", "", name), el("code", "", hostOf(providers[name])), pill);
    const modes = el("div", "modes");
    for (const mode of MODES) {
      const button = el("button", "", mode);
      button.type = "button";
      button.dataset.provider = name;
      button.dataset.mode = mode;
      button.setAttribute("aria-pressed", String(mode === "ok"));
      button.addEventListener("click", () => void setMode(name, mode));
      modes.append(button);
    }
    row.append(head, modes);
    list.append(row);
  }
}

// --- generating -----------------------------------------------------------------
async function generate(prompt: string): Promise<void> {
  const card = el("figure", "card pending");
  const canvas = el("canvas");
  const caption = el("figcaption", "", "generating…");
  card.append(canvas, caption);
  $("gallery").prepend(card);
  try {
    const res = await resilience.fetch(`${providers.primary}/v1/images`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt, steps: 50, resolution: "1080p", quality: 1 }),
    });
    const info = getResilienceInfo(res);
    if (!res.ok) {
      fail(card, `failed: ${res.status} after ${info?.attempts ?? 1} attempt(s)`);
      return;
    }
    const image = (await res.json()) as Generated & { provider: string };
    drawGenerated(canvas, image);
    card.className = "card";
    card.dataset.ok = "true";
    card.dataset.provider = image.provider;
    caption.replaceChildren(
      el("span", "meta", `${image.steps} steps · ${image.resolution}`),
      el("span", `badge ${info?.fromFallback ? "badge-fallback" : ""}`, image.provider),
      el("span", "meta", `${info?.attempts ?? 1} attempt(s) · level ${info?.degradationLevel ?? "full"}`),
    );
    caption.title = image.prompt;
  } catch (error) {
    let why = `failed: ${String(error)}`;
    if (isFallbackExhaustedError(error)) {
      // An endpoint passed over because its breaker is open is recorded as "circuit open".
      const open = Object.values(error.errors).every(
        (e) => isCircuitOpenError(e) || (e instanceof Error && e.message === "circuit open"),
      );
      why = open ? "not sent: every provider's breaker is open" : "failed: no provider answered";
    } else if (isResilienceError(error)) why = `failed: ${error.message}`;
    fail(card, why);
  } finally {
    renderStatus();
  }
}

function fail(card: HTMLElement, why: string): void {
  card.className = "card failed";
  card.dataset.ok = "false";
  card.querySelector("canvas")?.remove();
  const caption = card.querySelector("figcaption");
  if (caption) caption.textContent = why;
  log("error", why);
}

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  void generate($<HTMLInputElement>("prompt").value || "a lighthouse at dusk");
});
$("degrade").addEventListener("click", () => resilience.degradation.degrade("chosen on the page"));
$("restore").addEventListener("click", () => resilience.degradation.restore());
buildProviders();
renderStatus();
