// A Realtime API client process: Bun's WebSocket to wss://api.openai.com/v1/realtime through the oisp
// proxy (CONNECT, TLS with the OISP CA, then the Upgrade), one text turn, then a tool round trip.
// env: OISP_PROXY, OISP_CA_FILE, OPENAI_API_KEY. Prints one JSON line with what the client received.
import fs from "node:fs";

const ca = fs.readFileSync(process.env.OISP_CA_FILE!, "utf8");
const ws = new WebSocket("wss://api.openai.com/v1/realtime?model=gpt-4o-realtime-preview", {
  headers: { Authorization: `Bearer ${process.env.OPENAI_API_KEY}`, "OpenAI-Beta": "realtime=v1" },
  proxy: process.env.OISP_PROXY,
  tls: { ca },
} as never);

const events: any[] = [];
let waiting: { type: string; resolve: (ev: any) => void } | undefined;
ws.onmessage = (m) => {
  const ev = JSON.parse(String(m.data));
  events.push(ev);
  if (waiting && ev.type === waiting.type) {
    const w = waiting;
    waiting = undefined;
    w.resolve(ev);
  }
};
const next = (type: string) => new Promise<any>((resolve) => (waiting = { type, resolve }));
const send = (ev: unknown) => ws.send(JSON.stringify(ev));

const timer = setTimeout(() => {
  console.error("timed out; events:", JSON.stringify(events.map((e) => e.type)));
  process.exit(1);
}, 15_000);
ws.onerror = (e) => {
  console.error("websocket error", (e as ErrorEvent).message ?? e);
  process.exit(1);
};

await new Promise<void>((resolve) => (ws.onopen = () => resolve()));
const created = events.find((e) => e.type === "session.created") ?? (await next("session.created"));

send({ type: "session.update", session: { instructions: "Speak briefly.", modalities: ["text"], temperature: 0.7 } });
await next("session.updated");
send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Say hello." }] } });
send({ type: "response.create" });
const first = await next("response.done");

send({ type: "session.update", session: { tools: [{ type: "function", name: "get_weather", description: "Weather", parameters: { type: "object" } }] } });
await next("session.updated");
send({ type: "conversation.item.create", item: { type: "message", role: "user", content: [{ type: "input_text", text: "Weather in Nice?" }] } });
send({ type: "response.create" });
const second = await next("response.done");
const call = second.response.output[0];
send({ type: "conversation.item.create", item: { type: "function_call_output", call_id: call.call_id, output: '{"temp_c":24}' } });
send({ type: "response.create" });
const third = await next("response.done");

clearTimeout(timer);
ws.close();
console.log(JSON.stringify({ session: created.session.id, first: first.response.output[0].content[0].text, call, third: third.response.output[0].content[0].text }));
