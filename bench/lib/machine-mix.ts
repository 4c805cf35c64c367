// A machine's worth of variety for the store benches: 30 processes under 6 shells, 10 models of 2 providers.
import type { FixtureProcess } from "../../test/support/event-fixtures.ts";

export const MODELS: Array<["openai" | "anthropic", string]> = [
  ["openai", "gpt-4o"], ["openai", "gpt-4o-mini"], ["openai", "gpt-4.1"], ["openai", "o3-mini"], ["openai", "gpt-5"],
  ["anthropic", "claude-sonnet-4-5"], ["anthropic", "claude-haiku-4-5"], ["anthropic", "claude-opus-4-1"], ["anthropic", "claude-3-5-haiku"], ["anthropic", "claude-sonnet-4"],
];

export const PROCS: FixtureProcess[] = Array.from({ length: 30 }, (_, i) => ({
  pid: 10_000 + i,
  ppid: 9_000 + (i % 6),
  name: ["python3", "node", "cursor", "code", "claude", "aider", "java", "ruby", "go-agent", "curl"][i % 10]! + (i >= 10 ? `-${i}` : ""),
  exe: `/usr/bin/p${i}`,
}));
