// Node + the official openai SDK: one chat completion and one streamed completion, through the sensor.
//   oisp up                                   # then, in another terminal:
//   export HTTPS_PROXY=http://127.0.0.1:8080 NODE_EXTRA_CA_CERTS="$(oisp ca path)" OPENAI_API_KEY=sk-...
//   node cookbooks/node-openai.mjs
// Expected events: node-openai.expected.json (what `oisp` stores for these two calls).
import "./proxy-setup.mjs";
import OpenAI from "openai";

const client = new OpenAI({ maxRetries: 0 });

const chat = await client.chat.completions.create({
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "You are terse." },
    { role: "user", content: "Say hello." },
  ],
});
console.log(`chat: ${chat.choices[0].message.content} (${chat.usage?.total_tokens} tokens)`);

const stream = await client.chat.completions.create({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Say hello in three languages." }],
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
console.log(`stream: ${text}`);
