import { checkTurnFree, newConversation, storedBytes, systemOf, type ConversationDoc, type StoredMessage } from "./conversation.js";
import type { Execution, RecordedMessage } from "./execution.js";
import { idempotencyDecision, priorRunsOf } from "./idempotency.js";
import { abandoned, ABANDONED_DELTA, EMPTY_TOTALS, usageDelta, type UsageTotals } from "./ledger.js";
import { ExecutionError } from "./errors.js";
import { decideAdmission, headroomAfter, usagePeriods, type AccountState, type Reservation } from "./limits.js";
import type { Admission, AdmissionRequest, AdmissionTicket, ExecutionStore, FinishResult, Logger, PromptStore } from "./ports.js";
import type { PromptTemplate } from "./templates.js";

interface MemoryAccount {
  monthlyBudgetUsd?: number | null;
  reservations: Record<string, Reservation>;
  recent: number[];
}

/**
 * In-memory twin of the Firestore store, for unit tests and the in-process benchmark: the
 * same admission and settlement rules, with a queue per user standing in for the transaction.
 */
export class MemoryExecutionStore implements ExecutionStore {
  readonly records = new Map<string, Execution>();
  readonly accounts = new Map<string, MemoryAccount>();
  readonly usage = new Map<string, UsageTotals>();
  /** The global budget's reservations, by month: exact here, since one process serializes everything. */
  readonly globalReserved = new Map<string, Map<string, number>>();
  /** By `uid/conversationId`. */
  readonly conversations = new Map<string, { doc: ConversationDoc; messages: StoredMessage[] }>();
  /** Operations that would each be one Firestore round trip. */
  roundTrips = 0;
  private readonly queues = new Map<string, Promise<unknown>>();

  private serialized<T>(key: string, work: () => T): Promise<T> {
    const previous = this.queues.get(key) ?? Promise.resolve();
    const next = previous.then(work, work);
    this.queues.set(key, next.catch(() => undefined));
    return next;
  }

  account(uid: string): MemoryAccount {
    let account = this.accounts.get(uid);
    if (!account) this.accounts.set(uid, (account = { reservations: {}, recent: [] }));
    return account;
  }

  totals(key: string): UsageTotals {
    return this.usage.get(key) ?? { ...EMPTY_TOTALS };
  }

  private add(key: string, delta: UsageTotals): void {
    const current = this.totals(key);
    this.usage.set(key, {
      requests: current.requests + delta.requests,
      succeeded: current.succeeded + delta.succeeded,
      failed: current.failed + delta.failed,
      inputTokens: current.inputTokens + delta.inputTokens,
      outputTokens: current.outputTokens + delta.outputTokens,
      costMicros: current.costMicros + delta.costMicros,
    });
  }

  private reservedGlobally(month: string): Map<string, number> {
    let reserved = this.globalReserved.get(month);
    if (!reserved) this.globalReserved.set(month, (reserved = new Map()));
    return reserved;
  }

  admit(request: AdmissionRequest): Promise<Admission> {
    this.roundTrips += 2; // a transaction: one read, one commit
    return this.serialized(request.uid, () => {
      const { uid, now, limits } = request;
      let { execution } = request;
      const account = this.account(uid);
      const existing = this.records.get(`${uid}/${execution.id}`);
      const live = (id: string) => (account.reservations[id]?.expireAt ?? 0) > now;
      const decision = existing ? idempotencyDecision(existing, execution.requestFingerprint ?? "", live(existing.id)) : undefined;
      if (existing && decision === "replay") return { kind: "replay", execution: structuredClone(existing) } as const;
      const { month, day } = usagePeriods(now);
      const turn = request.conversation;
      const conversation = turn ? this.conversations.get(`${uid}/${turn.id}`) : undefined;
      if (turn) checkTurnFree(conversation?.doc, execution.id, now);
      const planned = turn ? turn.window(conversation?.messages.slice(-turn.historyLimit) ?? [], conversation?.doc.system ?? undefined) : undefined;
      const reserveMicros = planned ? planned.reserveMicros : request.reserveMicros;
      const state = { ...account, spentMicros: this.totals(`${uid}/${month}`).costMicros } satisfies AccountState;
      const admission = decideAdmission({ executionId: execution.id, now, reserveMicros, expireAt: request.expireAt, account: state, settings: limits });
      const global = limits.globalMonthlyBudgetUsd === null ? undefined : this.reservedGlobally(month);
      let globalLeft: number | null = null;
      if (global) {
        const committed = this.totals(`global/${month}`).costMicros + [...global.values()].reduce((a, b) => a + b, 0);
        globalLeft = Math.round(limits.globalMonthlyBudgetUsd! * 1_000_000) - committed - reserveMicros;
        if (globalLeft < 0) throw new ExecutionError("budget_exceeded", "The service's monthly budget is spent; try again next month.");
      }
      const headroom = headroomAfter(state, limits, now, reserveMicros, globalLeft);
      const close = (id: string) => {
        this.add(`${uid}/${month}`, ABANDONED_DELTA);
        this.add(`${uid}/${day}`, ABANDONED_DELTA);
        this.add(`global/${month}`, ABANDONED_DELTA);
        const dead = this.records.get(`${uid}/${id}`);
        if (dead) this.records.set(`${uid}/${id}`, { ...dead, ...abandoned(new Date(now)) });
      };
      for (const id of admission.expired) {
        global?.delete(id);
        if (this.records.get(`${uid}/${id}`)?.status === "running") close(id);
      }
      if (existing && decision === "reclaim" && !admission.expired.includes(existing.id)) close(existing.id);
      if (existing) execution = { ...execution, prior: priorRunsOf(this.records.get(`${uid}/${execution.id}`)!) };
      if (turn && planned) execution = { ...execution, conversation: { id: turn.id, historyMessages: planned.messages.length } };
      account.reservations = admission.reservations;
      account.recent = admission.recent;
      global?.set(execution.id, reserveMicros);
      this.records.set(`${uid}/${execution.id}`, { ...execution });
      let history: StoredMessage[] | undefined;
      let held: AdmissionTicket["conversation"];
      if (turn) {
        const entry = conversation ?? { doc: newConversation(turn, now), messages: [] };
        entry.doc = { ...entry.doc, activeExecutionId: execution.id, activeUntil: request.expireAt };
        this.conversations.set(`${uid}/${turn.id}`, entry);
        history = structuredClone(planned!.messages);
        held = { id: turn.id, nextSeq: entry.doc.nextSeq, expireAt: turn.expireAt.getTime(), ...(entry.doc.nextSeq === 0 ? { created: true } : {}) };
      }
      const ticket: AdmissionTicket = { reservedMicros: reserveMicros, ...(global ? { globalShard: 0 } : {}), ...(held ? { conversation: held } : {}) };
      return { kind: "admitted", ticket, headroom, ...(existing ? { prior: execution.prior } : {}), ...(history ? { history } : {}) } as const;
    });
  }

  finish(uid: string, execution: Execution, ticket: AdmissionTicket, turn?: RecordedMessage[]): Promise<FinishResult | void> {
    this.roundTrips += 1;
    return this.serialized(uid, (): FinishResult => {
      // Idempotent, as the Firestore store: a record no longer running was settled already.
      if (this.records.get(`${uid}/${execution.id}`)?.status !== "running") return {};
      const key = ticket.conversation ? `${uid}/${ticket.conversation.id}` : undefined;
      const held = key ? this.conversations.get(key) : undefined;
      let result: FinishResult = ticket.conversation ? { conversation: "skipped" } : {};
      if (held && held.doc.activeExecutionId === execution.id) {
        const { activeExecutionId: _id, activeUntil: _until, ...rest } = held.doc;
        held.doc = rest;
        result = { conversation: "released" };
        if (execution.status === "succeeded" && turn) {
          const at = execution.completedAt ?? new Date();
          const appended = turn.map((m, i): StoredMessage => ({ ...m, seq: held.doc.nextSeq + i, executionId: execution.id, createdAt: at }));
          held.messages.push(...appended);
          const system = systemOf(held.doc.nextSeq, appended);
          result = { conversation: "appended" };
          held.doc = {
            ...held.doc,
            ...(system ? { system: structuredClone(system) } : {}),
            model: execution.model,
            updatedAt: at,
            messageCount: held.doc.messageCount + appended.length,
            historyBytes: held.doc.historyBytes + appended.reduce((sum, m) => sum + storedBytes(m), 0),
            nextSeq: held.doc.nextSeq + appended.length,
            lastExecutionId: execution.id,
            expireAt: new Date(ticket.conversation!.expireAt),
          };
        } else if (ticket.conversation!.created && held.doc.nextSeq === 0) {
          // The turn that created it stored nothing: the conversation is gone, as if never started.
          this.conversations.delete(key!);
          result = { conversation: "removed" };
        }
      }
      const at = execution.completedAt?.getTime() ?? Date.now();
      const { month, day } = usagePeriods(at);
      const delta = usageDelta(execution);
      this.records.set(`${uid}/${execution.id}`, { ...execution });
      this.add(`${uid}/${month}`, delta);
      this.add(`${uid}/${day}`, delta);
      this.add(`global/${month}`, delta);
      delete this.account(uid).reservations[execution.id];
      if (ticket.globalShard !== undefined) for (const reserved of this.globalReserved.values()) reserved.delete(execution.id);
      return result;
    });
  }

  recordUnadmitted(uid: string, execution: Execution): Promise<void> {
    this.roundTrips += 1;
    return this.serialized(uid, () => {
      if (this.records.has(`${uid}/${execution.id}`)) return;
      const { month, day } = usagePeriods(execution.completedAt?.getTime() ?? Date.now());
      const delta = usageDelta(execution);
      this.records.set(`${uid}/${execution.id}`, { ...execution });
      this.add(`${uid}/${month}`, delta);
      this.add(`${uid}/${day}`, delta);
      this.add(`global/${month}`, delta);
    });
  }

  get(uid: string, id: string): Execution | undefined {
    return this.records.get(`${uid}/${id}`);
  }
}

export class MemoryPromptStore implements PromptStore {
  readonly prompts = new Map<string, PromptTemplate>();

  async get(uid: string, promptId: string): Promise<PromptTemplate | undefined> {
    return this.prompts.get(`${uid}/${promptId}`);
  }

  put(uid: string, promptId: string, template: PromptTemplate): void {
    this.prompts.set(`${uid}/${promptId}`, template);
  }
}

export interface LogEntry {
  level: "info" | "warn" | "error";
  message: string;
  fields: Record<string, unknown>;
}

export class MemoryLogger implements Logger {
  readonly entries: LogEntry[] = [];
  info(message: string, fields: Record<string, unknown>): void {
    this.entries.push({ level: "info", message, fields });
  }
  warn(message: string, fields: Record<string, unknown>): void {
    this.entries.push({ level: "warn", message, fields });
  }
  error(message: string, fields: Record<string, unknown>): void {
    this.entries.push({ level: "error", message, fields });
  }
}

/** A logger that drops everything (benchmarks). */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

