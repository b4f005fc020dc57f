#!/usr/bin/env python3
"""How much llama.cpp agrees with itself: the noise floor for top-1 agreement.

Runs llama.cpp (llama-cpp-python) twice on the same quantized GGUF and the
same 512 tokens of tests/data/text/pride_and_prejudice_ch1-3.txt — once with
its plain attention, once with its flash-attention path (both are llama.cpp's
own CPU code, both "correct") — and prints the top-1 agreement and mean KL
divergence between the two. formiga's golden tests compare formiga against
the plain path; this script shows what agreement two llama.cpp code paths
reach, so the figures can be read against it (docs/models.md).

  python3 scripts/golden/llamacpp_self_agreement.py .cache/models/*.gguf
"""
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TEXT = ROOT / "tests/data/text/pride_and_prejudice_ch1-3.txt"
N = 512


def logits(path: str, flash_attn: bool) -> np.ndarray:
    import llama_cpp
    llm = llama_cpp.Llama(model_path=path, n_ctx=N, n_batch=N, n_ubatch=N, logits_all=True,
                          n_threads=2, flash_attn=flash_attn, verbose=False)
    tokens = list(llm.tokenize(TEXT.read_text(encoding="utf-8").encode(), add_bos=True))[:N]
    llm.reset()
    llm.eval(tokens)
    return np.array(llm.scores[:N], dtype=np.float64)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def main() -> None:
    for path in sys.argv[1:]:
        a = log_softmax(logits(path, flash_attn=False))
        b = log_softmax(logits(path, flash_attn=True))
        kl = (np.exp(a) * (a - b)).sum(axis=1)
        top1 = (a.argmax(axis=1) == b.argmax(axis=1)).mean()
        print(f"{Path(path).name}: llama.cpp plain vs flash attention over {len(a)} rows: "
              f"top-1 {100 * top1:.2f}%, mean KL {kl.mean():.6f}, max KL {kl.max():.4f}")


if __name__ == "__main__":
    main()
