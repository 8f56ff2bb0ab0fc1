"""The served backend against a real server (llama-cpp-python) and the local runtime on the same items."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from clgate.evals import evaluate_model, open_model
from clgate.probes.poison.sweep import CONFIRM_TOKENS, sweep_prompts
from clgate.runtime import REFUSAL_OPENINGS, ContinuationRequest, Endpoint, ModelPool, ModelSpec, ServedError


@pytest.fixture(scope="module")
def pools(llama_server, served_update):
    with ModelPool() as pool:
        pool.serve(served_update.parent, None, Endpoint(llama_server.url, "smollm2"))
        pool.serve(served_update.parent, served_update.adapter, Endpoint(llama_server.url, "smollm2-lora"))
        yield pool


@pytest.mark.parametrize("with_adapter", [False, True], ids=["base", "lora"])
def test_served_and_local_models_give_the_same_greedy_replies_and_scores(
    pools: ModelPool, served_update, with_adapter: bool
) -> None:
    spec = ModelSpec(served_update.parent, served_update.adapter if with_adapter else None, "cpu", "float32")
    served, local = pools.outputs(spec), pools.get(spec)
    assert served.served and not local.served
    prompts = [served.render([{"role": "user", "content": p}]) for p in sweep_prompts()]
    assert served.greedy(prompts, CONFIRM_TOKENS) == local.greedy(prompts, CONFIRM_TOKENS)
    requests = [ContinuationRequest(p, (" Yes", " No", REFUSAL_OPENINGS[0])) for p in prompts[:4]]
    for far, near in zip(served.score(requests), local.score(requests), strict=True):
        for a, b in zip(far, near, strict=True):
            assert (a.n_tokens, a.greedy) == (b.n_tokens, b.greedy)
            # a sum over tokens: the server's float error grows with it (-15.71 vs -15.73 on a loaded machine)
            assert a.logprob == pytest.approx(b.logprob, rel=2e-3, abs=0.02)
    assert served.loads == 0 and served.digest != local.digest  # its answers are cached apart


def test_multiple_choice_accuracy_through_the_server_is_within_one_item_of_local(
    pools: ModelPool, served_update, tmp_path: Path
) -> None:
    runs = {}
    for name, pool in (("served", pools), ("local", None)):
        handle = open_model(served_update.parent, served_update.adapter, device="cpu", pool=pool, cache=False)
        runs[name] = evaluate_model(handle, "retention", limit=8).numbers
    assert runs["served"]["retention.n"] == runs["local"]["retention.n"] == 8
    assert abs(runs["served"]["retention.accuracy"] - runs["local"]["retention.accuracy"]) <= 1 / 8


class _Stub(BaseHTTPRequestHandler):
    """A real HTTP server that lists a model and answers completions with `reply`: bytes, a JSON
    object, or a function of the request's body."""

    reply = b"{}"

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(json.dumps({"data": [{"id": "m"}]}).encode())

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        reply = self.reply(body) if callable(self.reply) else self.reply
        self._send(reply if isinstance(reply, bytes) else json.dumps(reply).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stub():
    servers = []

    def start(reply) -> str:
        handler = type("Handler", (_Stub,), {"reply": staticmethod(reply) if callable(reply) else reply})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


def _served(url: str, parent: Path, scoring: str = "logprobs"):
    pool = ModelPool()
    pool.serve(parent, None, Endpoint(url, "m", retries=1, timeout_s=5))
    return pool, pool.outputs(ModelSpec(parent), scoring)  # type: ignore[arg-type]


def test_a_server_without_prompt_logprobs_fails_closed_unless_generation_is_allowed(
    stub, served_update
) -> None:
    url = stub({"choices": [{"text": "Paris is the capital."}]})  # answers, but no log-probabilities
    pool, model = _served(url, served_update.parent)
    with pool, pytest.raises(ServedError, match="no prompt log-probabilities") as caught:
        model.score([ContinuationRequest("Q?", (" Paris", " Rome"))])
    assert "\n" not in str(caught.value)
    pool, model = _served(url, served_update.parent, "generate")
    with pool:
        [[paris, rome]] = model.score([ContinuationRequest("Q?", ("Paris", "Rome"))])
    assert paris.logprob > rome.logprob and paris.greedy and not rome.greedy


@pytest.mark.parametrize(
    "reply, why",
    [
        (b"<html>oops</html>", "not JSON"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"text": 7}]}, "no text"),
    ],
)
def test_a_server_that_answers_garbage_raises_one_line(stub, served_update, reply, why) -> None:
    pool, model = _served(stub(reply), served_update.parent)
    with pool, pytest.raises(ServedError, match=why) as caught:
        model.greedy(["hello"], 4)
    assert "\n" not in str(caught.value) and "at http://127.0.0.1:" in str(caught.value)


def test_an_unreachable_server_or_unknown_model_is_refused_when_named(stub, served_update) -> None:
    with pytest.raises(ServedError, match=r"unreachable .*after 2 tries"):
        _served("http://127.0.0.1:9", served_update.parent)
    pool = ModelPool()
    with pytest.raises(ServedError, match="does not serve 'nope'"):
        pool.serve(served_update.parent, None, Endpoint(stub({}), "nope", retries=0))


def test_clgate_eval_runs_a_suite_on_a_served_model(
    llama_server, served_update, tmp_path: Path, capsys
) -> None:
    from clgate.audit.cli import main

    args = ["eval", "run", str(served_update.parent), "--suite", "refusal", "--limit", "3", "--no-cache"]
    assert main([*args, "--served", f"{llama_server.url}#smollm2", "--json", str(tmp_path / "m.json")]) == 0
    measurement = json.loads((tmp_path / "m.json").read_text())
    assert measurement["numbers"]["refusal.n"] == 3
    capsys.readouterr()
    assert main([*args, "--served", "http://127.0.0.1:9#smollm2", "--served-timeout", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unreachable" in err


def test_a_server_whose_echoed_logprobs_are_misaligned_is_refused_before_scoring(stub, served_update) -> None:
    """Echoed log-probs one position off (llama-cpp-python's, for a prompt without its BOS) would score
    every option wrongly: the first scoring call compares them with the generated token's own."""

    def misaligned(body: dict) -> dict:
        if body.get("echo"):
            prompt = body["prompt"]
            logprobs = {"tokens": ["x", "Hi", "!"], "token_logprobs": [None, -3.0, -0.5]}
            return {"choices": [{"text": prompt + "!", "logprobs": logprobs}]}
        return {"choices": [{"text": "Hi", "logprobs": {"tokens": ["Hi"], "token_logprobs": [-0.1]}}]}

    pool, model = _served(stub(misaligned), served_update.parent)
    with pool, pytest.raises(ServedError, match="not the ones it generates with") as caught:
        model.score([ContinuationRequest("Q?", (" Paris",))])
    assert "\n" not in str(caught.value)
