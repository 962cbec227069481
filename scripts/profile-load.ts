import OpenAI from "openai";
const r = await fetch(`http://${process.env.FIREBASE_AUTH_EMULATOR_HOST}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=any`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ returnSecureToken: true }) });
const { idToken } = (await r.json()) as { idToken: string };
const url = process.argv[2]!;
const c = new OpenAI({ baseURL: `${url}/api/v1`, apiKey: idToken, maxRetries: 0 });
const msgs = [{ role: "user" as const, content: "hello there" }];
const t = performance.now();
for (let i = 0; i < 3000; i++) {
  await c.chat.completions.create({ model: "local-mini", messages: msgs });
  await fetch(`${url}/executePrompt`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${idToken}` }, body: JSON.stringify({ data: { model: "local-mini", messages: msgs } }) }).then((x) => x.json());
}
console.log("per pair ms", ((performance.now() - t) / 3000).toFixed(3));
