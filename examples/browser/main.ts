/**
 * A page that generates images through the library against a local fake
 * API (`?api=http://127.0.0.1:PORT`), and shows the degradation level and
 * the breakers. Built with Vite: `npx vite build examples/browser`.
 */
import { createResilience, getResilienceInfo, isCircuitOpenError } from "@storycore/resilient-fetch";

const api = new URLSearchParams(location.search).get("api") ?? "http://127.0.0.1:9101";
const resilience = createResilience({
  retry: { maxAttempts: 3, initialDelay: 100, idempotencyKey: true },
  breaker: { failureThreshold: 3, timeout: 10_000 },
  timeout: { total: 15_000 },
});

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function render(): void {
  $("level").textContent = resilience.degradation.currentLevel().name;
  const breakers = Object.entries(resilience.health().breakers);
  $("breakers").replaceChildren(
    ...breakers.map(([host, b]) => {
      const li = document.createElement("li");
      li.className = `state-${b.state}`;
      li.dataset.host = host;
      li.textContent = `${host}: ${b.state} (${b.failureCount} recent failures)`;
      return li;
    }),
  );
}

function show(text: string, ok: boolean): void {
  const li = document.createElement("li");
  li.textContent = text;
  li.dataset.ok = String(ok);
  $("images").append(li);
}

async function generate(): Promise<void> {
  const prompt = $<HTMLInputElement>("prompt").value;
  try {
    const res = await resilience.fetch(`${api}/v1/images`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt, steps: 50, resolution: "1080p", quality: 1 }),
    });
    const info = getResilienceInfo(res);
    if (!res.ok) return show(`failed: ${res.status} after ${info?.attempts} attempt(s)`, false);
    const image = (await res.json()) as { id: string; steps: number; resolution: string };
    show(
      `${image.id} · ${image.steps} steps @ ${image.resolution} · ${info?.attempts} attempt(s), level ${info?.degradationLevel}`,
      true,
    );
  } catch (error) {
    show(isCircuitOpenError(error) ? "not sent: the API's breaker is open" : `failed: ${String(error)}`, false);
  } finally {
    render();
  }
}

$("generate").addEventListener("click", () => void generate());
$("degrade").addEventListener("click", () => {
  resilience.degradation.degrade("chosen on the page");
  render();
});
$("restore").addEventListener("click", () => {
  resilience.degradation.restore();
  render();
});
resilience.on("degradation", render);
render();
