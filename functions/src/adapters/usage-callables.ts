import type { CallableRequest } from "firebase-functions/https";
import { ExecutionError } from "../core/errors.js";
import type { LimitSettings } from "../core/limits.js";
import { parseOrThrow } from "../core/request.js";
import {
  getUsageRequestSchema,
  setUserBudgetRequestSchema,
  setUserLimitsRequestSchema,
  usageReport,
  type BudgetWriter,
  type LimitsWriter,
  type UsageReader,
  type UsageReport,
} from "../core/usage-report.js";
import { requireCaller } from "./caller.js";
import { toHttpsError } from "./https-error.js";

export interface UsageCallableOptions {
  repo: () => UsageReader & BudgetWriter & LimitsWriter;
  limits: () => LimitSettings;
  enforceAppCheck: () => boolean;
  now?: () => number;
}

/** `getUsage`: the caller's own day and month, budget and rate-limit headroom. */
export function createGetUsageHandler(options: UsageCallableOptions) {
  return async (request: CallableRequest<unknown>): Promise<UsageReport> => {
    try {
      const uid = requireCaller(request, options.enforceAppCheck());
      parseOrThrow(getUsageRequestSchema, request.data);
      const now = options.now?.() ?? Date.now();
      return usageReport(await options.repo().read(uid, now), options.limits(), now);
    } catch (error) {
      throw toHttpsError(error);
    }
  };
}

/** `setUserBudget`: admins (custom claim `admin: true`) set one user's monthly budget; null = no limit. */
export function createSetUserBudgetHandler(options: UsageCallableOptions) {
  return async (request: CallableRequest<unknown>): Promise<{ uid: string; monthlyUsd: number | null }> => {
    try {
      requireCaller(request, options.enforceAppCheck());
      if (request.auth?.token.admin !== true) throw new ExecutionError("permission_denied", "Only admins may set budgets.");
      const { uid, monthlyUsd } = parseOrThrow(setUserBudgetRequestSchema, request.data);
      await options.repo().setMonthlyBudget(uid, monthlyUsd);
      return { uid, monthlyUsd };
    } catch (error) {
      throw toHttpsError(error);
    }
  };
}

/**
 * `setUserLimits` (admins; an extension of API.md): one user's requests per minute and
 * concurrent executions, null = back to the params. A raised rate also spreads the user's
 * state over lanes (docs/scaling.md), with the bound on limits that this costs.
 */
export function createSetUserLimitsHandler(options: UsageCallableOptions) {
  return async (request: CallableRequest<unknown>): Promise<{ uid: string; perMinute: number | null; maxConcurrent: number | null }> => {
    try {
      requireCaller(request, options.enforceAppCheck());
      if (request.auth?.token.admin !== true) throw new ExecutionError("permission_denied", "Only admins may set limits.");
      const { uid, perMinute, maxConcurrent } = parseOrThrow(setUserLimitsRequestSchema, request.data);
      await options.repo().setLimits(uid, { perMinute, maxConcurrent });
      return { uid, perMinute, maxConcurrent };
    } catch (error) {
      throw toHttpsError(error);
    }
  };
}
