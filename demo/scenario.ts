import type { Behaviour, FakeApi } from "./fake-api.ts";

/** One part of the scripted day, as a share of the run. */
export interface Phase {
  name: string;
  /** Start, as a fraction of the run (0..1). */
  at: number;
  premium: Partial<Behaviour>;
  standard: Partial<Behaviour>;
}

const healthy: Behaviour = { failRate: 0, latencyMs: 40, msPerStep: 0, jitterMs: 20, down: false };
// The standard provider is slower and its time grows with steps: degrading helps it.
const standardBase: Behaviour = { failRate: 0, latencyMs: 60, msPerStep: 15, jitterMs: 40, down: false };

/** The day: healthy, flaky premium, premium down, premium recovers. */
export const phases: Phase[] = [
  { name: "healthy", at: 0, premium: healthy, standard: standardBase },
  {
    name: "premium flaky: 503 + Retry-After, slow headers",
    at: 0.17,
    premium: { ...healthy, failRate: 0.35, retryAfter: 0, jitterMs: 700 },
    standard: standardBase,
  },
  { name: "premium down: connections reset", at: 0.34, premium: { ...healthy, down: true }, standard: standardBase },
  { name: "premium recovered", at: 0.67, premium: healthy, standard: standardBase },
];

export function phaseAt(fraction: number): Phase {
  let current = phases[0] as Phase;
  for (const phase of phases) if (fraction >= phase.at) current = phase;
  return current;
}

export function apply(phase: Phase, premium: FakeApi, standard: FakeApi): void {
  premium.behaviour = { ...healthy, ...phase.premium };
  standard.behaviour = { ...standardBase, ...phase.standard };
}
