import { beforeAll, describe, expect, it } from "vitest";
import type { ExecutionResult } from "../../src/core/execution.js";
import type { UsageReport } from "../../src/core/usage-report.js";
import { anonymousFunctions, callable, rejection, makeAdmin, signedInClient } from "../support/firebase.js";

/** getUsage and setUserBudget through the Functions emulator with the firebase web SDK (default params). */

type Client = Awaited<ReturnType<typeof signedInClient>>;
let alice: Client;
let root: Client;

beforeAll(async () => {
  [alice, root] = await Promise.all([signedInClient(), signedInClient()]);
  await makeAdmin(root.uid);
  await root.user.getIdToken(true);
});

const getUsage = (c: Client) => callable<unknown, UsageReport>(c.functions, "getUsage");
const setUserBudget = (c: Client) => callable<unknown, { uid: string; monthlyUsd: number | null }>(c.functions, "setUserBudget");
const execute = (c: Client) => callable<unknown, ExecutionResult>(c.functions, "executePrompt");


describe("getUsage", () => {
  it("reports the day and month ledger, the budget left and the rate-limit headroom", async () => {
    const before = (await getUsage(alice)({})).data;
    expect(before).toEqual({
      day: { requests: 0, succeeded: 0, failed: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 },
      month: { requests: 0, succeeded: 0, failed: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 },
      budget: { monthlyUsd: 5, remainingUsd: 5 },
      rateLimit: { perMinute: 30, remaining: 30 },
    });
    const a = (await execute(alice)({ model: "local-pro", messages: [{ role: "user", content: "one two" }] })).data;
    await rejection(execute(alice)({ model: "local-pro+fail=content_filter", messages: [{ role: "user", content: "x" }] }));
    const after = (await getUsage(alice)({})).data;
    expect(after.day).toEqual({ requests: 2, succeeded: 1, failed: 1, inputTokens: a.usage.inputTokens, outputTokens: a.usage.outputTokens, costUsd: a.cost.usd });
    expect(after.month).toEqual(after.day);
    expect(after.budget.remainingUsd).toBeCloseTo(5 - a.cost.usd, 9);
    expect(after.rateLimit).toEqual({ perMinute: 30, remaining: 28 });
  });

  it("refuses unknown fields and signed-out callers", async () => {
    expect((await rejection(getUsage(alice)({ uid: "someone-else" }))).code).toBe("functions/invalid-argument");
    expect((await rejection(callable(anonymousFunctions(), "getUsage")({}))).code).toBe("functions/unauthenticated");
  });
});

describe("setUserBudget", () => {
  it("is for admins only", async () => {
    const error = await rejection(setUserBudget(alice)({ uid: alice.uid, monthlyUsd: 1_000 }));
    expect(error.code).toBe("functions/permission-denied");
    expect(error.details).toEqual({ category: "permission_denied", retryable: false });
  });

  it("sets a user's budget, which their next request and getUsage respect; null lifts the limit", async () => {
    const bob = await signedInClient();
    expect((await setUserBudget(root)({ uid: bob.uid, monthlyUsd: 0 })).data).toEqual({ uid: bob.uid, monthlyUsd: 0 });
    expect((await getUsage(bob)({})).data.budget).toEqual({ monthlyUsd: 0, remainingUsd: 0 });
    const refused = await rejection(execute(bob)({ model: "local-mini", messages: [{ role: "user", content: "hi" }] }));
    expect(refused.code).toBe("functions/resource-exhausted");
    expect(refused.details).toEqual({ category: "budget_exceeded", retryable: false });

    await setUserBudget(root)({ uid: bob.uid, monthlyUsd: null });
    expect((await getUsage(bob)({})).data.budget).toEqual({ monthlyUsd: null, remainingUsd: null });
    expect((await execute(bob)({ model: "local-mini", messages: [{ role: "user", content: "hi" }] })).data.output).toBe("Echo: hi");
  });

  it("validates its input", async () => {
    for (const bad of [{ uid: alice.uid, monthlyUsd: -1 }, { uid: alice.uid }, { uid: "", monthlyUsd: 1 }, { uid: "a/b", monthlyUsd: 1 }]) {
      expect((await rejection(setUserBudget(root)(bad))).code).toBe("functions/invalid-argument");
    }
  });
});
