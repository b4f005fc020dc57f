"""formiga plan end to end: the CPU engine's predicted peak memory against measured runs
(SmolLM2, Gemma-3 at contexts 512 and 4096: within 5 %), run refusing what will not fit,
--plan / --device-map / --max-memory obeyed or refused, and the planner's JSON."""
import json
from pathlib import Path

import pytest

PROMPT = "The quick brown fox jumps over the lazy dog. " * 50  # ~500 tokens: a full engine step


def _json(proc):
    return json.loads(proc.stdout)


@pytest.mark.parametrize("model_fixture", ["smollm2", "gemma3"])
@pytest.mark.parametrize("ctx", [512, 4096])
def test_predicted_peak_rss_within_5_percent(run_formiga, request, model_fixture, ctx):
    model = request.getfixturevalue(model_fixture)
    run = _json(run_formiga("run", "-m", model, "--ctx", ctx, "-n", 2, "--temp", 0, "--ignore-eos",
                            "-p", PROMPT, "--json"))
    assert run["prompt_tokens"] > 400
    plan = _json(run_formiga("plan", "-m", model, "--ctx", ctx, "--hardware", "local", "--json"))
    measured = run["memory"]["peak_rss_bytes"]
    predicted = plan["cpu_engine"]["total"]
    assert abs(predicted - measured) / measured < 0.05, (measured, plan["cpu_engine"])
    # The KV the planner counts is the KV the engine allocated.
    assert plan["cpu_engine"]["kv_cache"] == run["memory"]["kv_cache_bytes"]


def test_run_refuses_what_does_not_fit_with_the_planners_reason(run_formiga, smollm2):
    proc = run_formiga("run", "-m", smollm2, "-p", "oi", "-n", 2, "--max-memory", "cpu=150MiB", check=False)
    assert proc.returncode == 1
    assert "do not fit in memory" in proc.stderr
    assert "KV cache" in proc.stderr and "--ctx " in proc.stderr
    # A context no machine of today holds (10 M tokens: ~215 GiB of KV) is refused before allocation.
    proc = run_formiga("run", "-m", smollm2, "-p", "oi", "-n", 2, "--ctx", 10_000_000, check=False)
    assert proc.returncode == 1
    assert "do not fit in memory" in proc.stderr


def test_env_cap(formiga_bin, smollm2):
    import os
    import subprocess
    env = dict(os.environ, FORMIGA_MAX_MEMORY="100MiB")
    proc = subprocess.run([str(formiga_bin), "run", "-m", str(smollm2), "-p", "oi", "-n", "2"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "FORMIGA_MAX_MEMORY" in proc.stderr


def test_plan_file_is_obeyed_and_cuda_placement_refused(run_formiga, smollm2, tmp_path):
    cpu_plan = tmp_path / "cpu.json"
    run_formiga("plan", "-m", smollm2, "--ctx", 256, "--hardware", "local", "--out", cpu_plan)
    out = _json(run_formiga("run", "-m", smollm2, "--plan", cpu_plan, "-p", "Olá! Como você está?", "-n", 4,
                            "--json"))
    # The plan's context (256) was used: KV for 256 positions.
    plan = json.loads(cpu_plan.read_text())
    assert out["memory"]["kv_cache_bytes"] == plan["cpu_engine"]["kv_cache"]
    gpu_plan = tmp_path / "gpu.json"
    run_formiga("plan", "-m", smollm2, "--gpu", "rtx4090", "--out", gpu_plan)
    proc = run_formiga("run", "-m", smollm2, "--plan", gpu_plan, "-p", "oi", "-n", 2, check=False)
    assert proc.returncode == 1
    assert "CUDA placement is not available in this build" in proc.stderr
    proc = run_formiga("run", "-m", smollm2, "--device-map", '{"model.layers.0": 0}', "-p", "oi", "-n", 2,
                       check=False)
    assert proc.returncode == 1 and "cuda:0" in proc.stderr
    ok = run_formiga("run", "-m", smollm2, "--device-map", "cpu", "-p", "oi", "-n", 2)
    assert ok.returncode == 0


def test_plan_presets_auto_and_compare(run_formiga):
    j = _json(run_formiga("plan", "-m", "llama-2-7b", "--gpu", "rtx3060-6g", "--cpu-ram", "16GiB", "--quant", "auto",
                          "--ctx", 2048, "--json"))
    assert j["fits_on_accelerators"]
    assert j["weight_type"] in ("q4_k_m", "q3_k_m")
    assert [a["type"] for a in j["alternatives"]][:2] == ["bf16", "q8_0"]
    assert j["device_map"]["blk.0"] == "cuda:0"
    out = run_formiga("plan", "-m", "falcon-180b", "--quant", "q8_0,q4_k_m", "--hardware", "dgx-spark:1",
                      "--hardware", "a100-80g:4", "--ctx", 2048).stdout
    assert "1x dgx-spark" in out and "4x a100-80g" in out and "$20.28" in out
    train = _json(run_formiga("plan", "-m", "llama-2-7b", "--train", "qlora", "--gpu", "t4", "--seq-len", 512,
                              "--json"))
    assert train["mode"] == "training" and train["fits"]
    assert train["weight_type"] == "nf4"
    # A Hugging Face checkpoint folder (config.json) sizes like a preset.
    hf = _json(run_formiga("plan", "-m", Path(__file__).parent / "data/hf/qwen2", "--hardware", "cpu=1GiB", "--quant", "q8_0",
                           "--json"))
    assert hf["fits"] and hf["parameters"] > 0 and hf["weight_type"] == "q8_0"


def test_plan_errors_say_what_to_do(run_formiga):
    proc = run_formiga("plan", "-m", "no-such-model", check=False)
    assert proc.returncode == 1 and "preset" in proc.stderr
    proc = run_formiga("plan", "-m", "llama-7b", "--gpu", "v100:2", check=False)
    assert proc.returncode == 1 and "a100-80g" in proc.stderr
    proc = run_formiga("run", "-p", "oi", "--max-memory", "cpu=lots", check=False)
    assert proc.returncode == 1 and "not a size" in proc.stderr


def test_local_hardware_reads_nvidia_smi(formiga_bin, tmp_path):
    import os
    import stat
    import subprocess
    smi = tmp_path / "nvidia-smi"
    smi.write_text('#!/bin/sh\necho "NVIDIA GeForce RTX 4090, 24564"\necho "NVIDIA H100 80GB HBM3, 81559"\n')
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    proc = subprocess.run([str(formiga_bin), "plan", "-m", "llama-2-7b", "--quant", "q4_k_m", "--json"], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    j = json.loads(proc.stdout)
    assert "1x rtx4090 + 1x h100-sxm" in j["hardware"]
    assert j["devices"][0]["label"] == "cuda:0" and j["devices"][0]["device"] == "rtx4090"
    assert j["fits_on_accelerators"]
