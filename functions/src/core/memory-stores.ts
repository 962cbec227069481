import type { Execution } from "./execution.js";
import type { ExecutionStore, Logger, PromptStore } from "./ports.js";
import type { PromptTemplate } from "./templates.js";

/** In-memory twins of the ports, for unit tests and the in-process benchmark. */
export class MemoryExecutionStore implements ExecutionStore {
  readonly records = new Map<string, Execution>();
  writes = 0;

  async create(uid: string, execution: Execution): Promise<void> {
    this.writes++;
    const key = `${uid}/${execution.id}`;
    if (this.records.has(key)) throw new Error(`execution ${key} already exists`);
    this.records.set(key, structuredClone(execution));
  }

  async finish(uid: string, execution: Execution): Promise<void> {
    this.writes++;
    this.records.set(`${uid}/${execution.id}`, structuredClone(execution));
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
