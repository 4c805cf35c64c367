// Real provider clients in their own process for end-to-end tests, through the oisp proxy:
// @google/genai (Bun fetch: HTTPS_PROXY + NODE_EXTRA_CA_CERTS from the environment), the AWS SDK's
// Bedrock runtime client (node:https with a CONNECT agent from https-proxy-agent), openai's AzureOpenAI
// and the ollama client (plain HTTP through the proxy's absolute-form path).
// Usage: bun provider-clients.ts <scenario>   env: OISP_PROXY, OISP_CA_FILE, GEMINI_API_KEY,
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AZURE_OPENAI_API_KEY, OLLAMA_HOST
// Prints one JSON line describing what the client received.
import { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand, InvokeModelCommand, InvokeModelWithResponseStreamCommand } from "@aws-sdk/client-bedrock-runtime";
import { GoogleGenAI, type Content } from "@google/genai";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { HttpsProxyAgent } from "https-proxy-agent";
import { Ollama } from "ollama";
import OpenAI, { AzureOpenAI } from "openai";
import fs from "node:fs";

const proxy = process.env.OISP_PROXY!;
const ca = fs.readFileSync(process.env.OISP_CA_FILE!, "utf8");

const weatherDecl = {
  name: "get_weather",
  description: "Current weather for a city",
  parametersJsonSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

const gemini = () => new GoogleGenAI({ apiKey: process.env.GEMINI_API_KEY });

function bedrock() {
  const agent = new HttpsProxyAgent(proxy, { ca });
  return new BedrockRuntimeClient({
    region: "us-east-1",
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID!, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY! },
    requestHandler: new NodeHttpHandler({ httpsAgent: agent as never }),
    maxAttempts: 1,
  });
}

const ollama = () =>
  new Ollama({
    host: process.env.OLLAMA_HOST ?? "http://localhost:11434",
    fetch: ((url: string, init?: RequestInit) => fetch(url, { ...init, proxy } as RequestInit)) as typeof fetch,
  });

const scenarios: Record<string, () => Promise<unknown>> = {
  async "gemini-generate"() {
    const r = await gemini().models.generateContent({
      model: "gemini-2.5-flash",
      contents: "Weather in Lyon?",
      config: { systemInstruction: "Be brief.", tools: [{ functionDeclarations: [weatherDecl] }], temperature: 0.3 },
    });
    return { functionCalls: r.functionCalls, usage: r.usageMetadata };
  },
  async "gemini-stream"() {
    const stream = await gemini().models.generateContentStream({ model: "gemini-2.5-flash", contents: "Say something streamed." });
    let text = "";
    for await (const chunk of stream) text += chunk.text ?? "";
    return { text };
  },
  /** The tool round trip: functionCall answered with a functionResponse in the next turn. */
  async "gemini-tool-roundtrip"() {
    const ai = gemini();
    const contents: Content[] = [{ role: "user", parts: [{ text: "Weather in Lyon?" }] }];
    const config = { systemInstruction: "Be brief.", tools: [{ functionDeclarations: [weatherDecl] }] };
    const first = await ai.models.generateContent({ model: "gemini-2.5-flash", contents, config });
    const call = first.functionCalls![0]!;
    contents.push(first.candidates![0]!.content!);
    contents.push({ role: "user", parts: [{ functionResponse: { id: call.id, name: call.name!, response: { temperature_c: 17, sky: "clear" } } }] });
    const second = await ai.models.generateContent({ model: "gemini-2.5-flash", contents, config });
    return { call, text: second.text };
  },
  async "bedrock-converse"() {
    const r = await bedrock().send(
      new ConverseCommand({
        modelId: "anthropic.claude-3-5-haiku-20241022-v1:0",
        system: [{ text: "Be brief." }],
        messages: [{ role: "user", content: [{ text: "Weather in Madrid?" }] }],
        toolConfig: { tools: [{ toolSpec: { name: "get_weather", description: "weather", inputSchema: { json: { type: "object", properties: { city: { type: "string" } } } } } }] },
        inferenceConfig: { maxTokens: 256, temperature: 0.1 },
      }),
    );
    return { stopReason: r.stopReason, content: r.output?.message?.content, usage: r.usage };
  },
  async "bedrock-converse-stream"() {
    const r = await bedrock().send(
      new ConverseStreamCommand({ modelId: "amazon.nova-lite-v1:0", messages: [{ role: "user", content: [{ text: "Stream please." }] }] }),
    );
    let text = "";
    let usage: unknown;
    for await (const ev of r.stream!) {
      text += ev.contentBlockDelta?.delta?.text ?? "";
      if (ev.metadata) usage = ev.metadata.usage;
    }
    return { text, usage };
  },
  async "bedrock-invoke-stream"() {
    const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 200, messages: [{ role: "user", content: "Invoke with a stream." }] });
    const r = await bedrock().send(
      new InvokeModelWithResponseStreamCommand({ modelId: "anthropic.claude-3-5-haiku-20241022-v1:0", contentType: "application/json", accept: "application/json", body }),
    );
    let text = "";
    for await (const ev of r.body!) {
      const inner = JSON.parse(new TextDecoder().decode(ev.chunk!.bytes));
      if (inner.type === "content_block_delta") text += inner.delta.text;
    }
    return { text };
  },
  async "bedrock-invoke"() {
    const body = JSON.stringify({ anthropic_version: "bedrock-2023-05-31", max_tokens: 200, messages: [{ role: "user", content: "Invoke whole." }] });
    const r = await bedrock().send(new InvokeModelCommand({ modelId: "anthropic.claude-3-5-haiku-20241022-v1:0", contentType: "application/json", body }));
    return JSON.parse(new TextDecoder().decode(r.body));
  },
  async "azure-chat"() {
    const client = new AzureOpenAI({
      endpoint: "https://myres.openai.azure.com",
      apiKey: process.env.AZURE_OPENAI_API_KEY,
      apiVersion: "2024-10-21",
      deployment: "gpt4o-prod",
      fetchOptions: { proxy, tls: { ca } } as never,
      maxRetries: 0,
    });
    const r = await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "Hello Azure" }] });
    return { content: r.choices[0]!.message.content, usage: r.usage };
  },
  /** LM Studio's OpenAI-compatible server, plain HTTP on localhost:1234, through the proxy. */
  async "lmstudio-chat"() {
    const client = new OpenAI({ baseURL: process.env.LMSTUDIO_URL ?? "http://127.0.0.1:1234/v1", apiKey: "lm-studio", fetchOptions: { proxy } as never, maxRetries: 0 });
    const r = await client.chat.completions.create({ model: "qwen2.5-7b-instruct", messages: [{ role: "user", content: "Local hello" }] });
    return { content: r.choices[0]!.message.content };
  },
  async "ollama-chat-stream"() {
    const stream = await ollama().chat({ model: "llama3.2", messages: [{ role: "user", content: "Why is the sky blue?" }], stream: true });
    let text = "";
    let evalCount = 0;
    for await (const part of stream) {
      text += part.message.content;
      if (part.done) evalCount = part.eval_count;
    }
    return { text, evalCount };
  },
  async "ollama-chat-tools"() {
    const r = await ollama().chat({
      model: "llama3.2",
      messages: [{ role: "user", content: "Weather in Oslo?" }],
      tools: [{ type: "function", function: { name: "get_weather", description: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } } }],
    });
    return { toolCalls: r.message.tool_calls };
  },
  async "ollama-generate"() {
    const r = await ollama().generate({ model: "llama3.2", prompt: "Complete this." });
    return { response: r.response };
  },
};

const scenario = process.argv[2] ?? "";
const run = scenarios[scenario];
if (!run) {
  console.error(`unknown scenario ${scenario}; known: ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
console.log(JSON.stringify(await run()));
