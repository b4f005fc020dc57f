"""End-to-end: `formiga run`, `chat` and `perplexity` on the real test models."""
import json
import os
import subprocess

import pytest


def test_run_greedy_answers_sensibly(run_formiga, smollm2):
    out = run_formiga("run", "-m", smollm2, "-p", "The capital of France is", "-n", "6", "--temp", "0").stdout
    assert "Paris" in out


def test_run_json_reports_timings_and_memory(run_formiga, smollm2):
    out = run_formiga("run", "-m", smollm2, "-p", "Hello", "-n", "4", "--temp", "0", "--json").stdout
    j = json.loads(out)
    assert j["generated_tokens"] == 4
    assert j["finish_reason"] == "length"
    assert j["prompt_tokens"] > 0
    assert j["memory"]["peak_rss_bytes"] > 0
    assert j["timings"]["generated_tokens_per_s"] > 0


def test_same_seed_same_text(run_formiga, smollm2):
    args = ("run", "-m", smollm2, "-p", "Once upon a time", "-n", "12", "--temp", "1.0", "--seed", "7", "--json")
    a = json.loads(run_formiga(*args).stdout)["text"]
    b = json.loads(run_formiga(*args).stdout)["text"]
    assert a == b


def test_chat_template_run_in_portuguese(run_formiga, smollm2):
    out = run_formiga("run", "-m", smollm2, "--chat", "-p", "Qual é a capital da França?", "-n", "24",
                      "--temp", "0", "--json").stdout
    j = json.loads(out)
    assert j["generated_tokens"] > 0
    assert j["prompt_tokens"] > 10  # the ChatML template wrapped the question
    j["text"].encode("utf-8")       # whole UTF-8 characters only


def test_prompt_longer_than_context_is_refused(run_formiga, smollm2):
    proc = run_formiga("run", "-m", smollm2, "-p", "word " * 200, "--ctx", "64", check=False)
    assert proc.returncode == 1
    assert "--ctx" in proc.stderr


def test_missing_model_is_a_clear_error(run_formiga, tmp_path):
    proc = run_formiga("run", "-m", tmp_path / "nope.gguf", "-p", "hi", check=False)
    assert proc.returncode == 1
    assert "nope.gguf" in proc.stderr


def test_chat_session_with_reset(formiga_bin, smollm2):
    script = "Olá! Como você se chama?\n/reset\nWhat is 2+2?\n/exit\n"
    proc = subprocess.run([str(formiga_bin), "chat", "-m", str(smollm2), "--temp", "0", "-n", "16"],
                          input=script, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "conversation cleared" in proc.stderr
    assert proc.stderr.count("tokens,") == 2  # one stats line per answer


def test_perplexity_and_kl_against_itself(run_formiga, smollm2, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(("The quick brown fox jumps over the lazy dog. " * 40) + "\n")
    dump = tmp_path / "base.npy"
    a = json.loads(run_formiga("perplexity", "-m", smollm2, "-f", text, "--ctx", "128", "--chunks", "2",
                               "--dump-logits", dump, "--json").stdout)
    assert a["n_chunks"] == 2
    assert a["n_scored"] == 2 * 63
    assert 1.0 < a["perplexity"] < 20.0  # a repeated sentence is easy to predict
    b = json.loads(run_formiga("perplexity", "-m", smollm2, "-f", text, "--ctx", "128", "--chunks", "2",
                               "--kl-base", dump, "--json").stdout)
    assert b["kl"]["mean"] < 1e-6
    assert b["kl"]["top1_agreement"] == 1.0
    assert abs(b["perplexity"] - a["perplexity"]) < 1e-9
