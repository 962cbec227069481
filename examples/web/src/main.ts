import { FirebaseError } from "firebase/app";
import { createUserWithEmailAndPassword, onAuthStateChanged, signInAnonymously, signInWithEmailAndPassword, signOut } from "firebase/auth";
import type { Unsubscribe } from "firebase/firestore";
import { setupChat } from "./chat";
import { setupConversations } from "./conversations";
import { $ } from "./dom";
import { auth, modelsUrl } from "./firebase";
import { watchHistory } from "./history";
import { loadModels } from "./models";
import { refreshUsage } from "./usage";

const who = $("#who");
const authError = $("#auth-error");
const app = $("#app");

const conversations = setupConversations((executionIds) => chat.hideIfStored(executionIds));
const chat = setupChat({
  conversationId: conversations.current,
  afterTurn: () => {
    void refreshUsage();
    if (conversations.current()) void conversations.refresh();
  },
});
void loadModels($<HTMLSelectElement>("#model"), modelsUrl);

async function signIn(how: () => Promise<unknown>): Promise<void> {
  authError.textContent = "";
  try {
    await how();
  } catch (error) {
    authError.textContent = error instanceof FirebaseError ? error.code : String(error);
  }
}

$("#sign-in-anonymous").addEventListener("click", () => void signIn(() => signInAnonymously(auth)));
$("#sign-in-email").addEventListener("submit", (event) => {
  event.preventDefault();
  const email = $<HTMLInputElement>("#email").value;
  const password = $<HTMLInputElement>("#password").value;
  // On the Auth emulator an unknown email simply gets an account.
  void signIn(() =>
    signInWithEmailAndPassword(auth, email, password).catch((error: unknown) => {
      const unknown = error instanceof FirebaseError && ["auth/user-not-found", "auth/invalid-credential"].includes(error.code);
      if (!unknown) throw error;
      return createUserWithEmailAndPassword(auth, email, password);
    }),
  );
});
$("#sign-out").addEventListener("click", () => void signOut(auth));

let stopHistory: Unsubscribe | undefined;
onAuthStateChanged(auth, (user) => {
  stopHistory?.();
  stopHistory = undefined;
  document.body.classList.toggle("signed-in", user !== null);
  app.hidden = user === null;
  if (!user) {
    who.textContent = "Signed out.";
    conversations.signedOut();
    return;
  }
  who.textContent = user.isAnonymous ? `Signed in anonymously (${user.uid.slice(0, 8)}…)` : `Signed in as ${user.email}`;
  stopHistory = watchHistory(user.uid, $("#history"), () => void refreshUsage());
  conversations.signedIn(user.uid);
  void refreshUsage();
});
