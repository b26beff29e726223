#!/usr/bin/env python3
"""The official `openai` Python client against `e2h serve` (nothing e2h-specific on the client
side). Start a server first, e.g.

    build/e2h serve -m weights/SmolLM2-135M-Instruct.Q4_1.gguf --port 8080
    python3 examples/openai_client.py --url http://127.0.0.1:8080/v1

It lists the model, runs a completion with n samples and logprobs, and streams a chat answer.
"""
import argparse
import sys

import openai


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080/v1", help="base URL of the server's /v1")
    ap.add_argument("--api-key", default="none", help="the server's --api-key (any text when it has none)")
    ap.add_argument("--max-tokens", type=int, default=24)
    a = ap.parse_args(argv)
    client = openai.OpenAI(base_url=a.url, api_key=a.api_key, max_retries=0)

    model = client.models.list().data[0].id
    print(f"model: {model}")

    # n samples of one prompt: e2h forks them from one prompt sequence (shared KV blocks)
    r = client.completions.create(model=model, prompt="The three primary colors are", n=2, seed=7,
                                  temperature=0.8, max_tokens=a.max_tokens, logprobs=1)
    for c in r.choices:
        lp = sum(c.logprobs.token_logprobs)
        print(f"completion {c.index} ({c.finish_reason}, logprob {lp:.2f}): {c.text!r}")
    print(f"usage: {r.usage.prompt_tokens} prompt + {r.usage.completion_tokens} completion tokens")

    # a streamed chat answer (server-sent events)
    print("chat: ", end="")
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What is 7 times 6? Answer briefly."}],
        max_tokens=a.max_tokens, temperature=0, stream=True)
    finish = None
    for chunk in stream:
        ch = chunk.choices[0]
        print(ch.delta.content or "", end="", flush=True)
        finish = ch.finish_reason or finish
    print(f"\nchat finish_reason: {finish}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
