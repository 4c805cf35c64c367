// A Node app that does not trust the OISP CA (no NODE_EXTRA_CA_CERTS): the real openai SDK with its default
// retries, through the proxy with undici's ProxyAgent, trusting only the real provider's CA. Node verifies the
// certificate after the TLS handshake and hangs up without an alert, so each intercepted attempt fails.
// Usage: node node-openai-no-ca.mjs   env: OISP_PROXY, PROVIDER_CA_FILE, OPENAI_API_KEY
// Prints one JSON line: the answer's id and content, or the error.
import fs from "node:fs";
import OpenAI from "openai";
import { fetch, ProxyAgent } from "undici";

const dispatcher = new ProxyAgent({ uri: process.env.OISP_PROXY, requestTls: { ca: fs.readFileSync(process.env.PROVIDER_CA_FILE, "utf8") } });
const openai = new OpenAI({ apiKey: process.env.OPENAI_API_KEY, fetch, fetchOptions: { dispatcher } });
try {
  const r = await openai.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hi" }] });
  console.log(JSON.stringify({ pid: process.pid, id: r.id, content: r.choices[0].message.content }));
} catch (err) {
  console.log(JSON.stringify({ pid: process.pid, error: String(err), cause: String(err.cause ?? "") }));
}
