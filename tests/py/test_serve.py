"""`e2h serve` end to end with real clients (the official `openai` client, raw sockets), no
mocks: completions, chat, streaming, logprobs, n, stop, concurrency (batched results equal
the same requests run one at a time), the malformed-request suite (bad JSON, wrong types,
bounds, auth, oversized body, a slow client timed out, unknown paths), PRM / search / OpenRLHF
reward endpoints, a client that hangs up mid-stream, and SIGTERM shutdown."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
E2H = os.environ.get("E2H_BIN", os.path.join(ROOT, os.environ.get("BUILD", "build"), "e2h"))
DEFAULT = os.path.join(ROOT, "weights", "SmolLM2-135M-Instruct.Q4_1.gguf")
HEAD = os.path.join(ROOT, "weights", "e2h_head_smollm2_easy.safetensors")
KEY = "test-key-123"

pytestmark = pytest.mark.skipif(not os.path.exists(DEFAULT) or not os.path.exists(HEAD),
                                reason="default model or head missing (run `make model`)")
openai = pytest.importorskip("openai", reason="the openai client is not installed (tools/install_deps.sh)")


class Server:
    def __init__(self, tmp, *extra):
        self.log = open(os.path.join(tmp, "serve.log"), "w+")
        prm = [] if "--prm" in extra else ["--prm-head", HEAD]
        args = [E2H, "serve", "-m", DEFAULT, "--port", "0", "--api-key", KEY, *prm,
                "--timeout", "2", "--max-n", "8", "--max-tokens", "256", "--max-body", "65536", "--max-prompt", "1024", *extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.log)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.stderr())
            if m:
                self.port = int(m.group(1))
                break
            time.sleep(0.1)
        assert self.port, "server did not start: " + self.stderr()
        self.url = f"http://127.0.0.1:{self.port}"

    def stderr(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def client(self):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=KEY, max_retries=0, timeout=120)

    def raw(self, method, path, body=None, headers=None, auth=True):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        h = dict(headers or {})
        if auth:
            h["Authorization"] = "Bearer " + KEY
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def post(self, path, obj, **kw):
        st, h, data = self.raw("POST", path, obj, **kw)
        return st, json.loads(data)

    def metrics(self):
        st, _, data = self.raw("GET", "/metrics")
        assert st == 200
        return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(e2h_\w+) (\S+)$", data.decode(), re.M)}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        self.log.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = Server(str(tmp_path_factory.mktemp("serve")))
    yield s
    s.stop()
    assert s.proc.returncode == 0, s.stderr()


def generate_cli(*args):
    p = subprocess.run([E2H, "generate", "-m", DEFAULT, "--json", *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.splitlines()[0])


# ------------------------------------------------------------------ OpenAI API

def test_models_and_health(srv):
    ids = [m.id for m in srv.client().models.list().data]
    assert ids == ["SmolLM2-135M-Instruct.Q4_1.gguf"]
    st, _, body = srv.raw("GET", "/health", auth=False)
    assert st == 200 and json.loads(body)["status"] == "ok"


def test_completion_equals_generate_cli(srv):
    r = srv.client().completions.create(model="x", prompt="The capital of France is", max_tokens=12, temperature=0)
    ref = generate_cli("-p", "The capital of France is", "-n", "12")
    assert r.choices[0].text == ref["samples"][0]["text"]
    assert r.usage.completion_tokens == ref["samples"][0]["tokens"]
    assert r.usage.prompt_tokens == ref["prompt_tokens"]
    assert r.choices[0].finish_reason in ("stop", "length")


def test_chat_equals_generate_cli(srv):
    r = srv.client().chat.completions.create(
        model="x", messages=[{"role": "user", "content": "What is 2+3?"}], max_tokens=16, temperature=0)
    ref = generate_cli("--chat", "-p", "What is 2+3?", "-n", "16")
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == ref["samples"][0]["text"]
    assert r.choices[0].finish_reason == ("stop" if ref["samples"][0]["stop"] == "eos" else "length")


def test_sampled_n_seed_is_reproducible(srv):
    c = srv.client()
    kw = dict(model="x", prompt="Once upon a time", max_tokens=10, temperature=0.9, n=3, seed=11)
    a, b = c.completions.create(**kw), c.completions.create(**kw)
    assert len(a.choices) == 3 and [x.text for x in a.choices] == [x.text for x in b.choices]
    assert len({x.text for x in a.choices}) > 1  # different samples
    ref = generate_cli("-p", "Once upon a time", "-n", "10", "--temp", "0.9", "--samples", "3", "--seed", "11")
    assert [x.text for x in a.choices] == [s["text"] for s in ref["samples"]]


def test_stream_equals_non_stream(srv):
    c = srv.client()
    kw = dict(model="x", prompt="List three colors:", max_tokens=20, temperature=0.7, seed=3)
    full = c.completions.create(**kw).choices[0].text
    parts = [ch.choices[0].text for ch in c.completions.create(stream=True, **kw)]
    assert "".join(parts) == full and len(parts) >= 2
    msgs = [{"role": "user", "content": "Say hello."}]
    full = c.chat.completions.create(model="x", messages=msgs, max_tokens=12, temperature=0).choices[0].message.content
    chunks = list(c.chat.completions.create(model="x", messages=msgs, max_tokens=12, temperature=0, stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == full
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    chunks = list(c.chat.completions.create(model="x", messages=msgs, max_tokens=12, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1


def test_logprobs(srv):
    c = srv.client()
    r = c.completions.create(model="x", prompt="1, 2, 3,", max_tokens=6, temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == r.usage.completion_tokens == len(lp.token_logprobs) == len(lp.top_logprobs)
    for tok, l, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert l <= 0 and 1 <= len(top) <= 3
        assert max(top.values()) >= l - 1e-4  # greedy: the chosen token is the most likely
    assert "".join(lp.tokens) == r.choices[0].text
    r = c.chat.completions.create(model="x", messages=[{"role": "user", "content": "Hi"}], max_tokens=5,
                                  temperature=0, logprobs=True, top_logprobs=2)
    content = r.choices[0].logprobs.content
    assert content and all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)
    assert abs(content[0].logprob - content[0].top_logprobs[0].logprob) < 1e-4


def test_stop_string(srv):
    c = srv.client()
    base = c.completions.create(model="x", prompt="1, 2, 3,", max_tokens=12, temperature=0).choices[0].text
    assert "," in base
    r = c.completions.create(model="x", prompt="1, 2, 3,", max_tokens=12, temperature=0, stop=[","])
    assert r.choices[0].text == base[:base.index(",")] and r.choices[0].finish_reason == "stop"
    parts = [ch.choices[0].text for ch in
             c.completions.create(model="x", prompt="1, 2, 3,", max_tokens=12, temperature=0, stop=",", stream=True)]
    assert "".join(parts) == r.choices[0].text
    # a stream that stops at its first token can finish before its handler thread wakes up
    # (the prompt is cached): it must still be answered as a stream (was a 500 "out of memory")
    first = base[:1]
    for _ in range(10):
        chunks = list(c.completions.create(model="x", prompt="1, 2, 3,", max_tokens=12, temperature=0,
                                           stop=[first], stream=True))
        assert "".join(ch.choices[0].text for ch in chunks if ch.choices) == ""


def test_concurrent_equals_serial(srv):
    c = srv.client()
    reqs = [dict(prompt=p, max_tokens=m, temperature=t, seed=s, n=n)
            for p, m, t, s, n in [("The sky is", 14, 0.8, 1, 1), ("Water boils at", 9, 0, 0, 1),
                                  ("My favourite food", 12, 1.0, 5, 2), ("The sky is", 14, 0.8, 2, 1),
                                  ("In 1492,", 16, 0.6, 9, 3), ("Cats and dogs", 7, 0.9, 4, 1)]]
    serial = [[x.text for x in c.completions.create(model="x", **q).choices] for q in reqs]
    out = [None] * len(reqs)

    def go(i):
        out[i] = [x.text for x in srv.client().completions.create(model="x", **reqs[i]).choices]
    ts = [threading.Thread(target=go, args=(i,)) for i in range(len(reqs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == serial


def test_repeated_prompt_prefills_almost_nothing(srv):
    """A second request with the same ~100-token prompt finds its blocks in the prefix cache:
    only the last partial block (< 16 tokens) and the new tokens are computed."""
    prompt = "Problem: " + " ".join(f"item {i}," for i in range(40)) + " What is the next item?"
    c = srv.client()

    def computed():
        m0 = srv.metrics()["e2h_forward_tokens_total"]
        r = c.completions.create(model="x", prompt=prompt, max_tokens=2, temperature=0)
        time.sleep(0.3)  # the scheduler publishes the counters after the step
        return srv.metrics()["e2h_forward_tokens_total"] - m0, r.usage.prompt_tokens
    first, n_prompt = computed()
    second, _ = computed()
    assert n_prompt > 80 and first >= n_prompt
    assert second <= 16 + 2, (first, second, n_prompt)


def test_metrics(srv):
    m = srv.metrics()
    for k in ("e2h_requests_total", "e2h_generated_tokens_total", "e2h_queue_depth", "e2h_kv_blocks_used",
              "e2h_kv_blocks_cached", "e2h_generation_tokens_per_second"):
        assert k in m
    assert m["e2h_requests_total"] >= 1 and m["e2h_generated_tokens_total"] > 0


# ------------------------------------------------------------------ malformed requests

def err_of(st_body, status, needle):
    st, body = st_body
    assert st == status, body
    assert needle in body["error"]["message"], body
    assert set(body["error"]) >= {"message", "type", "code"}


def test_bad_json_and_types(srv):
    st, _, data = srv.raw("POST", "/v1/completions", '{"prompt": "x", ')
    assert st == 400 and "malformed JSON" in json.loads(data)["error"]["message"]
    err_of(srv.post("/v1/completions", [1, 2]), 400, "JSON object")
    err_of(srv.post("/v1/completions", {"prompt": 5}), 400, "prompt")
    err_of(srv.post("/v1/completions", {"prompt": "x", "max_tokens": "9"}), 400, "max_tokens")
    err_of(srv.post("/v1/completions", {"prompt": "x", "max_tokens": 2.5}), 400, "max_tokens")
    err_of(srv.post("/v1/completions", {"prompt": "x", "temperature": -1}), 400, "temperature")
    err_of(srv.post("/v1/completions", {"prompt": "x", "n": 1000000}), 400, "'n'")
    err_of(srv.post("/v1/completions", {"prompt": "x", "n": 1e300}), 400, "'n'")
    err_of(srv.post("/v1/completions", {"prompt": "x", "max_tokens": 100000}), 400, "max_tokens")
    err_of(srv.post("/v1/completions", {"prompt": "x", "stop": [1]}), 400, "stop")
    err_of(srv.post("/v1/completions", {"prompt": "x", "stream": "yes"}), 400, "stream")
    err_of(srv.post("/v1/completions", {"prompt": "x", "logprobs": 9}), 400, "logprobs")
    err_of(srv.post("/v1/completions", {"prompt": ""}), 400, "prompt")
    err_of(srv.post("/v1/chat/completions", {"messages": "hi"}), 400, "messages")
    err_of(srv.post("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]}), 400, "role")
    err_of(srv.post("/v1/chat/completions", {"messages": [{"role": "user", "content": 3}]}), 400, "content")
    err_of(srv.post("/v1/completions", {"prompt": "word " * 5000}), 400, "prompt")
    err_of(srv.post("/v1/completions", {"prompt": "x", "presence_penalty": 0.5}), 400, "presence_penalty")
    err_of(srv.post("/v1/completions", {"prompt": "x", "logit_bias": {"5": 10}}), 400, "logit_bias")
    err_of(srv.post("/v1/completions", {"prompt": "x", "echo": True}), 400, "echo")
    st, ok = srv.post("/v1/completions", {"prompt": "x", "max_tokens": 1, "presence_penalty": 0, "logit_bias": {}})
    assert st == 200, ok
    with pytest.raises(openai.BadRequestError):
        srv.client().completions.create(model="x", prompt="x", n=99)


def test_auth_paths_and_size(srv):
    st, _, _ = srv.raw("GET", "/v1/models", auth=False)
    assert st == 401
    st, _, _ = srv.raw("POST", "/v1/completions", {"prompt": "x"}, headers={"Authorization": "Bearer nope"}, auth=False)
    assert st == 401
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=srv.url + "/v1", api_key="wrong", max_retries=0).models.list()
    assert srv.raw("GET", "/nowhere")[0] == 404
    assert srv.raw("GET", "/v1/completions")[0] == 405
    st, _, data = srv.raw("POST", "/v1/completions", json.dumps({"prompt": "x" * 70000}))
    assert st == 413, data


def test_slow_client_is_timed_out(srv):
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n")
    s.settimeout(15)
    t0 = time.time()
    try:
        data = s.recv(4096)  # the server closes the idle connection (--timeout 2)
    except ConnectionResetError:
        data = b""
    assert data == b"" and time.time() - t0 < 12
    s.close()
    assert srv.raw("GET", "/health", auth=False)[0] == 200


def test_disconnect_mid_stream_frees_sequences(srv):
    s = socket.create_connection(("127.0.0.1", srv.port))
    body = json.dumps({"prompt": "Tell me a long story about a dragon.", "max_tokens": 256, "stream": True,
                       "temperature": 0.8, "seed": 1, "n": 4})
    s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
    s.settimeout(30)
    got = b""
    while b"data: " not in got:
        got += s.recv(4096)
    s.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        m = srv.metrics()
        if m["e2h_running_requests"] == 0 and m["e2h_kv_blocks_used"] == 0:
            break
        time.sleep(0.05)
    assert m["e2h_running_requests"] == 0 and m["e2h_kv_blocks_used"] == 0, m
    assert m["e2h_generated_tokens_total"] < 1e9


# ------------------------------------------------------------------ PRM, search, reward

STEPS = ["We add 2 and 3.", "2 + 3 = 5.", "# Answer\n\n5"]


def test_prm_score_matches_score_cli(srv, tmp_path):
    st, body = srv.post("/v1/prm/score", {"problem": "What is 2+3?", "steps": STEPS})
    assert st == 200, body
    assert body["protocol"] == "head" and len(body["step_scores"]) == 3
    assert all(0 <= x <= 1 for x in body["step_scores"])
    assert abs(body["agg"]["min"] - min(body["step_scores"])) < 1e-6
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"problem": "What is 2+3?", "steps": STEPS}) + "\n")
    p = subprocess.run([E2H, "score", "--prm", HEAD, "--prm-protocol", "head", "--policy", DEFAULT, "-i", str(inp),
                        "-o", "-"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    ref = json.loads(p.stdout.splitlines()[0])["step_scores"]
    assert body["step_scores"] == pytest.approx(ref, abs=1e-6)
    st, b2 = srv.post("/v1/prm/score", {"items": [{"problem": "What is 2+3?", "steps": STEPS},
                                                  {"problem": "What is 2+3?", "solution": "\n\n".join(STEPS)}]})
    assert st == 200 and len(b2["results"]) == 2
    assert b2["results"][0]["step_scores"] == pytest.approx(ref, abs=1e-6)
    # the solution splits on "\n\n" into the same steps ("# Answer" joins the answer after it)
    assert b2["results"][1]["step_scores"] == pytest.approx(ref, abs=1e-6)


def test_prm_bad_input(srv):
    err_of(srv.post("/v1/prm/score", {"problem": "x", "steps": "one"}), 400, "steps")
    err_of(srv.post("/v1/prm/score", {"problem": "x", "steps": []}), 400, "steps")
    err_of(srv.post("/v1/prm/score", {"problem": "x", "steps": ["ok", "  "]}), 400, "steps[1]")
    err_of(srv.post("/v1/prm/score", {"steps": ["a"]}), 400, "problem")
    err_of(srv.post("/v1/prm/score", {"items": [{"problem": "x", "steps": ["a"]}, 7]}), 400, "items[1]")
    err_of(srv.post("/v1/search", {"problem": "x", "method": "magic"}), 400, "method")
    err_of(srv.post("/v1/search", {"problem": "x", "method": "beam", "n": 4, "m": 3}), 400, "divide")
    err_of(srv.post("/v1/reward", {"query": "text"}), 400, "query")
    err_of(srv.post("/v1/reward", {"query": ["a", "b"], "prompts": ["a"]}), 400, "prompts")


def test_search_bon(srv):
    st, body = srv.post("/v1/search", {"problem": "What is 2+3?", "method": "bon", "n": 2, "max_tokens": 24,
                                       "seed": 5})
    assert st == 200, body
    assert body["method"] == "bon" and len(body["samples"]) == 2
    for s in body["samples"]:
        assert len(s["steps"]) == len(s["step_scores"]) and s["tokens"] <= 24
    st2, body2 = srv.post("/v1/search", {"problem": "What is 2+3?", "method": "bon", "n": 2, "max_tokens": 24,
                                         "seed": 5})
    assert [s["text"] for s in body2["samples"]] == [s["text"] for s in body["samples"]]


def test_openrlhf_reward(srv):
    prompt = "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    resp = "\n\n".join(STEPS)
    st, body = srv.post("/v1/reward", {"query": [prompt + resp + "<|im_end|>", prompt],
                                       "prompts": [prompt, prompt], "labels": ["5", "5"]})
    assert st == 200, body
    _, ref = srv.post("/v1/prm/score", {"problem": "What is 2+3?", "solution": resp})
    assert body["rewards"][0] == pytest.approx(ref["agg"]["min"], abs=1e-6)
    assert body["rewards"][1] == 0  # an empty response has no steps
    st, same = srv.post("/get_reward", {"query": [prompt + resp], "prompts": [prompt], "labels": ["5"]})
    assert st == 200 and same["rewards"] == body["rewards"][:1]


# ------------------------------------------------------------------ shutdown

def test_sigterm_finishes_in_flight_and_frees_pool(tmp_path):
    s = Server(str(tmp_path))
    res = {}

    def go():
        try:
            r = s.client().completions.create(model="x", prompt="Count: 1, 2,", max_tokens=48, temperature=0)
            res["r"] = r
        except Exception as e:  # noqa: BLE001 - the test reports it below
            res["e"] = e
    t = threading.Thread(target=go)
    t.start()
    deadline = time.time() + 30
    while time.time() < deadline and s.metrics()["e2h_running_requests"] < 1:
        time.sleep(0.01)
    s.proc.send_signal(signal.SIGTERM)
    t.join(timeout=120)
    assert "r" in res, res
    assert res["r"].usage.completion_tokens >= 1
    s.proc.wait(timeout=60)
    log = s.stderr()
    s.stop()
    assert s.proc.returncode == 0, log
    assert re.search(r"KV blocks used 0 of \d+", log), log
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=2)


# ------------------------------------------------------------------ examples

def test_examples_against_live_server(srv):
    p = subprocess.run(["python3", os.path.join(ROOT, "examples", "openai_client.py"), "--url", srv.url + "/v1",
                        "--api-key", KEY, "--max-tokens", "8"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "completion 0 (" in p.stdout and "completion 1 (" in p.stdout and "chat finish_reason:" in p.stdout
    p = subprocess.run(["python3", os.path.join(ROOT, "examples", "trl_reward.py"), "--url", srv.url,
                        "--api-key", KEY], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    rewards = json.loads(p.stdout)["rewards"]
    _, ref = srv.post("/v1/prm/score", {"problem": "What is 2+3?", "solution": "We add 2 and 3.\n\n2 + 3 = 5.\n\n# Answer\n\n5"})
    assert len(rewards) == 3 and rewards[2] == 0.0
    assert rewards[0] == pytest.approx(ref["agg"]["min"], abs=1e-6) and 0 <= rewards[1] <= 1


def test_queue_full_gives_429(tmp_path):
    # one running request holds the whole (tiny) pool; one waits; the next is refused
    s = Server(str(tmp_path), "--max-queue", "1", "--kv-mem", "0.006", "--max-tokens", "64")
    try:
        body = {"prompt": "Count: 1, 2,", "max_tokens": 64, "temperature": 0}
        res = []
        ts = [threading.Thread(target=lambda: res.append(s.post("/v1/completions", body)[0])) for _ in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=120)
        assert 429 in res and 200 in res, res
        st, h, _ = s.raw("GET", "/metrics")
        assert st == 200 and s.metrics()["e2h_requests_rejected_total"] >= 1
    finally:
        s.stop()
    assert s.proc.returncode == 0, s.stderr()


def test_mutated_bodies_never_crash(srv):
    """Byte-level mutations of valid requests: every answer is a JSON 200 or 4xx, and the
    server stays up (run under the ASan binary with E2H_BIN=build-asan/e2h)."""
    import random
    rnd = random.Random(1234)
    bases = [json.dumps({"prompt": "Hi", "max_tokens": 2, "n": 2, "stop": ["\n"], "logprobs": 1, "seed": 3}),
             json.dumps({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "top_logprobs": 2,
                         "logprobs": True}),
             json.dumps({"problem": "What is 1+1?", "steps": ["1+1=2.", "# Answer\n\n2"]})]
    paths = ["/v1/completions", "/v1/chat/completions", "/v1/prm/score"]
    alphabet = b'{}[]":,0123456789-+.eE \\ntruefalsnul\x00\xff\xc3'
    for i in range(120):
        k = rnd.randrange(3)
        b = bytearray(bases[k].encode())
        for _ in range(rnd.randint(1, 4)):
            op, pos = rnd.randrange(3), rnd.randrange(len(b))
            if op == 0:
                b[pos] = rnd.choice(alphabet)
            elif op == 1:
                b.insert(pos, rnd.choice(alphabet))
            else:
                del b[pos]
        st, _, data = srv.raw("POST", paths[k], bytes(b))
        assert st in (200, 400), (st, bytes(b), data)
        if st == 400:
            assert "error" in json.loads(data)
    assert srv.raw("GET", "/health", auth=False)[0] == 200


FIX = os.path.join(ROOT, "tests", "fixtures", "prm")


@pytest.mark.skipif(not os.path.exists(os.path.join(FIX, "qwen_prm", "expected.json")),
                    reason="tests/fixtures/prm not present (tools/make_prm_fixtures.py)")
def test_model_prm_scores_match_torch_reference(tmp_path):
    """A PRM model (the tiny Qwen2.5-Math-PRM-shaped fixture) served beside the policy: the
    endpoint's step scores equal the torch reference's (tools/make_prm_fixtures.py), batched,
    and generation still works with the PRM attached."""
    x = json.load(open(os.path.join(FIX, "qwen_prm", "expected.json"), encoding="utf-8"))
    s = Server(str(tmp_path), "--prm", os.path.join(FIX, "qwen_prm"))
    try:
        items = [{"problem": c["problem"], "steps": c["steps"]} for c in x["cases"]]
        st, body = s.post("/v1/prm/score", {"items": items})
        assert st == 200, body
        assert body["protocol"] == "qwen-prm"
        for res, c in zip(body["results"], x["cases"]):
            assert res["step_scores"] == pytest.approx(c["step_scores"], abs=1e-4)
        r = s.client().completions.create(model="x", prompt="The capital of France is", max_tokens=4, temperature=0)
        assert r.usage.completion_tokens >= 1
    finally:
        s.stop()
    assert s.proc.returncode == 0, s.stderr()


def test_sigterm_rejects_queued_requests(tmp_path):
    # the tiny pool runs one request at a time: the second waits in the queue when SIGTERM comes
    s = Server(str(tmp_path), "--kv-mem", "0.006", "--max-tokens", "64")
    body = {"prompt": "Count: 1, 2,", "max_tokens": 64, "temperature": 0}
    res = {}

    def go(k):
        res[k] = s.post("/v1/completions", body)
    ts = [threading.Thread(target=go, args=(k,)) for k in range(2)]
    for t in ts:
        t.start()
    deadline = time.time() + 60
    while time.time() < deadline:
        m = s.metrics()
        if m["e2h_running_requests"] >= 1 and m["e2h_queue_depth"] >= 1:
            break
        time.sleep(0.01)
    s.proc.send_signal(signal.SIGTERM)
    for t in ts:
        t.join(timeout=120)
    s.proc.wait(timeout=60)
    log = s.stderr()
    s.stop()
    assert sorted(st for st, _ in res.values()) == [200, 503], res
    assert s.proc.returncode == 0 and re.search(r"KV blocks used 0 of", log), log
