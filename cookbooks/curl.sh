#!/bin/sh
# curl: one chat completion and one streamed (SSE) completion through the sensor.
#   oisp up                                     # then, in another terminal:
#   export HTTPS_PROXY=http://127.0.0.1:8080 OPENAI_API_KEY=sk-...
#   sh cookbooks/curl.sh
# curl reads HTTPS_PROXY itself; --cacert names the OISP CA (or set CURL_CA_BUNDLE).
# Expected events: curl.expected.json.
set -eu
CA="${OISP_CA_FILE:-$(oisp ca path)}"
URL="${OPENAI_BASE_URL:-https://api.openai.com/v1}/chat/completions"

curl -sS --fail-with-body --cacert "$CA" "$URL" \
  -H "Authorization: Bearer $OPENAI_API_KEY" -H "Content-Type: application/json" \
  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello from curl."}]}'
echo

curl -sS --fail-with-body --no-buffer --cacert "$CA" "$URL" \
  -H "Authorization: Bearer $OPENAI_API_KEY" -H "Content-Type: application/json" \
  -d '{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello in three languages."}]}'
