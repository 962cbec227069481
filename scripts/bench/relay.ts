import { createServer, request, Agent } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * The floor for `npm run bench`: a bare Node relay that passes `/v1/chat/completions` to the
 * same local provider, with keep-alive, and pipes the answer back, streamed or not. No auth,
 * no validation, no limits, no records: what any gateway pays for the second HTTP hop alone.
 * `GET /__bench` reports its CPU time, as the bench host does.
 */
const upstream = new URL(process.env.LOCAL_PROVIDER_URL!);
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

const server = createServer((req, res) => {
  if (req.method === "GET" && req.url === "/__bench") {
    const cpu = process.cpuUsage();
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ cpuMicros: cpu.user + cpu.system, rss: process.memoryUsage().rss }));
    return;
  }
  const forward = request(
    {
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: `${upstream.pathname.replace(/\/v1$/, "")}${req.url}`,
      headers: { "content-type": req.headers["content-type"] ?? "application/json", ...(req.headers["content-length"] ? { "content-length": req.headers["content-length"] } : {}) },
      agent,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  forward.on("error", () => res.destroy());
  req.pipe(forward);
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => console.log(`relay listening on http://127.0.0.1:${(server.address() as AddressInfo).port}`));
process.on("SIGTERM", () => process.exit(0));
