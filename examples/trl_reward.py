#!/usr/bin/env python3
"""A TRL reward function over `e2h serve`'s process reward endpoint (/v1/prm/score).

TRL's trainers (GRPOTrainer, ...) call reward functions as `reward(prompts, completions, **kw)
-> list[float]`, with prompts and completions either strings (standard format) or chat message
lists (conversational format). `make_reward` returns such a function: every completion is
split into steps on the PRM's delimiter by the server, scored step by step, and reduced to one
number by an aggregate ("min" by default: a solution is as good as its worst step, as in the
easy-to-hard paper). Completions without any text get 0.0.

    build/e2h serve -m weights/SmolLM2-135M-Instruct.Q4_1.gguf \
        --prm-head weights/e2h_head_smollm2_easy.safetensors --port 8080
    python3 examples/trl_reward.py --url http://127.0.0.1:8080

    # in a TRL script:
    #   from trl_reward import make_reward
    #   trainer = GRPOTrainer(..., reward_funcs=[make_reward("http://127.0.0.1:8080")])

Only the standard library is used (urllib), so the function can run inside any trainer.
"""
import argparse
import json
import sys
import urllib.request


def _text(x, role):
    """The text of a prompt / completion: a string as is; for a message list, the content of
    the last message of `role` (the user's problem, the assistant's answer)."""
    if isinstance(x, str):
        return x
    for m in reversed(x or []):
        if m.get("role") == role:
            c = m.get("content")
            return c if isinstance(c, str) else "".join(p.get("text", "") for p in c or [])
    return ""


def make_reward(url, api_key=None, agg="min", timeout=300):
    """A TRL reward function scoring completions with the PRM of the e2h server at url."""
    endpoint = url.rstrip("/") + "/v1/prm/score"
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = "Bearer " + api_key

    def reward(prompts, completions, **kwargs):
        problems = [_text(p, "user") for p in prompts]
        answers = [_text(c, "assistant") for c in completions]
        todo = [i for i, s in enumerate(answers) if s.strip()]
        out = [0.0] * len(answers)
        if not todo:
            return out
        items = [{"problem": problems[i], "solution": answers[i]} for i in todo]
        req = urllib.request.Request(endpoint, data=json.dumps({"items": items}).encode(), headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            results = json.loads(r.read())["results"]
        for i, res in zip(todo, results):
            v = res["agg"][agg]
            out[i] = float(v) if v is not None else 0.0
        return out

    reward.__name__ = f"e2h_prm_{agg}"  # TRL logs rewards under the function's name
    return reward


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--agg", default="min", choices=["min", "prod", "mean", "last"])
    a = ap.parse_args(argv)
    reward = make_reward(a.url, a.api_key, a.agg)
    prompts = ["What is 2+3?",
               [{"role": "user", "content": "What is 2+3?"}],
               "What is 2+3?"]
    completions = ["We add 2 and 3.\n\n2 + 3 = 5.\n\n# Answer\n\n5",
                   [{"role": "assistant", "content": "2 + 3 = 6.\n\n# Answer\n\n6"}],
                   ""]
    scores = reward(prompts, completions)
    print(json.dumps({"rewards": scores}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
