import type { Usage } from "./api";
import { $, el } from "./dom";
import { describeError } from "./errors";
import { getUsage } from "./firebase";
import { formatUsd } from "./format";

function usageRow(label: string, id: string, usage: Usage): HTMLTableRowElement {
  return el(
    "tr",
    { id },
    el("th", {}, label),
    el("td", {}, el("span", { class: "requests" }, String(usage.requests)), el("span", { class: "note" }, ` (${usage.succeeded} ok, ${usage.failed} failed)`)),
    el("td", {}, `${usage.inputTokens} in · ${usage.outputTokens} out`),
    el("td", { class: "cost" }, formatUsd(usage.costUsd)),
  );
}

/** getUsage: today and this month (UTC), the budget left and the rate limit. */
export async function refreshUsage(): Promise<void> {
  const body = $("#usage-rows");
  const limits = $("#usage-limits");
  try {
    const { data } = await getUsage({});
    body.replaceChildren(usageRow("Today", "usage-day", data.day), usageRow("This month", "usage-month", data.month));
    const { monthlyUsd, remainingUsd } = data.budget;
    const budget = monthlyUsd === null ? "no monthly budget" : `${formatUsd(remainingUsd ?? 0)} left of ${formatUsd(monthlyUsd)} this month`;
    limits.textContent = `Budget: ${budget}. Rate limit: ${data.rateLimit.remaining} of ${data.rateLimit.perMinute} left this minute.`;
  } catch (error) {
    limits.textContent = `getUsage failed: ${describeError(error).category}`;
  }
}
