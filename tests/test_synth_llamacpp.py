"""Dev check: llama.cpp (llama-cpp-python) loads `formiga synth` files and evaluates them.

Skips when llama_cpp is not importable or the formiga binary / test models are
missing (CI does not build llama.cpp yet). Run: python3 -m pytest tests/test_synth_llamacpp.py
Environment: FORMIGA_BIN (default build/model/formiga, then build/formiga).
"""
import os
import subprocess

import numpy as np
import pytest

llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python not installed: dev check skipped")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, ".cache", "models")


def formiga_bin():
    for cand in (os.environ.get("FORMIGA_BIN"), os.path.join(ROOT, "build", "model", "formiga"),
                 os.path.join(ROOT, "build", "formiga")):
        if cand and os.path.exists(cand):
            return cand
    pytest.skip("formiga binary not built (set FORMIGA_BIN)")


@pytest.mark.parametrize("preset,type_,layers", [
    ("smollm2-135m", "q8_0", 2),
    ("gemma3-270m", "q4_0", 2),
    ("qwen2.5-0.5b", "f16", 1),
    ("falcon-7b", "q8_0", 1),
    ("llama-7b", "q4_0", 1),
])
def test_llamacpp_loads_synth(tmp_path, preset, type_, layers):
    donor = "gemma-3-270m-q4_k_m.gguf" if preset.startswith("gemma") else "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not os.path.exists(os.path.join(MODELS, donor)):
        pytest.skip("test model missing: run scripts/setup")
    out = str(tmp_path / f"{preset}.gguf")
    subprocess.run([formiga_bin(), "synth", "--preset", preset, "--type", type_, "--layers", str(layers),
                    "--tokenizer-from", os.path.join(MODELS, donor), "-o", out], check=True)
    m = llama_cpp.Llama(model_path=out, n_ctx=64, verbose=False, logits_all=True)
    toks = m.tokenize(b"Hello world, this is a test")
    assert len(toks) > 3
    m.eval(toks)
    logits = np.array(m.scores[: len(toks)])
    assert logits.shape[1] == m.n_vocab()
    assert np.isfinite(logits).all()
    assert logits.std() > 0  # random weights give varied logits
    assert m.detokenize(toks).decode("utf-8", "replace").strip().startswith("Hello")
