// A real AI client process for end-to-end tests: the official openai / @anthropic-ai/sdk packages,
// sending through the oisp proxy the way a user's app would (Bun fetch with a proxy and the OISP CA).
// Usage: bun sdk-client.ts <scenario>   env: OISP_PROXY, OISP_CA_FILE, OPENAI_API_KEY, ANTHROPIC_API_KEY
// Prints one JSON line describing what the client received, so tests compare it with the captured events.
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import fs from "node:fs";

const proxy = process.env.OISP_PROXY!;
const ca = fs.readFileSync(process.env.OISP_CA_FILE!, "utf8");
const fetchOptions = { proxy, tls: { ca } } as never;

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

const openai = () => new OpenAI({ apiKey: process.env.OPENAI_API_KEY, fetchOptions, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: process.env.ANTHROPIC_API_KEY, fetchOptions, maxRetries: 0 });

const scenarios: Record<string, () => Promise<unknown>> = {
  async "openai-chat"() {
    const r = await openai().chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "What is the weather in Paris?" },
      ],
      tools: [weatherTool],
      temperature: 0.2,
    });
    return { id: r.id, content: r.choices[0]!.message.content, tool_calls: r.choices[0]!.message.tool_calls, usage: r.usage };
  },
  async "openai-stream"() {
    const stream = await openai().chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say hello in three languages." }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = "";
    let usage: unknown;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    return { content, usage };
  },
  async "openai-stream-tools"() {
    const stream = await openai().chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "Weather in Paris and Tokyo?" }],
      tools: [weatherTool],
      stream: true,
      stream_options: { include_usage: true },
    });
    const calls: Record<number, { id?: string; name?: string; arguments: string }> = {};
    for await (const chunk of stream) {
      for (const tc of chunk.choices[0]?.delta?.tool_calls ?? []) {
        const c = (calls[tc.index] ??= { arguments: "" });
        if (tc.id) c.id = tc.id;
        if (tc.function?.name) c.name = tc.function.name;
        c.arguments += tc.function?.arguments ?? "";
      }
    }
    return { tool_calls: Object.values(calls) };
  },
  async "openai-responses"() {
    const stream = await openai().responses.create({ model: "gpt-4.1", input: "Write a haiku about proxies.", stream: true });
    let text = "";
    for await (const event of stream) if (event.type === "response.output_text.delta") text += event.delta;
    return { content: text };
  },
  async "openai-embeddings"() {
    const r = await openai().embeddings.create({ model: "text-embedding-3-small", input: ["alpha", "beta"] });
    return { count: r.data.length, dimensions: r.data[0]!.embedding.length, usage: r.usage };
  },
  async "openai-error"() {
    try {
      await openai().chat.completions.create({ model: "rate-limited-model", messages: [{ role: "user", content: "hi" }] });
      return { error: null };
    } catch (err) {
      return { status: (err as { status?: number }).status, message: (err as Error).message };
    }
  },
  async "anthropic-message"() {
    const r = await anthropic().messages.create({
      model: "claude-sonnet-4-5",
      max_tokens: 1024,
      system: "You are a weather bot.",
      tools: [{ name: "get_weather", description: "Current weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
      messages: [{ role: "user", content: "Weather in Berlin?" }],
    });
    return { id: r.id, content: r.content, usage: r.usage, stop_reason: r.stop_reason };
  },
  async "anthropic-stream"() {
    const stream = anthropic().messages.stream({
      model: "claude-sonnet-4-5",
      max_tokens: 2048,
      thinking: { type: "enabled", budget_tokens: 1024 },
      tools: [{ name: "get_weather", description: "Current weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
      messages: [{ role: "user", content: "Think, then check the weather in Rome." }],
    });
    const message = await stream.finalMessage();
    return { id: message.id, content: message.content, usage: message.usage, stop_reason: message.stop_reason };
  },
};

const name = process.argv[2] ?? "";
const run = scenarios[name];
if (!run) {
  console.error(`unknown scenario "${name}"; one of: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
console.log(JSON.stringify(await run()));
