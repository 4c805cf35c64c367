#!/usr/bin/env python3
"""Python, standard library only: a chat completion to the OpenAI API through the sensor.

The openai Python package is not in Debian; this speaks the same HTTP API with urllib, which honours
HTTPS_PROXY. With the `openai` package (pip) the same environment works: it uses httpx, which reads
HTTPS_PROXY and SSL_CERT_FILE.

    oisp up                                     # then, in another terminal:
    export HTTPS_PROXY=http://127.0.0.1:8080 SSL_CERT_FILE="$(oisp ca path)" OPENAI_API_KEY=sk-...
    python3 cookbooks/python-openai-compatible.py

SSL_CERT_FILE replaces the default roots for this process: fine for AI APIs (the sensor presents
its CA for them), but for a whole application prefer a bundle = system roots + the OISP CA (see README).
Expected events: python-openai-compatible.expected.json.
"""
import json
import os
import ssl
import urllib.request

base = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
body = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello from Python."}],
}
req = urllib.request.Request(
    f"{base}/chat/completions",
    data=json.dumps(body).encode(),
    headers={"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}", "Content-Type": "application/json"},
)
# create_default_context() loads SSL_CERT_FILE / SSL_CERT_DIR when set (OpenSSL's default paths).
with urllib.request.urlopen(req, context=ssl.create_default_context(), timeout=60) as resp:
    answer = json.load(resp)
print(f"chat: {answer['choices'][0]['message']['content']} ({answer['usage']['total_tokens']} tokens)")
