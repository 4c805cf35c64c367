// Node + the official @anthropic-ai/sdk with a tool: Claude asks for get_weather, the program runs it and
// sends the result back, Claude answers. Two calls, one tool call, all visible in the sensor.
//   oisp up                                   # then, in another terminal:
//   export HTTPS_PROXY=http://127.0.0.1:8080 NODE_EXTRA_CA_CERTS="$(oisp ca path)" ANTHROPIC_API_KEY=sk-ant-...
//   node cookbooks/node-anthropic-tools.mjs
// Expected events: node-anthropic-tools.expected.json.
import "./proxy-setup.mjs";
import Anthropic from "@anthropic-ai/sdk";

const client = new Anthropic({ maxRetries: 0 });
const model = "claude-sonnet-4-5";
const tools = [
  {
    name: "get_weather",
    description: "Current weather for a city",
    input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
];
const getWeather = ({ city }) => ({ city, temperature_c: 18, sky: "clear" }); // the "tool": local code

const messages = [{ role: "user", content: "What's the weather in Berlin?" }];
for (let turn = 0; turn < 4; turn++) {
  const reply = await client.messages.create({ model, max_tokens: 512, tools, messages });
  messages.push({ role: "assistant", content: reply.content });
  const uses = reply.content.filter((b) => b.type === "tool_use");
  if (reply.stop_reason !== "tool_use" || uses.length === 0) {
    console.log(reply.content.filter((b) => b.type === "text").map((b) => b.text).join(""));
    break;
  }
  for (const u of uses) console.log(`tool: ${u.name}(${JSON.stringify(u.input)})`);
  messages.push({
    role: "user",
    content: uses.map((u) => ({ type: "tool_result", tool_use_id: u.id, content: JSON.stringify(getWeather(u.input)) })),
  });
}
