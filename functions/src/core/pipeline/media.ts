import type { ResolvedModel } from "../catalog.js";
import { unfetchedNote } from "../conversation.js";
import { ExecutionError } from "../errors.js";
import { isHttpsUrl, MEDIA_LIMITS, parseDataUrl } from "../media.js";
import { mapMediaUrls, mediaKind, type MediaPart, type Message } from "../messages.js";
import type { Candidate, PipelineDeps } from "./types.js";

/**
 * Media the server fetches itself, for providers that need bytes: the URL policy when
 * planning (free), the fetch after admission, once per URL and execution, for the candidate
 * about to be called.
 */

/**
 * Providers that cannot fetch a kind of media themselves get it as a data URL, which we
 * fetch from allowed hosts only (MediaFetcher), after admission and only for the candidate
 * that needs it (attempts.ts): a refused or rate-limited request never makes the server fetch
 * anything. Here only the URL policy is checked, which costs nothing: a URL the primary model
 * would need fetched and may not be refuses the request; a fallback that would need one is skipped.
 */
export function planMedia(deps: PipelineDeps, models: ResolvedModel[], messages: Message[], primary: ResolvedModel): Candidate[] {
  const remote = collectRemoteMedia(messages);
  const candidates: Candidate[] = [];
  for (const model of models) {
    const inline = remote.filter((part) => !(model.provider.fetchesUrls ?? []).includes(mediaKind(part)));
    const refused = inline
      .map((part) => ({ part, reason: deps.media ? deps.media.refusal(part.url) : "the server does not fetch media URLs; send a data URL" }))
      .find((r) => r.reason !== undefined);
    if (refused) {
      if (model === primary) throw refusal(new ExecutionError("validation", refused.reason!), refused.part.url, messages);
      continue;
    }
    candidates.push({ model, messages, ...(inline.length > 0 ? { inline } : {}) });
  }
  return candidates;
}

function collectRemoteMedia(messages: readonly Message[]): MediaPart[] {
  const out: MediaPart[] = [];
  for (const message of messages) {
    if (typeof message.content === "string" || message.content === null) continue;
    for (const part of message.content) if (part.type !== "text" && isHttpsUrl(part.url)) out.push(part);
  }
  return out;
}

/** A fetch failure as a validation error naming the part. */
function refusal(error: unknown, url: string, messages: readonly Message[]): ExecutionError {
  let field = "messages";
  messages.forEach((message, i) => {
    if (typeof message.content === "string" || message.content === null) return;
    message.content.forEach((part, j) => {
      if (part.type !== "text" && part.url === url && field === "messages") field = `messages[${i}].content[${j}].url`;
    });
  });
  const reason = error instanceof ExecutionError && error.category === "validation" ? error.message : "could not be fetched";
  return new ExecutionError("validation", `${field}: ${reason}`);
}


/**
 * The messages for a candidate, its `inline` media fetched and put in as data URLs. Each URL
 * is fetched once per execution (a fallback that needs it too reuses it), in parallel, and
 * all of them together at most MEDIA_LIMITS.fetchedBytes. A failure is a validation error
 * naming the part (that candidate cannot be called; attempts.ts moves on to the next); a
 * history image (`historyInline`) that cannot be fetched becomes a note instead.
 */
export function mediaInliner(deps: PipelineDeps, signal: AbortSignal, executionId: string): (candidate: Candidate) => Promise<Message[]> {
  const fetched = new Map<string, Promise<string>>();
  let total = 0;
  const fetchOnce = (part: MediaPart): Promise<string> => {
    let pending = fetched.get(part.url);
    if (!pending) {
      pending = (async () => {
        if (!deps.media) throw new ExecutionError("validation", "the server does not fetch media URLs; send a data URL");
        const dataUrl = await deps.media.fetchAsDataUrl(part.url, mediaKind(part), signal);
        total += parseDataUrl(dataUrl)?.bytes ?? 0;
        if (total > MEDIA_LIMITS.fetchedBytes) throw new ExecutionError("validation", `the media URLs of one request may hold at most ${MEDIA_LIMITS.fetchedBytes} bytes in all`);
        return dataUrl;
      })();
      pending.catch(() => {}); // awaited below; a history image's failure is not an error
      fetched.set(part.url, pending);
    }
    return pending;
  };
  return async (candidate) => {
    if (!candidate.inline && !candidate.historyInline) return candidate.messages;
    const urls = new Map<string, string>();
    const unfetched = new Set<string>();
    await Promise.all([
      ...(candidate.inline ?? []).map(async (part) => {
        try {
          urls.set(part.url, await fetchOnce(part));
        } catch (error) {
          if (signal.aborted) throw signal.reason;
          throw refusal(error, part.url, candidate.messages);
        }
      }),
      ...(candidate.historyInline ?? []).map(async (part) => {
        try {
          urls.set(part.url, await fetchOnce(part));
        } catch {
          if (signal.aborted) throw signal.reason;
          unfetched.add(part.url);
        }
      }),
    ]);
    if (unfetched.size > 0) deps.logger.warn("conversation.media_not_fetched", { executionId, images: unfetched.size });
    const messages = unfetched.size > 0 ? withNotes(candidate.messages, unfetched) : candidate.messages;
    return mapMediaUrls(messages, (part) => urls.get(part.url) ?? part.url);
  };
}

/** History images that could not be fetched, as a note in their place. */
function withNotes(messages: Message[], unfetched: ReadonlySet<string>): Message[] {
  return messages.map((message) => {
    if (typeof message.content === "string" || message.content === null || message.role === "tool") return message;
    const content = message.content.map((part) => (part.type === "image" && unfetched.has(part.url) ? unfetchedNote() : part));
    return { ...message, content } as Message;
  });
}
