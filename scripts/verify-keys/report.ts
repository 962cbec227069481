import type { KeyStatus } from "./checks.js";

export interface CheckResult {
  provider: string;
  status: KeyStatus;
  /** Whether this provider's result decides the exit code. */
  required: boolean;
  /** Where the key (or, for keyless providers, the URL) was found. */
  source: string | null;
  /** The key masked (`sk-…abcd`), never more. */
  key: string | null;
  detail: string;
  httpStatus?: number;
  retryAfterSeconds?: number;
  missingModels?: string[];
  creditUsd?: number | null;
}

export interface Report {
  ok: boolean;
  offline: boolean;
  results: CheckResult[];
}

export function renderTable(report: Report): string {
  const rows = report.results.map((r) => [r.provider, r.status + (r.required ? "" : " (optional)"), r.source ?? "-", r.key ?? "-", r.detail]);
  const header = ["PROVIDER", "STATUS", "SOURCE", "KEY", "DETAIL"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  const verdict = report.ok ? "All required providers are ok." : "Some required provider is not ok.";
  const mode = report.offline ? " (offline checks only)" : "";
  return [line(header), ...rows.map(line), "", verdict + mode].join("\n");
}
