#!/usr/bin/env python3
"""Reference hidden states of every layer for tests/test_feature_layer.c (e2h_engine_opts.feature_layer).

For each fixture model named below (tests/fixtures/models/NAME, made by tools/make_fixtures.py),
runs transformers on the fixture's tokens.json ids with output_hidden_states=True (float32,
attn_implementation="eager", no BOS, positions 0..n-1) and writes

  NAME/hidden_layer1.npy   '<f4' (n_tokens, hidden): hidden_states[1], the raw residual stream
                           after the first decoder block (what feature_layer = 1 keeps)
  NAME/hidden_final.npy    '<f4' (n_tokens, hidden): hidden_states[-1], the final-normed state

Usage: python3 tools/make_layer_fixtures.py [--only qwen2_f32,llama2_f32]
Needs torch + transformers (tools/requirements.txt pins the versions); CI never runs it.
"""
import argparse
import json
import os

import numpy as np
import torch
from transformers import AutoModelForCausalLM

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(REPO, "tests", "fixtures", "models")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="qwen2_f32,llama2_f32")
    a = ap.parse_args()
    torch.manual_seed(0)
    for name in a.only.split(","):
        d = os.path.join(FIX, name)
        ids = json.load(open(os.path.join(d, "tokens.json")))["ids"]
        m = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager")
        m.eval()
        with torch.no_grad():
            out = m(input_ids=torch.tensor([ids]), output_hidden_states=True)
        hs = [h[0].float().numpy().astype("<f4") for h in out.hidden_states]
        np.save(os.path.join(d, "hidden_layer1.npy"), np.ascontiguousarray(hs[1]))
        np.save(os.path.join(d, "hidden_final.npy"), np.ascontiguousarray(hs[-1]))
        print(f"{name}: {len(hs) - 1} layers, {len(ids)} tokens, |h1| max {np.abs(hs[1]).max():.3f}")


if __name__ == "__main__":
    main()
