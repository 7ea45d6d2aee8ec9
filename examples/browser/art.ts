/**
 * Draws a "generated image" locally, so the example needs no image model:
 * the detail follows the steps the API actually received (more mountain
 * ridges, stars and reflections), and the raster follows the resolution it
 * received (the canvas has a twentieth of its pixels and is scaled up without
 * smoothing, so a degraded 720p image is visibly coarser than a 1080p one).
 */

export interface Generated {
  id: string;
  prompt: string;
  steps: number;
  resolution: string;
}

/** Canvas pixels for a resolution such as "1080p" or "1024x768" (a twentieth of the real size). */
export function rasterSize(resolution: string): { width: number; height: number } {
  const wxh = /^(\d+)x(\d+)$/.exec(resolution);
  if (wxh)
    return {
      width: Math.max(8, Math.round(Number(wxh[1]) / 20)),
      height: Math.max(8, Math.round(Number(wxh[2]) / 20)),
    };
  const p = /^(\d+)p$/.exec(resolution);
  const height = Math.max(8, Math.round(Number(p?.[1] ?? 1080) / 20));
  return { width: Math.round((height * 16) / 9), height };
}

export function drawGenerated(canvas: HTMLCanvasElement, image: Generated): void {
  const { width, height } = rasterSize(image.resolution);
  canvas.width = width;
  canvas.height = height;
  canvas.dataset.steps = String(image.steps);
  canvas.dataset.resolution = image.resolution;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const random = mulberry32(hash(`${image.prompt}|${image.id}`));
  // A warm dusk whose tint depends on the prompt.
  const hue = 10 + (hash(image.prompt) % 40);
  const detail = Math.max(1, Math.min(5, Math.round(image.steps / 10)));
  const horizon = height * 0.62;

  const sky = ctx.createLinearGradient(0, 0, 0, horizon);
  sky.addColorStop(0, "hsl(232 50% 14%)");
  sky.addColorStop(0.55, `hsl(${hue + 300} 45% 38%)`);
  sky.addColorStop(1, `hsl(${hue} 85% 62%)`);
  ctx.fillStyle = sky;
  ctx.fillRect(0, 0, width, horizon);

  // Stars: more steps, more of them.
  ctx.fillStyle = "rgba(255,255,240,0.85)";
  for (let i = 0; i < image.steps * 2; i++) {
    ctx.fillRect(Math.floor(random() * width), Math.floor(random() * horizon * 0.6), 1, 1);
  }

  // The sun, with one glow ring per ten steps.
  const sunX = width * (0.2 + 0.6 * random());
  const sunR = height * 0.09;
  for (let ring = detail; ring >= 1; ring--) {
    ctx.fillStyle = `hsla(${hue + 20} 95% 70% / ${0.12 * (detail - ring + 1)})`;
    circle(ctx, sunX, horizon * 0.8, sunR * (1 + ring * 0.45));
  }
  ctx.fillStyle = `hsl(${hue + 30} 100% 82%)`;
  circle(ctx, sunX, horizon * 0.8, sunR);

  // Mountain ridges: one per ten steps, each with more points the more steps.
  for (let layer = 0; layer < detail; layer++) {
    const base = horizon - (detail - layer) * height * 0.05;
    // Farther ridges are paler, as haze makes them.
    ctx.fillStyle = `hsl(255 25% ${34 - layer * 6}%)`;
    ctx.beginPath();
    ctx.moveTo(0, horizon);
    const points = 4 + image.steps;
    for (let i = 0; i <= points; i++) {
      ctx.lineTo((width * i) / points, base - random() * height * 0.12);
    }
    ctx.lineTo(width, horizon);
    ctx.fill();
  }

  // Water, with reflections from 30 steps on.
  ctx.fillStyle = "hsl(225 40% 13%)";
  ctx.fillRect(0, horizon, width, height - horizon);
  if (image.steps >= 30) {
    ctx.fillStyle = `hsla(${hue + 10} 100% 78% / 0.7)`;
    for (let i = 0; i < image.steps / 3; i++) {
      const y = horizon + 2 + random() * (height - horizon - 2);
      const spread = (y - horizon) * 0.6 + sunR;
      ctx.fillRect(sunX - spread * random(), y, Math.max(1, spread * random()), 1);
    }
  }
}

function circle(ctx: CanvasRenderingContext2D, x: number, y: number, r: number): void {
  ctx.beginPath();
  ctx.arc(x, y, r, 0, Math.PI * 2);
  ctx.fill();
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
