import { Agent, createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeFetch } from "../../src/adapters/node-fetch.js";

let server: Server;
let base = "";
const bodies: string[] = [];
beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      bodies.push(body);
      res.writeHead(201, { "content-type": "application/json", "x-seen": req.headers["x-test"] ?? "" }).end(JSON.stringify({ got: body }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("nodeFetch", () => {
  it("sends a string body with its headers, and answers status, headers and JSON as fetch does", async () => {
    const response = await nodeFetch(`${base}/x`, { method: "POST", headers: { "x-test": "yes" }, body: "héllo" });
    expect(response.status).toBe(201);
    expect(response.ok).toBe(true);
    expect(response.headers.get("x-seen")).toBe("yes");
    expect(await response.json()).toEqual({ got: "héllo" });
  });

  it("never sends a body it cannot write itself around the agents it was given (their checks would be skipped)", async () => {
    const sent = bodies.length;
    const via = { http: new Agent() };
    await expect(nodeFetch(`${base}/y`, { method: "POST", body: new Uint8Array([1, 2]) }, via)).rejects.toThrow(TypeError);
    expect(bodies.length).toBe(sent);
  });
});
