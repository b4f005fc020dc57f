"""formiga bench: the JSON it reports and its errors (speed itself is measured by
bench/compare-llamacpp, never asserted here: CI machines are shared)."""
import json


def test_bench_json_reports_pp_tg_roofline_and_memory(run_formiga, smollm2):
    out = run_formiga("bench", "-m", smollm2, "-p", "16", "-n", "4", "-r", "2", "-t", "2",
                      "--bandwidth", "10", "--json").stdout
    j = json.loads(out)
    assert j["threads"] == 2 and j["repetitions"] == 2 and j["batch"] == 1
    tests = {t["test"]: t for t in j["tests"]}
    assert set(tests) == {"pp16", "tg4"}
    for t in tests.values():
        assert len(t["samples"]) == 2 and all(v > 0 for v in t["samples"])
        assert t["tokens_per_s"] > 0 and t["tokens_per_s_stddev"] >= 0
        assert t["cpu_tokens_per_s"] > 0
    tg = tests["tg4"]
    # Weights of a decode step: SmolLM2's layers plus its tied Q8_0 output matrix.
    assert 80e6 < j["weight_bytes_per_step"] < j["file_bytes"]
    assert abs(tg["roofline_fraction"] - tg["weight_gb_s"] / 10) < 1e-9
    assert j["read_bandwidth_gb_s"] == 10
    assert j["memory"]["peak_rss_bytes"] >= j["memory"]["rss_bytes"] > 0
    assert j["load_to_first_token_s"] > 0


def test_bench_batch_counts_every_sequence(run_formiga, smollm2):
    j = json.loads(run_formiga("bench", "-m", smollm2, "-p", "0", "-n", "3", "-r", "1", "--batch", "4",
                               "--bandwidth", "10", "--json").stdout)
    assert [t["test"] for t in j["tests"]] == ["tg3 x4"]
    assert j["tests"][0]["tokens"] == 12


def test_bench_table_and_errors(run_formiga, smollm2):
    out = run_formiga("bench", "-m", smollm2, "-p", "8", "-n", "2", "-r", "1", "--bandwidth", "10").stdout
    assert "| pp8 |" in out and "| tg2 |" in out and "peak resident" in out
    bad = run_formiga("bench", "-m", smollm2, "-r", "0", check=False)
    assert bad.returncode == 1 and "-r" in bad.stderr
    missing = run_formiga("bench", "-m", "/nonexistent.gguf", check=False)
    assert missing.returncode != 0 and "nonexistent" in missing.stderr


def test_probe_bandwidth(run_formiga):
    j = json.loads(run_formiga("bench", "--probe-bandwidth", "-t", "1", "--json").stdout)
    assert j["threads"] == 1 and j["read_bandwidth_gb_s"] > 0.1


def test_bench_profile_splits_each_pass_by_op(run_formiga, smollm2):
    j = json.loads(run_formiga("bench", "-m", smollm2, "-p", "16", "-n", "4", "-r", "2", "-t", "2",
                               "--bandwidth", "10", "--profile", "--json").stdout)
    tests = {t["test"]: t for t in j["tests"]}
    # pp: one forward pass per repetition; tg: 4 decode steps per repetition.
    assert tests["pp16"]["profile"]["steps"] == 2
    assert tests["tg4"]["profile"]["steps"] == 8
    for t in tests.values():
        p = t["profile"]
        ops = {o["op"]: o for o in p["ops"]}
        # SmolLM2 (30 layers, Q4_1 with a tied Q8_0 output): q/k/v and gate/up
        # are one job each, then attention, o, down, and the logits.
        assert ops["matmul q4_1 576x576+192+192"]["calls_per_step"] == 30
        assert ops["matmul q4_1 576x1536+1536"]["calls_per_step"] == 30
        assert ops["matmul q4_1 1536x576"]["calls_per_step"] == 30
        assert ops["matmul q8_0 576x49152"]["calls_per_step"] == 1
        assert ops["attention"]["calls_per_step"] == 30
        assert "(outside ops)" in ops
        total = sum(o["ms_per_step"] for o in p["ops"])
        assert abs(total - p["ms_per_step"]) < 1e-6 * max(1.0, p["ms_per_step"])
        assert abs(sum(o["fraction"] for o in p["ops"]) - 1) < 1e-9
    out = run_formiga("bench", "-m", smollm2, "-p", "0", "-n", "2", "-r", "1", "--bandwidth", "10",
                      "--profile").stdout
    assert "profile of tg2" in out and "| attention |" in out and "| (outside ops) |" in out
