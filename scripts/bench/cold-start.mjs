// Cold start, measured in a fresh Node process (plain JS: no TypeScript loader in the way).
//   node cold-start.mjs baseline   → ms to import firebase-functions alone
//   node cold-start.mjs entry      → ms to import functions/lib/index.js, then to answer the
//                                    first /health and the first executePrompt (BENCH_TOKEN)
// Express is loaded before the clock starts: on the platform the framework has loaded it already.
import express from "express";

const mode = process.argv[2];
const t0 = performance.now();
if (mode === "baseline") {
  await import("firebase-functions");
  console.log(JSON.stringify({ importMs: performance.now() - t0 }));
  process.exit(0);
}

const entry = await import(new URL("../../functions/lib/index.js", import.meta.url).href);
const importMs = performance.now() - t0;
const app = express();
app.use(express.json({ verify: (req, _res, buf) => (req.rawBody = buf) }));
app.post("/executePrompt", entry.executePrompt);
app.use("/api", entry.api);
const server = await new Promise((resolve) => {
  const s = app.listen(0, "127.0.0.1", () => resolve(s));
});
const base = `http://127.0.0.1:${server.address().port}`;
const health = await fetch(`${base}/api/health`);
await health.text();
const healthMs = performance.now() - t0;
const exec = await fetch(`${base}/executePrompt`, {
  method: "POST",
  headers: { "content-type": "application/json", authorization: `Bearer ${process.env.BENCH_TOKEN}` },
  body: JSON.stringify({ data: { model: "local-mini", messages: [{ role: "user", content: "hello" }] } }),
});
const body = await exec.json();
const executeMs = performance.now() - t0;
console.log(JSON.stringify({ importMs, healthMs, executeMs, healthStatus: health.status, executeOk: Boolean(body.result) }));
process.exit(0);
