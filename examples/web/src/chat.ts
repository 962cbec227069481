import type { ExecutePromptRequest, ExecutionResult, Part } from "./api";
import { $, el } from "./dom";
import { describeError } from "./errors";
import { cancelExecution, executePrompt } from "./firebase";
import { formatUsd } from "./format";

const MAX_IMAGE_BYTES = 5 * 1024 * 1024;

interface Running {
  controller: AbortController;
  requestId: string;
  /** From the `start` chunk, which comes with the first output. */
  executionId?: string;
  stopped: boolean;
}

export interface ChatHooks {
  /** The conversation the next turn belongs to, if any. */
  conversationId(): string | undefined;
  /** After every turn, whatever its outcome. */
  afterTurn(result: ExecutionResult | undefined): void;
}

/** The composer and the answer: streams executePrompt, shows tokens, cost and errors, Stop and Retry. */
export function setupChat(hooks: ChatHooks): { hideIfStored(executionIds: string[]): void } {
  const form = $<HTMLFormElement>("#composer");
  const prompt = $<HTMLTextAreaElement>("#prompt");
  const model = $<HTMLSelectElement>("#model");
  const image = $<HTMLInputElement>("#image");
  const attachmentBox = $("#attachment");
  const send = $<HTMLButtonElement>("#send");
  const stop = $<HTMLButtonElement>("#stop");
  const turn = $("#turn");
  const question = $("#question");
  const answer = $("#answer");
  const status = $("#status");
  const meta = $("#answer-meta");
  const errorBox = $("#error");
  const retry = $<HTMLButtonElement>("#retry");

  let attachment: { name: string; url: string } | undefined;
  let running: Running | undefined;
  let failed: ExecutePromptRequest | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;

  function showQuestion(request: ExecutePromptRequest): void {
    const content = request.messages[0]!.content;
    const parts: Part[] = typeof content === "string" ? [{ type: "text", text: content }] : content;
    question.textContent = parts.map((p) => (p.type === "text" ? p.text : "[image]")).join(" ");
  }

  function showResult(result: ExecutionResult): void {
    const { usage, cost } = result;
    const firstToken = result.ttftMs !== undefined ? ` (first token ${result.ttftMs} ms)` : "";
    meta.replaceChildren(
      el("span", { class: "model" }, result.model),
      el("span", { class: "tokens" }, `${usage.inputTokens} in · ${usage.outputTokens} out tokens${usage.estimated ? " (estimated)" : ""}`),
      el("span", { class: "cost" }, formatUsd(cost.usd)),
      el("span", {}, `${(result.latencyMs / 1000).toFixed(1)} s${firstToken}, ${result.attempts} attempt${result.attempts === 1 ? "" : "s"}`),
    );
  }

  function showError(error: unknown, request: ExecutePromptRequest): void {
    const shown = describeError(error);
    errorBox.hidden = false;
    $("#error-category").textContent = shown.category;
    $("#error-message").textContent = `${shown.message}${shown.retryable ? " (retryable)" : ""}`;
    clearTimeout(retryTimer);
    retry.hidden = !shown.retryable;
    failed = shown.retryable ? request : undefined;
    if (shown.retryable && shown.retryAfterMs) {
      // Wait what the backend asks before the same request may be repeated.
      retry.disabled = true;
      retry.textContent = `Retry in ${(shown.retryAfterMs / 1000).toFixed(1)} s`;
      retryTimer = setTimeout(() => {
        retry.disabled = false;
        retry.textContent = "Retry";
      }, shown.retryAfterMs);
    } else {
      retry.disabled = false;
      retry.textContent = "Retry";
    }
  }

  async function run(request: ExecutePromptRequest): Promise<void> {
    const current: Running = { controller: new AbortController(), requestId: request.requestId, stopped: false };
    running = current;
    send.disabled = true;
    stop.disabled = false;
    turn.classList.remove("stored");
    delete answer.dataset.executionId;
    showQuestion(request);
    answer.replaceChildren();
    meta.replaceChildren();
    errorBox.hidden = true;
    status.textContent = "Waiting for the first token…";
    let result: ExecutionResult | undefined;
    try {
      const { stream, data } = await executePrompt.stream(request, { signal: current.controller.signal });
      data.catch(() => {}); // a failure also ends the stream: handled below
      for await (const chunk of stream) {
        if (chunk.type === "start") {
          current.executionId = chunk.executionId;
          answer.dataset.executionId = chunk.executionId;
          status.textContent = `Streaming from ${chunk.model}…`;
        } else if (chunk.type === "delta") {
          answer.append(chunk.text);
        }
      }
      result = await data;
      answer.dataset.executionId = result.executionId;
      showResult(result);
      status.textContent = "Done.";
      failed = undefined;
    } catch (error) {
      if (!current.stopped) {
        status.textContent = "Failed.";
        showError(error, request);
      }
    } finally {
      running = undefined;
      send.disabled = false;
      stop.disabled = true;
      hooks.afterTurn(result);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (running || (text === "" && !attachment)) return;
    const parts: Part[] = [...(text ? [{ type: "text" as const, text }] : []), ...(attachment ? [{ type: "image" as const, url: attachment.url }] : [])];
    const conversationId = hooks.conversationId();
    const request: ExecutePromptRequest = {
      requestId: crypto.randomUUID(), // the idempotency key: Retry repeats it, so one record holds every run
      model: model.value,
      messages: [{ role: "user", content: attachment ? parts : text }],
      ...(conversationId ? { conversationId } : {}),
    };
    prompt.value = "";
    setAttachment(undefined);
    void run(request);
  });

  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  retry.addEventListener("click", () => {
    if (failed && !running) void run(failed);
  });

  // The Functions emulator does not report a client that went away, and deployed it depends on the
  // front end: aborting the stream is not enough, cancelExecution stops the execution itself.
  stop.addEventListener("click", async () => {
    const current = running;
    if (!current) return;
    current.stopped = true;
    current.controller.abort();
    status.textContent = "Stopping…";
    try {
      const { data } = await cancelExecution({ executionId: current.executionId ?? `rq_${current.requestId}` });
      status.textContent = `Stopped: the execution ended ${data.status}.`;
    } catch (error) {
      status.textContent = `Stopped reading; cancelExecution failed: ${describeError(error).category}.`;
    }
  });

  function setAttachment(value: { name: string; url: string } | undefined): void {
    attachment = value;
    image.value = "";
    if (!value) return attachmentBox.replaceChildren();
    const remove = el("button", { type: "button", class: "link", title: "Remove the image" }, "×");
    remove.addEventListener("click", () => setAttachment(undefined));
    attachmentBox.replaceChildren(el("img", { src: value.url, alt: "" }), value.name, remove);
  }

  image.addEventListener("change", () => {
    const file = image.files?.[0];
    if (!file) return;
    if (file.size > MAX_IMAGE_BYTES) {
      attachmentBox.textContent = `${file.name} is over 5 MiB, the limit of one data URL.`;
      return;
    }
    const reader = new FileReader();
    reader.onload = () => setAttachment({ name: file.name, url: String(reader.result) });
    reader.readAsDataURL(file); // a data URL part: { type: "image", url: "data:image/png;base64,…" }
  });

  return {
    // In a conversation, the stored messages show the answer once the turn is saved.
    hideIfStored(executionIds) {
      const id = answer.dataset.executionId;
      turn.classList.toggle("stored", id !== undefined && executionIds.includes(id));
    },
  };
}
