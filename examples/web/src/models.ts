import { el } from "./dom";

// Counted per page load, so that "fails, then answers" fails again after a reload.
const run = Math.random().toString(36).slice(2, 10);

/** Local-provider scenarios (docs/local-provider.md): model id suffixes that give slow streams and faults. */
const SCENARIOS: { id: string; label: string }[] = [
  { id: "local-mini+interval=150", label: "local-mini, streamed slowly (a word every 150 ms)" },
  { id: "local-mini+deltas=500,interval=100", label: "local-mini, a long slow answer (50 s): try Stop" },
  { id: "local-mini+latency=15000", label: "local-mini, slow to start (15 s before the first token)" },
  { id: `local-mini+fail=server,times=4,key=web-${run}`, label: "local-mini, fails its first 4 calls, then answers: try Retry" },
  { id: "local-mini+fail=unavailable", label: "local-mini, provider down (503, retryable)" },
  { id: "local-mini+fail=content_filter", label: "local-mini, content filtered (not retryable)" },
  { id: "local-mini+report=messages", label: "local-mini, says how many messages it received" },
];
const FALLBACK_MODELS = ["local-mini", "local-pro", "local-text"];

/** Fills the model picker from `GET /v1/models`, then the local scenarios when the local provider is there. */
export async function loadModels(select: HTMLSelectElement, modelsUrl: string): Promise<void> {
  let ids = FALLBACK_MODELS;
  try {
    const response = await fetch(modelsUrl);
    const list = (await response.json()) as { data: { id: string }[] };
    ids = list.data.map((m) => m.id);
  } catch (error) {
    console.warn(`GET ${modelsUrl} failed, offering the local models`, error);
  }
  const models = el("optgroup", { label: "Models (GET /v1/models)" }, ...ids.map((id) => el("option", { value: id }, id)));
  const scenarios = ids.includes("local-mini")
    ? [el("optgroup", { label: "Local provider scenarios" }, ...SCENARIOS.map((s) => el("option", { value: s.id }, s.label)))]
    : [];
  select.replaceChildren(models, ...scenarios);
}
