"""formiga serve end to end: the official openai SDK, LangChain, the Hugging Face TGI client, raw HTTP
(errors, limits, malformed/slow/abandoned requests), concurrency, metrics and graceful shutdown.
Every server binds 127.0.0.1 on a free port; no network besides loopback."""
import concurrent.futures as cf
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

from serve_util import Server

os.environ.setdefault("OPENAI_API_KEY", "dummy")

SERVE_ARGS = ["-t", "2", "--kv-cache-mib", "96", "--max-total-tokens", "1024", "--max-input-tokens", "768",
              "--request-timeout", "120"]


@pytest.fixture(scope="module")
def server(formiga_bin, smollm2):
    s = Server(formiga_bin, smollm2, *SERVE_ARGS)
    yield s
    assert s.stop() == 0, "".join(s.stderr_lines)


@pytest.fixture(scope="module")
def client(server):
    import openai
    return openai.OpenAI(base_url=server.url + "v1", api_key="dummy", max_retries=0, timeout=120)


def post(server, path, body, headers=None, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path.lstrip("/"), data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def chat(content, **kw):
    return {"messages": [{"role": "user", "content": content}], "temperature": 0, "max_tokens": 12, **kw}


# ---------------------------------------------------------------- openai SDK

def test_openai_chat_nonstream_usage_ptbr(client, server):
    r = client.chat.completions.create(model=server.model_id, temperature=0, max_tokens=16,
                                       messages=[{"role": "system", "content": "Responda em português."},
                                                 {"role": "user", "content": "Olá! Qual é a capital do Brasil? Ação, coração."}])
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content.strip()
    assert "\ufffd" not in r.choices[0].message.content
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 10 and 0 < r.usage.completion_tokens <= 16
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_openai_chat_stream_matches_nonstream(client):
    msgs = [{"role": "user", "content": "Name three colors."}]
    full = client.chat.completions.create(model="x", messages=msgs, temperature=0, max_tokens=20)
    stream = client.chat.completions.create(model="x", messages=msgs, temperature=0, max_tokens=20, stream=True,
                                            stream_options={"include_usage": True})
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    assert text == full.choices[0].message.content
    assert finish == full.choices[0].finish_reason
    assert usage.completion_tokens == full.usage.completion_tokens


def test_openai_completions_stream_and_logprobs(client):
    r = client.completions.create(model="x", prompt="The capital of France is", max_tokens=6, temperature=0,
                                  logprobs=3)
    assert r.object == "text_completion" and "Paris" in r.choices[0].text
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == r.usage.completion_tokens
    assert all(x <= 0 for x in lp.token_logprobs) and all(len(t) == 3 for t in lp.top_logprobs)
    assert "".join(lp.tokens) == r.choices[0].text
    text = "".join(c.choices[0].text for c in client.completions.create(
        model="x", prompt="The capital of France is", max_tokens=6, temperature=0, stream=True))
    assert text == r.choices[0].text


def test_openai_chat_logprobs_n_seed_stop(client):
    r = client.chat.completions.create(model="x", messages=[{"role": "user", "content": "Tell me a story."}],
                                       n=2, temperature=1.0, seed=7, max_tokens=10, logprobs=True, top_logprobs=2)
    assert [c.index for c in r.choices] == [0, 1]
    for c in r.choices:
        assert len(c.logprobs.content) > 0 and all(len(t.top_logprobs) == 2 for t in c.logprobs.content)
    again = client.chat.completions.create(model="x", messages=[{"role": "user", "content": "Tell me a story."}],
                                           n=2, temperature=1.0, seed=7, max_tokens=10)
    assert [c.message.content for c in again.choices] == [c.message.content for c in r.choices]
    s = client.completions.create(model="x", prompt="1, 2, 3, 4,", max_tokens=20, temperature=0, stop=[" 7"])
    assert " 7" not in s.choices[0].text and s.choices[0].finish_reason == "stop"


def test_openai_errors(client, server):
    import openai
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="x", messages=[], max_tokens=5)
    assert "'messages' is empty" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="x", messages=[{"role": "wizard", "content": "hi"}])
    assert "role" in str(e.value) and "wizard" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}], max_tokens=-3)
    assert "max_tokens" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}], max_tokens=10**9)
    assert "max-total-tokens" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "palavra " * 2000}])
    assert e.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}], temperature="hot")
    assert "'temperature' must be a number" in str(e.value)
    status, _, body = post(server, "/v1/chat/completions", None, raw=b'{"messages": [')
    assert status == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"
    status, _, body = post(server, "/v1/nope", {})
    assert status == 404 and "error" in json.loads(body)


def test_port_in_use_is_an_error(run_formiga, server, smollm2):
    p = run_formiga("serve", "-m", smollm2, "--port", server.port, "-t", "1", "--kv-cache-mib", "32", check=False,
                    timeout=120)
    assert p.returncode == 1 and "could not listen on 127.0.0.1:" in p.stderr


def test_models_and_info(client, server):
    assert [m.id for m in client.models.list()] == [server.model_id]
    _, info = server.get("/info")
    info = json.loads(info)
    assert info["max_total_tokens"] == 1024 and info["max_input_tokens"] == 768
    status, health = server.get("/health")
    assert status == 200 and json.loads(health)["status"] == "ok"


# ---------------------------------------------------------------- LangChain and TGI clients

def test_langchain_chat_openai(server):
    from langchain_openai import ChatOpenAI
    llm = ChatOpenAI(base_url=server.url + "v1", api_key="dummy", model=server.model_id, temperature=0,
                     max_tokens=12, max_retries=0)
    out = llm.invoke("Diga olá em português.")
    assert out.content.strip()
    streamed = "".join(chunk.content for chunk in llm.stream("Diga olá em português."))
    assert streamed == out.content


def test_tgi_client_generate_and_stream(server):
    from huggingface_hub import InferenceClient
    c = InferenceClient(base_url=server.url.rstrip("/"))
    out = c.text_generation("The capital of France is", max_new_tokens=8, details=True)
    assert "Paris" in out.generated_text
    assert out.details.generated_tokens == len(out.details.tokens) == 8
    assert out.details.finish_reason == "length"
    toks = list(c.text_generation("The capital of France is", max_new_tokens=8, stream=True, details=True))
    assert "".join(t.token.text for t in toks) == out.generated_text
    assert toks[-1].generated_text == out.generated_text and toks[-1].details.finish_reason == "length"
    status, _, body = post(server, "/generate", {"inputs": "x", "parameters": {"max_new_tokens": "many"}})
    assert status == 422 and json.loads(body)["error_type"] == "validation"


# ---------------------------------------------------------------- concurrency, cancellation, metrics

PROMPTS = [f"Write one sentence about the number {i}." for i in range(16)]


def stream_chat(server, prompt, max_tokens=24):
    import openai
    c = openai.OpenAI(base_url=server.url + "v1", api_key="dummy", max_retries=0, timeout=300)
    s = c.chat.completions.create(model="x", messages=[{"role": "user", "content": prompt}], temperature=0,
                                  max_tokens=max_tokens, stream=True)
    return "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)


def test_16_concurrent_greedy_streams_equal_alone(server):
    alone = [stream_chat(server, p) for p in PROMPTS]
    with cf.ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda p: stream_chat(server, p), PROMPTS))
    diffs = [(i, a, b) for i, (a, b) in enumerate(zip(alone, together)) if a != b]
    assert not diffs, f"batched output differs from alone: {diffs[:3]}"


def wait_for(pred, timeout=20.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def open_stream(server, body, until=b"data:"):
    """Sends a streaming request on a raw socket and returns it once `until` arrived (the first data line)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    payload = json.dumps(body).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
    buf = b""
    while until not in buf:
        chunk = sock.recv(4096)
        assert chunk, "server closed the stream early"
        buf += chunk
    return sock


def long_body(server, prompt="Count: 1, 2, 3,"):
    # Ban the end tokens so the generation would run for long if nothing stopped it.
    return {"prompt": prompt, "max_tokens": 900, "temperature": 0, "stream": True,
            "logit_bias": {"2": -100, "0": -100, "1": -100}}


def test_disconnect_frees_kv_blocks(server):
    base = server.metrics()
    sock = open_stream(server, long_body(server))
    assert wait_for(lambda: server.metrics()["formiga_running_sequences"] >= 1)
    assert server.metrics()["formiga_kv_blocks_used"] > 0
    sock.close()
    assert wait_for(lambda: server.metrics()["formiga_running_sequences"] == 0), "the request kept running"
    m = server.metrics()
    assert m["formiga_kv_blocks_used"] == 0
    assert m["formiga_requests_cancelled_total"] > base.get("formiga_requests_cancelled_total", 0)


def test_disconnect_of_a_non_streaming_request_frees_kv_blocks(server):
    """A client that leaves a non-streaming request is noticed within a fraction
    of a second (its socket is watched) instead of at --request-timeout."""
    base = server.metrics()
    body = dict(long_body(server), stream=False)
    payload = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
    assert wait_for(lambda: server.metrics()["formiga_running_sequences"] >= 1)
    sock.close()
    t0 = time.time()
    assert wait_for(lambda: server.metrics()["formiga_running_sequences"] == 0), "the request kept running"
    assert time.time() - t0 < 5
    m = server.metrics()
    assert m["formiga_kv_blocks_used"] == 0
    assert m["formiga_requests_cancelled_total"] > base.get("formiga_requests_cancelled_total", 0)
    # the server still answers normally afterwards
    assert post(server, "/v1/completions", {"prompt": "Olá", "max_tokens": 2})[0] == 200


def test_metrics_exposition(server):
    assert post(server, "/v1/chat/completions", chat("Oi"))[0] == 200
    _, text = server.get("/metrics")
    for name in ["formiga_requests_total{", "formiga_prompt_tokens_total", "formiga_generated_tokens_total",
                 "formiga_queue_depth", "formiga_running_sequences", "formiga_kv_blocks_used",
                 "formiga_kv_blocks_free", "formiga_prefix_cache_hit_rate",
                 "formiga_time_to_first_token_seconds_bucket{le=",
                 "formiga_inter_token_latency_seconds_bucket{le="]:
        assert name in text, name
    m = server.metrics()
    assert m['formiga_requests_total{route="/v1/chat/completions",status="200"}'] >= 1
    assert m["formiga_generated_tokens_total"] > 0


def test_bad_clients_do_not_disturb_other_streams(server):
    """Malformed, oversized, slow and abruptly closed requests while a stream runs beside them."""
    ref = stream_chat(server, "Describe the sea.", max_tokens=40)
    with cf.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(stream_chat, server, "Describe the sea.", 40)
        # malformed HTTP
        for raw in [b"GARBAGE\r\n\r\n", b"POST /v1/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                    b"POST /v1/completions HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"pro", b"\x00\xff" * 100]:
            s = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            try:
                s.recv(4096)
            except OSError:
                pass
            s.close()
        # malformed JSON bodies
        for raw in [b"{", b"[]", b'{"prompt": 5}', b'{"prompt": "x", "max_tokens": 1e308}', b"[" * 100000,
                    b'{"prompt": "\xff\xfe"}', b'{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}']:
            status, _, body = post(server, "/v1/completions", None, raw=raw)
            assert status == 400, (raw[:40], status, body)
            assert json.loads(body)["error"]["message"]
        # oversized body
        status, _, _ = post(server, "/v1/completions", None, raw=b'{"prompt": "' + b"a" * (5 << 20) + b'"}')
        assert status == 413
        # slowloris: headers trickle in, then the client stalls
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        slow.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n")
        # abruptly closed mid-body and mid-stream
        s = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"prompt\":")
        s.close()
        open_stream(server, long_body(server)).close()
        # API key header on a keyless server is ignored, and junk auth does not crash it
        status, _, _ = post(server, "/v1/completions", {"prompt": "hi", "max_tokens": 2},
                            headers={"Authorization": "Bearer " + "x" * 5000})
        assert status == 200
        assert fut.result(timeout=300) == ref
        slow.close()
    assert wait_for(lambda: server.metrics()["formiga_running_sequences"] == 0)
    assert server.get("/health")[0] == 200


def test_queue_full_gets_429_with_retry_after(formiga_bin, smollm2):
    s = Server(formiga_bin, smollm2, "-t", "2", "--kv-cache-mib", "32", "--max-concurrent-requests", "1")
    try:
        sock = open_stream(s, long_body(s))
        status, headers, body = post(s, "/v1/completions", {"prompt": "hi", "max_tokens": 2})
        assert status == 429 and headers["Retry-After"] and json.loads(body)["error"]["type"] == "rate_limit_error"
        sock.close()
        assert wait_for(lambda: s.metrics()["formiga_requests_in_flight"] == 0)
        assert post(s, "/v1/completions", {"prompt": "hi", "max_tokens": 2})[0] == 200
    finally:
        assert s.stop() == 0


def test_disconnect_while_queued_leaves_the_queue(formiga_bin, smollm2):
    s = Server(formiga_bin, smollm2, "-t", "2", "--kv-cache-mib", "32", "--max-batch-size", "1")
    try:
        a = open_stream(s, long_body(s))
        b = open_stream(s, long_body(s, "Count: 10, 20, 30,"), until=b"200 OK")  # waits behind a
        assert wait_for(lambda: s.metrics()["formiga_queue_depth"] == 1)
        b.close()  # noticed through the keep-alive comment, not a token
        assert wait_for(lambda: s.metrics()["formiga_queue_depth"] == 0, timeout=15)
        assert s.metrics()["formiga_running_sequences"] == 1
        a.close()
        assert wait_for(lambda: s.metrics()["formiga_running_sequences"] == 0)
    finally:
        assert s.stop() == 0


def test_request_timeout(formiga_bin, smollm2):
    s = Server(formiga_bin, smollm2, "-t", "2", "--kv-cache-mib", "32", "--request-timeout", "1")
    try:
        body = {**long_body(s), "stream": False}
        status, _, text = post(s, "/v1/completions", body)
        assert status == 504 and json.loads(text)["error"]["code"] == "timeout"
        sock = open_stream(s, long_body(s))
        data = b""
        while b"[DONE]" not in data:
            chunk = sock.recv(65536)
            assert chunk, "stream closed without [DONE]"
            data += chunk
        assert b'"code":"timeout"' in data
        sock.close()
        assert wait_for(lambda: s.metrics()["formiga_running_sequences"] == 0)
    finally:
        assert s.stop() == 0


def test_api_key_and_cors(formiga_bin, smollm2):
    import openai
    s = Server(formiga_bin, smollm2, "-t", "2", "--kv-cache-mib", "32", "--cors-allow-origin", "https://example.org",
               env={"FORMIGA_API_KEY": "s3cret,other"})
    try:
        bad = openai.OpenAI(base_url=s.url + "v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        good = openai.OpenAI(base_url=s.url + "v1", api_key="other", max_retries=0)
        assert good.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=2).choices
        status, headers, _ = post(s, "/generate", {"inputs": "hi"})
        assert status == 401 and headers["Access-Control-Allow-Origin"] == "https://example.org"
        assert post(s, "/", {"inputs": "hi"})[0] == 401  # TGI's root route
        assert s.get("/")[0] == 200  # the page itself is open
        assert s.get("/health")[0] == 200  # open without a key
        req = urllib.request.Request(s.url + "v1/chat/completions", method="OPTIONS",
                                     headers={"Origin": "https://example.org"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 204 and "Authorization" in r.headers["Access-Control-Allow-Headers"]
    finally:
        assert s.stop() == 0


def test_sigterm_finishes_in_flight_stream_and_exits_0(formiga_bin, smollm2):
    s = Server(formiga_bin, smollm2, "-t", "2", "--kv-cache-mib", "32")
    with cf.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(stream_chat, s, "Describe a forest.", 24)
        assert wait_for(lambda: s.metrics()["formiga_running_sequences"] >= 1)
        s.proc.send_signal(signal.SIGTERM)
        assert fut.result(timeout=120)  # the stream finished with text
    assert s.proc.wait(timeout=60) == 0
    assert any("SIGTERM" in line for line in s.stderr_lines)


def test_tgi_launch_line_flags(formiga_bin, smollm2):
    """Seed 003's TGI launch line, with formiga in place of the container."""
    s = Server(formiga_bin, None, "--model-id", smollm2, "--revision", "main", "--max-total-tokens", "4096",
               "--max-input-length", "3584", "--max-batch-prefill-tokens", "4096", "--hostname", "127.0.0.1",
               "-t", "2", "--kv-cache-mib", "96")
    try:
        info = json.loads(s.get("/info")[1])
        assert info["max_total_tokens"] == 4096 and info["max_input_tokens"] == 3584
        assert info["max_batch_prefill_tokens"] == 4096
        assert any("--revision main ignored" in line for line in s.stderr_lines)
    finally:
        assert s.stop() == 0
