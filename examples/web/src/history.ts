import { collection, limit, onSnapshot, orderBy, query, type Unsubscribe } from "firebase/firestore";
import type { ExecutionRecord } from "./api";
import { el } from "./dom";
import { db } from "./firebase";
import { contentText, formatUsd } from "./format";

function row(id: string, record: ExecutionRecord): HTMLLIElement {
  const question = contentText(record.input?.filter((m) => m.role === "user").at(-1)?.content);
  const when = record.createdAt?.toDate().toLocaleTimeString() ?? "";
  return el(
    "li",
    { "data-execution-id": id },
    el("div", {}, el("span", { class: `status ${record.status}` }, record.status), el("span", { class: "model" }, record.model), el("time", {}, when)),
    el("div", { class: "question" }, question),
    el("div", { class: "output" }, record.output ?? ""), // partial when it failed or was cancelled
    ...(record.error ? [el("div", { class: "error-text" }, `${record.error.category}: ${record.error.message}`)] : []),
    el(
      "div",
      { class: "numbers" },
      record.usage ? `${record.usage.inputTokens} in · ${record.usage.outputTokens} out` : "",
      record.cost ? ` · ${formatUsd(record.cost.usd)}` : "",
    ),
  );
}

/** The user's last 20 executions, live: a row goes running → succeeded (or failed…) as the backend writes it. */
export function watchHistory(uid: string, list: HTMLElement, onSettled: () => void): Unsubscribe {
  const recent = query(collection(db, `users/${uid}/executions`), orderBy("createdAt", "desc"), limit(20));
  return onSnapshot(
    recent,
    (snapshot) => {
      list.replaceChildren(...snapshot.docs.map((doc) => row(doc.id, doc.data() as ExecutionRecord)));
      if (snapshot.docs.length === 0) list.append(el("li", { class: "empty" }, "No executions yet."));
      if (snapshot.docChanges().some((change) => change.type === "modified" && change.doc.get("status") !== "running")) onSettled();
    },
    (error) => list.replaceChildren(el("li", { class: "error-text" }, `History unavailable: ${error.message}`)),
  );
}
