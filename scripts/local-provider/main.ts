import { parseArgs } from "node:util";
import { startLocalProvider } from "./server.js";

/** `npm run local-provider -- --port 8787`: the local provider on its own, for trying scenarios with curl. */
const { values } = parseArgs({
  options: { port: { type: "string", default: "8787" }, host: { type: "string", default: "127.0.0.1" } },
});

const provider = await startLocalProvider({ port: Number(values.port), host: values.host });
console.log(`local model provider listening on ${provider.url}`);
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void provider.close().then(() => process.exit(0)));
}
