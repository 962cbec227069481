/**
 * What `npm start` shows of firebase-tools' output. The full output always goes to
 * `.emulators/<pid>/firebase.log`; on the terminal a newcomer should see only what needs
 * them: errors, unknown warnings, and the functions' own logs once the stack is up. The
 * warnings that are expected here (offline, no UI, Node 20 instead of nodejs22) become one
 * line, and progress chatter is dropped.
 */

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** Expected here and harmless: each is named once, in one line, at the end of start-up. */
const NOTICES: [RegExp, string][] = [
  [/Unable to fetch the CLI MOTD/, "offline (no CLI news)"],
  [/Emulator UI is not starting/, "no Emulator UI"],
  [/requested "node" version "(\d+)" doesn't match your global version "(\d+)"/, "functions run on this machine's Node (deployed: nodejs22)"],
  [/Detected demo project ID/, "demo project: no real Google services are reached"],
];

/** Progress and banner lines: the launcher prints its own summary instead. */
const CHATTER: RegExp[] = [
  /^\s*$/,
  /^[\s│┌└├┐┘┤┬┴┼─╭╮╯╰]+/u,
  /emulators: Starting emulators/,
  /functions: Watching ".*" for Cloud Functions/,
  /functions: Loaded environment variables from/,
  /functions: Loaded functions definitions from source/,
  /http function initialized/,
  /function ignored because the pubsub emulator/,
  /^Serving at port \d+/,
  /All emulators ready/,
  /Emulator Hub host:|Other reserved ports:/,
  /Issues\? Report them at/,
  /functions: Beginning execution of/,
  /functions: Finished "/,
  /"severity":"DEBUG"/,
  // Shutdown: the launcher says why it stops (firebase-tools would name a Ctrl-C nobody pressed).
  /Received SIGINT \(Ctrl-C\)|Please wait for a clean shutdown|Shutting down emulators|: Stopping .* Emulator|Stopping emulator hub|Waiting for all functions to finish/,
];

export interface QuietOutput {
  /** The line to show for one line of output, or undefined to hide it. */
  line(raw: string): string | undefined;
  /** The one line naming the expected notices seen so far, or undefined when there were none. */
  notices(): string | undefined;
}

export function quietOutput(): QuietOutput {
  const seen = new Set<string>();
  return {
    line(raw) {
      const text = raw.replace(ANSI, "");
      for (const [pattern, notice] of NOTICES) {
        if (pattern.test(text)) {
          seen.add(notice);
          return undefined;
        }
      }
      if (CHATTER.some((pattern) => pattern.test(text))) return undefined;
      return raw;
    },
    notices: () => (seen.size === 0 ? undefined : `expected here, and harmless: ${[...seen].join("; ")}`),
  };
}
