// One process sending several HTTP requests in order through the oisp proxy, like an agent taking turns
// (Bun fetch with the proxy and the OISP CA). The turns come as JSON in the TURNS environment variable
// (not argv: the command line is captured, and the turns carry API keys):
//   [{ "url": "...", "headers": {...}, "body": {...} }, ...]
// A body string "$LAST_RESPONSE_ID" is replaced by the previous response's `id` (Responses API chains).
// Prints one JSON line: every response's status and parsed JSON (or text).
import fs from "node:fs";

interface Turn {
  url: string;
  headers?: Record<string, string>;
  body: unknown;
}

const proxy = process.env.OISP_PROXY!;
const ca = fs.readFileSync(process.env.OISP_CA_FILE!, "utf8");
const turns = JSON.parse(process.env.TURNS ?? "[]") as Turn[];
const results: Array<{ status: number; body: unknown }> = [];
let lastId: string | undefined;

for (const turn of turns) {
  const body = JSON.stringify(turn.body).replaceAll('"$LAST_RESPONSE_ID"', JSON.stringify(lastId ?? null));
  const res = await fetch(turn.url, {
    method: "POST",
    headers: { "content-type": "application/json", ...turn.headers },
    body,
    proxy,
    tls: { ca },
  } as RequestInit);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    const completed = /"id":"(resp_[^"]+)"/.exec(text);
    if (completed) parsed = { id: completed[1], stream: true };
  }
  if (typeof parsed === "object" && parsed !== null && typeof (parsed as { id?: unknown }).id === "string") lastId = (parsed as { id: string }).id;
  results.push({ status: res.status, body: parsed });
}
console.log(JSON.stringify(results));
