import { collection, onSnapshot, orderBy, query, type Unsubscribe } from "firebase/firestore";
import type { ConversationSummary, StoredMessage } from "./api";
import { $, el } from "./dom";
import { describeError } from "./errors";
import { db, deleteConversation, listConversations } from "./firebase";
import { contentText } from "./format";

const NONE = "";
const NEW = "new";

/** The conversation picker (listConversations, deleteConversation) and its stored messages, live. */
export function setupConversations(onMessages: (executionIds: string[]) => void) {
  const select = $<HTMLSelectElement>("#conversation");
  const remove = $<HTMLButtonElement>("#delete-conversation");
  const messages = $("#messages");
  const note = $("#conversation-status");
  let uid: string | undefined;
  let current: string | undefined;
  let saved: ConversationSummary[] = [];
  let unsubscribe: Unsubscribe | undefined;

  function render(): void {
    const fresh = current && !saved.some((c) => c.conversationId === current) ? [el("option", { value: current }, "New conversation")] : [];
    select.replaceChildren(
      el("option", { value: NONE }, "None: single prompts"),
      el("option", { value: NEW }, "+ New conversation"),
      ...fresh,
      ...saved.map((c) => el("option", { value: c.conversationId }, `${c.title} (${c.messageCount} messages)`)),
    );
    select.value = current ?? NONE;
    remove.disabled = !saved.some((c) => c.conversationId === current);
  }

  function pick(conversationId: string | undefined): void {
    current = conversationId;
    unsubscribe?.();
    unsubscribe = undefined;
    messages.replaceChildren();
    render();
    if (!uid || !conversationId) return;
    const ordered = query(collection(db, `users/${uid}/conversations/${conversationId}/messages`), orderBy("seq"));
    unsubscribe = onSnapshot(ordered, (snapshot) => {
      const stored = snapshot.docs.map((doc) => doc.data() as StoredMessage);
      messages.replaceChildren(...stored.map((m) => el("li", { class: m.role }, el("b", {}, m.role), " ", contentText(m.content))));
      onMessages(stored.map((m) => m.executionId));
    });
  }

  async function refresh(): Promise<void> {
    try {
      saved = (await listConversations({ limit: 20 })).data.conversations;
      note.textContent = "";
    } catch (error) {
      note.textContent = `listConversations failed: ${describeError(error).category}`;
    }
    render();
  }

  select.addEventListener("change", () => {
    pick(select.value === NEW ? `c-${crypto.randomUUID()}` : select.value || undefined);
  });

  remove.addEventListener("click", async () => {
    if (!current) return;
    let outcome: string;
    try {
      const { data } = await deleteConversation({ conversationId: current });
      outcome = `Deleted, with its ${data.deletedMessages} messages.`;
      pick(undefined);
    } catch (error) {
      const shown = describeError(error);
      outcome = `Not deleted: ${shown.category}${shown.retryable ? " (try again in a moment)" : ""}.`;
    }
    await refresh();
    note.textContent = outcome;
  });

  return {
    current: () => current,
    refresh,
    signedIn(user: string) {
      uid = user;
      saved = [];
      pick(undefined);
      void refresh();
    },
    signedOut() {
      uid = undefined;
      saved = [];
      pick(undefined);
    },
  };
}
