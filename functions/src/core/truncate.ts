/**
 * Strings we store or forward are cut on code-point boundaries, never inside a surrogate
 * pair: half a pair is ill-formed UTF-16, which Firestore refuses in a short string (the
 * commit fails) and silently replaces with U+FFFD in a long one, and which cannot be sent
 * as UTF-8 unaltered. Every cap on text (records, outputs, titles, stored turns, logged
 * causes) goes through here.
 */

/** At most `max` UTF-16 code units of `text`: one fewer when the cut would split a surrogate pair. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 0) return "";
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/**
 * One budget of `max` code units shared by several texts taken in turn: the first that does
 * not fit is cut (with `truncate`), and every one after it is emptied.
 */
export function textBudget(max: number): { take(text: string): string; readonly left: number; readonly truncated: boolean } {
  let left = Math.max(0, max);
  let truncated = false;
  return {
    take(text: string): string {
      const kept = truncate(text, left);
      if (kept.length < text.length) {
        truncated = true;
        left = 0;
      } else left -= kept.length;
      return kept;
    },
    get left() {
      return left;
    },
    get truncated() {
      return truncated;
    },
  };
}
