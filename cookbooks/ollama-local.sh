#!/bin/sh
# A local Ollama server (plain HTTP on localhost:11434) through the sensor: no TLS, so no CA needed,
# but the client must use the proxy for localhost (most tools skip proxies for localhost: NO_PROXY).
#   oisp up                                     # then, in another terminal, with Ollama running:
#   sh cookbooks/ollama-local.sh
# Expected events: ollama-local.expected.json.
set -eu
PROXY="${HTTP_PROXY:-http://127.0.0.1:8080}"
OLLAMA="${OLLAMA_HOST:-http://localhost:11434}"

curl -sS --fail-with-body --proxy "$PROXY" --noproxy '' "$OLLAMA/api/chat" \
  -d '{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"Say hello from Ollama."}]}'
echo
