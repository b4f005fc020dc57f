#!/usr/bin/env python3
"""Reference logits from independent implementations, for formiga's model tests.

What it makes (into tests/data/logits/, read by src/model/model_golden_test.cc):

  <variant>.llamacpp.fgld   llama.cpp (llama-cpp-python, CPU) on the same GGUF:
      the English text (tests/data/text/pride_and_prejudice_ch1-3.txt) cut into
      chunks of n_ctx = 512 tokens exactly as llama.cpp's perplexity tool does
      (BOS replaces the first token of a chunk when the model adds BOS); for the
      second half of each of the first 2 chunks (positions 256..511: 512 rows)
      the top-K (K = 32) token ids with their log-probabilities and the
      log-probability of everything outside the top-K (the "tail"). Also the
      full-text tokenization (to check formiga's tokenizer) and the perplexity
      of those 2 chunks. Variants:
        smollm2-q4_1    SmolLM2-135M-Instruct.Q4_1.gguf as shipped
        smollm2-q8_0    formiga quantize of it to q8_0
        smollm2-q4_k_m  formiga quantize of it to q4_k_m
        gemma3-q4_k_m   gemma-3-270m-q4_k_m.gguf as shipped
        gemma3-q8_0     formiga quantize of it to q8_0
        gemma3-q4_k_m-requant  formiga quantize of it to q4_k_m
      For the formiga-quantized files the header records size, sha256 and
      crc32 so the test can re-create them and check formiga still writes the
      same bytes. The shipped variants also get a short Portuguese check
      (tests/data/text/dom_casmurro_cap1-2.txt, one 256-token chunk, rows
      128..255).
  <variant>.hf.fgld         transformers (torch, CPU, float32) with the GGUF
      dequantized by transformers' GGUF loader: the first 64 tokens of the
      English text, top-K ids and raw logits per row plus max |logit| of the row.
  greedy.json               llama.cpp's greedy continuation (up to 32 tokens,
      stopping at an end-of-generation token) of SmolLM2-Instruct for an
      English and a Portuguese question rendered with the model's chat template.
  perplexity.json           llama.cpp perplexity of the whole English text
      (n_ctx 512 chunks, second half scored) for both shipped models, and of the
      2 golden chunks for every variant.

File format (.fgld, "formiga golden"), little-endian:
  bytes 0..3   magic "FGLD"
  bytes 4..7   uint32 version (1)
  bytes 8..15  uint64 length of the JSON header that follows
  JSON header  {"arrays": {name: {"dtype": "i32"|"f32", "shape": [...],
               "offset": absolute byte offset}}, ...metadata}
  arrays       raw, each at its offset (16-byte aligned), row-major.
The format is trivial on purpose: C++ reads it with nlohmann::json and memcpy.

How to run (needs llama_cpp, torch, transformers, gguf, numpy, jinja2 — none
of which CI has; the outputs are committed):
  cmake --build build/<dir> --target formiga
  python3 scripts/golden/make_logits_golden.py --formiga build/<dir>/formiga
Options: --skip-hf (no transformers part), --threads N, --variants a,b.
Takes several minutes on 2 cores (gemma's 262k-row output layer dominates).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TEXT_EN = ROOT / "tests/data/text/pride_and_prejudice_ch1-3.txt"
TEXT_PT = ROOT / "tests/data/text/dom_casmurro_cap1-2.txt"
OUT = ROOT / "tests/data/logits"
K = 32
N_CTX = 512
N_GOLDEN_CHUNKS = 2
PT_CTX = 256
HF_POSITIONS = 64
GREEDY_TOKENS = 32

# (variant, source model file, formiga quantize type or None for the shipped file)
VARIANTS = [
    ("smollm2-q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf", None),
    ("smollm2-q8_0", "SmolLM2-135M-Instruct.Q4_1.gguf", "q8_0"),
    ("smollm2-q4_k_m", "SmolLM2-135M-Instruct.Q4_1.gguf", "q4_k_m"),
    ("gemma3-q4_k_m", "gemma-3-270m-q4_k_m.gguf", None),
    ("gemma3-q8_0", "gemma-3-270m-q4_k_m.gguf", "q8_0"),
    ("gemma3-q4_k_m-requant", "gemma-3-270m-q4_k_m.gguf", "q4_k_m"),
]

# (case, question, free_running): free-running cases must be reproduced token
# for token by formiga's own greedy loop (questions the 135M model answers
# sensibly, with no near-tie on the way); the others are checked teacher-forced
# (every llama.cpp token must be formiga's arg-max unless llama.cpp's own top-2
# margin is a near-tie) — the tiny model's Portuguese answers wander into them.
GREEDY_QUESTIONS = [
    ("en", "What is the capital of Japan?", True),
    ("en-list", "Name three fruits.", True),
    ("en-france", "What is the capital of France?", False),
    ("pt", "Qual é a capital do Brasil?", False),
]


# ----------------------------------------------------------------------------- file format

def write_fgld(path: Path, header: dict, arrays: dict[str, np.ndarray]) -> None:
    """Writes the .fgld format described above."""
    dtypes = {np.dtype(np.int32): "i32", np.dtype(np.float32): "f32"}
    # Offsets depend on the header length, which depends on the offsets: iterate
    # until the header stops growing (two passes in practice).
    meta = {}
    data_start = 0
    for _ in range(4):
        off = data_start
        meta = {}
        for name, a in arrays.items():
            off = (off + 15) // 16 * 16
            meta[name] = {"dtype": dtypes[a.dtype], "shape": list(a.shape), "offset": off}
            off += a.nbytes
        hdr = json.dumps({**header, "arrays": meta}, ensure_ascii=False, sort_keys=True).encode()
        new_start = (16 + len(hdr) + 15) // 16 * 16
        if new_start == data_start:
            break
        data_start = new_start
    with open(path, "wb") as f:
        f.write(b"FGLD" + struct.pack("<IQ", 1, len(hdr)) + hdr)
        for name, a in arrays.items():
            f.write(b"\0" * (meta[name]["offset"] - f.tell()))
            f.write(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<"), copy=False).tobytes())


def read_fgld(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    raw = path.read_bytes()
    assert raw[:4] == b"FGLD"
    _, n = struct.unpack("<IQ", raw[4:16])
    header = json.loads(raw[16:16 + n])
    out = {}
    for name, m in header["arrays"].items():
        dt = {"i32": "<i4", "f32": "<f4"}[m["dtype"]]
        count = int(np.prod(m["shape"])) if m["shape"] else 1
        out[name] = np.frombuffer(raw, dtype=dt, count=count, offset=m["offset"]).reshape(m["shape"])
    return header, out


# ----------------------------------------------------------------------------- helpers

def file_digests(path: Path) -> dict:
    sha = hashlib.sha256()
    crc = 0
    size = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 22)
            if not b:
                break
            sha.update(b)
            crc = zlib.crc32(b, crc)
            size += len(b)
    return {"size": size, "sha256": sha.hexdigest(), "crc32": crc}


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def topk_rows(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids [R,k] by decreasing probability, logprobs [R,k], tail logprob [R])."""
    lp = log_softmax(logits)
    ids = np.argsort(-lp, axis=-1, kind="stable")[:, :k]
    top = np.take_along_axis(lp, ids, axis=-1)
    mass = np.exp(top).sum(axis=-1)
    # log(1 - mass) computed without cancellation when mass is close to 1.
    tail = np.log1p(-np.minimum(mass, 1.0 - 1e-15))
    return ids.astype(np.int32), top.astype(np.float32), tail.astype(np.float32)


def quantize(formiga: Path, src: Path, dst: Path, qtype: str, threads: int) -> None:
    subprocess.run([str(formiga), "quantize", str(src), str(dst), "--type", qtype, "--threads", str(threads)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ----------------------------------------------------------------------------- llama.cpp

class LlamaCpp:
    def __init__(self, path: Path, n_ctx: int, threads: int):
        import llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx,
                                   logits_all=True, n_threads=threads, n_threads_batch=threads,
                                   verbose=False)
        self.add_bos = bool(self.llm._model.add_bos_token())
        self.bos = int(self.llm.token_bos())

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        # add_bos=True means "add the model's special tokens": BOS only when the
        # vocabulary asks for it (SmolLM2: no, Gemma-3: yes), as llama.cpp's tools do.
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=special))

    def logits(self, tokens: list[int]) -> np.ndarray:
        """Logits (T, V) of a fresh sequence (empty KV cache)."""
        self.llm.reset()
        self.llm.eval(tokens)
        return np.array(self.llm.scores[:len(tokens)], dtype=np.float32)

    def chunk(self, text_tokens: list[int], i: int, n_ctx: int) -> list[int]:
        """Chunk i as llama.cpp's perplexity tool feeds it."""
        c = list(text_tokens[i * n_ctx:(i + 1) * n_ctx])
        if self.add_bos:
            c[0] = self.bos
        return c


def chunk_nll(logits: np.ndarray, toks: list[int], first: int) -> tuple[float, int]:
    """Negative log-likelihood of positions first+1 .. n-1 (predicted by rows
    first .. n-2), as llama.cpp's perplexity tool scores a chunk."""
    n = len(toks)
    lp = log_softmax(logits[first:n - 1])
    targets = np.array(toks[first + 1:n])
    return -float(lp[np.arange(len(targets)), targets].sum()), len(targets)


def llamacpp_golden(variant: str, gguf: Path, shipped: bool, digests: dict | None, threads: int,
                    summary: dict) -> None:
    """Each chunk is evaluated once: the first N_GOLDEN_CHUNKS give the top-K
    rows, and (shipped models only) every chunk of the text gives the
    perplexity: floor(len / n_ctx) chunks, rows n_ctx/2 .. n_ctx-2 scored."""
    text = TEXT_EN.read_text(encoding="utf-8")
    llm = LlamaCpp(gguf, N_CTX, threads)
    text_tokens = llm.tokenize(text)
    assert len(text_tokens) >= 2 * N_CTX, "the text must give at least 2 chunks"
    first = N_CTX // 2
    n_eval = len(text_tokens) // N_CTX if shipped else N_GOLDEN_CHUNKS
    fed, ids, lps, tails = [], [], [], []
    nll, count, nll2, count2 = 0.0, 0, 0.0, 0
    for i in range(n_eval):
        toks = llm.chunk(text_tokens, i, N_CTX)
        logits = llm.logits(toks)
        a, c = chunk_nll(logits, toks, first)
        nll += a
        count += c
        if i < N_GOLDEN_CHUNKS:
            nll2 += a
            count2 += c
            x, y, z = topk_rows(logits[first:N_CTX], K)
            fed.append(toks)
            ids.append(x)
            lps.append(y)
            tails.append(z)
        print(f"  {variant}: chunk {i + 1}/{n_eval} ppl so far {math.exp(nll / count):.4f}", flush=True)
    ppl2 = {"ppl": math.exp(nll2 / count2), "chunks": N_GOLDEN_CHUNKS, "n_ctx": N_CTX, "scored_tokens": count2}
    header = {
        "kind": "llamacpp-topk", "variant": variant, "model_file": gguf.name if shipped else None,
        "quantized_from": None if shipped else VARIANTS_BY_NAME[variant][1],
        "quantize_type": None if shipped else VARIANTS_BY_NAME[variant][2],
        "quantized_file": digests, "text": TEXT_EN.name, "n_ctx": N_CTX, "n_chunks": N_GOLDEN_CHUNKS,
        "first_row": first, "k": K, "add_bos": llm.add_bos, "bos_id": llm.bos,
        "ppl_golden_chunks": ppl2["ppl"],
        "reference": "llama-cpp-python " + __import__("llama_cpp").__version__ + " (CPU, f16 KV cache)",
    }
    arrays = {
        "tokens": np.array(fed, dtype=np.int32),            # (n_chunks, n_ctx) as fed (BOS replaced)
        "topk_ids": np.concatenate(ids),                     # (rows, K)
        "topk_logprobs": np.concatenate(lps),                # (rows, K)
        "tail_logprob": np.concatenate(tails),               # (rows)
    }
    entry = {"ppl_golden_chunks": ppl2}
    if shipped:
        arrays["text_tokens"] = np.array(text_tokens, dtype=np.int32)
        full = {"ppl": math.exp(nll / count), "chunks": n_eval, "n_ctx": N_CTX, "scored_tokens": count}
        header["ppl_full_text"] = full["ppl"]
        header["ppl_full_text_chunks"] = full["chunks"]
        entry["ppl_full_text"] = full
        # Portuguese: one PT_CTX chunk, rows PT_CTX/2 .. PT_CTX-1.
        pt_tokens = llm.tokenize(TEXT_PT.read_text(encoding="utf-8"))
        assert len(pt_tokens) >= PT_CTX
        toks = llm.chunk(pt_tokens, 0, PT_CTX)
        a, b, c = topk_rows(llm.logits(toks)[PT_CTX // 2:PT_CTX], K)
        arrays.update({"pt_text_tokens": np.array(pt_tokens, dtype=np.int32),
                       "pt_tokens": np.array(toks, dtype=np.int32), "pt_topk_ids": a,
                       "pt_topk_logprobs": b, "pt_tail_logprob": c})
        header.update({"pt_text": TEXT_PT.name, "pt_n_ctx": PT_CTX, "pt_first_row": PT_CTX // 2})
    summary[variant] = entry
    write_fgld(OUT / f"{variant}.llamacpp.fgld", header, arrays)
    print(f"{variant}: {len(text_tokens)} text tokens, ppl(2 chunks) {ppl2['ppl']:.4f}"
          + (f", ppl(full) {header['ppl_full_text']:.4f}" if shipped else ""), flush=True)


def greedy_golden(gguf: Path, threads: int) -> dict:
    import jinja2.sandbox
    from gguf import GGUFReader
    template = GGUFReader(str(gguf)).fields["tokenizer.chat_template"].contents()
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    llm = LlamaCpp(gguf, 512, threads)
    import llama_cpp
    vocab = llama_cpp.llama_model_get_vocab(llm.llm._model.model)
    eog = {t for t in range(llm.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)}
    out = {"model_file": gguf.name, "max_new_tokens": GREEDY_TOKENS, "cases": []}
    for lang, q, free_running in GREEDY_QUESTIONS:
        prompt = env.from_string(template).render(messages=[{"role": "user", "content": q}],
                                                  add_generation_prompt=True)
        ids = llm.tokenize(prompt, special=True)
        llm.llm.reset()
        llm.llm.eval(ids)
        gen, margins = [], []
        for _ in range(GREEDY_TOKENS):
            row = np.array(llm.llm.scores[llm.llm.n_tokens - 1], dtype=np.float32)
            top2 = np.argsort(-row)[:2]
            tok = int(top2[0])
            gen.append(tok)
            margins.append(float(row[top2[0]] - row[top2[1]]))
            if tok in eog:
                break
            llm.llm.eval([tok])
        text = llm.llm.detokenize(gen).decode("utf-8", errors="replace")
        out["cases"].append({"lang": lang, "question": q, "prompt": prompt, "prompt_ids": ids,
                             "generated_ids": gen, "generated_text": text, "top2_margins": margins,
                             "stopped_at_eog": gen[-1] in eog, "free_running": free_running})
        print(f"greedy {lang}: {text!r}", flush=True)
    return out


# ----------------------------------------------------------------------------- transformers

def hf_golden(variant: str, gguf: Path, threads: int) -> None:
    import torch
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(threads)
    header, arr = read_fgld(OUT / f"{variant}.llamacpp.fgld")
    tokens = arr["tokens"][0][:HF_POSITIONS].astype(np.int64)  # chunk 0 as fed to llama.cpp
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor(tokens)[None]).logits[0].float().numpy()
    order = np.argsort(-logits, axis=-1, kind="stable")[:, :K].astype(np.int32)
    top = np.take_along_axis(logits, order, axis=-1).astype(np.float32)
    row_max_abs = np.abs(logits).max(axis=-1).astype(np.float32)
    lse = np.log(np.exp(logits.astype(np.float64) - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    h = {"kind": "hf-topk-logits", "variant": variant, "n_positions": HF_POSITIONS, "k": K,
         "reference": "transformers " + __import__("transformers").__version__ + " + torch "
                      + torch.__version__ + " (CPU, float32, GGUF dequantized by transformers)",
         "architecture": type(model).__name__}
    write_fgld(OUT / f"{variant}.hf.fgld", h,
               {"tokens": tokens.astype(np.int32), "topk_ids": order, "topk_logits": top,
                "row_max_abs": row_max_abs, "logsumexp": lse.astype(np.float32)})
    # How far transformers is from llama.cpp on the same rows (a sanity check of
    # the reference itself, printed only).
    agree = int((order[:, 0] == np.argmax(logits, -1)).sum())
    print(f"{variant}: hf done ({type(model).__name__}), top-1 self-check {agree}/{HF_POSITIONS}", flush=True)
    del model


VARIANTS_BY_NAME = {v[0]: v for v in VARIANTS}


def write_summary(path: Path, run: dict) -> None:
    """perplexity.json from every .fgld header on disk (so that runs for
    different variants, even concurrent ones, add up), plus this run's
    transformers failures."""
    old = json.loads(path.read_text()) if path.exists() else {}
    failures = {**old.get("hf_failures", {}), **run.get("hf_failures", {})}
    # A failure is stale once that variant's transformers golden exists.
    out = {"hf_failures": {v: e for v, e in failures.items() if not (OUT / f"{v}.hf.fgld").exists()}}
    for f in sorted(OUT.glob("*.llamacpp.fgld")):
        h, _ = read_fgld(f)
        e = {"ppl_golden_chunks": h["ppl_golden_chunks"], "golden_chunks": h["n_chunks"], "n_ctx": h["n_ctx"],
             "quantized_file": h.get("quantized_file")}
        if "ppl_full_text" in h:
            e["ppl_full_text"] = h["ppl_full_text"]
            e["full_text_chunks"] = h["ppl_full_text_chunks"]
        out[h["variant"]] = e
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--formiga", default=str(ROOT / "build/golden/formiga"))
    ap.add_argument("--models", default=str(ROOT / ".cache/models"))
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--variants", default=",".join(v[0] for v in VARIANTS))
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument("--skip-llamacpp", action="store_true")
    ap.add_argument("--skip-greedy", action="store_true")
    ap.add_argument("--summary-only", action="store_true",
                    help="only rebuild perplexity.json from the .fgld headers")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    models = Path(args.models)
    wanted = args.variants.split(",")
    summary_path = OUT / "perplexity.json"
    summary: dict = {}
    if args.summary_only:
        write_summary(summary_path, summary)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for variant, src, qtype in VARIANTS:
            if variant not in wanted:
                continue
            digests = None
            gguf = models / src
            if qtype is not None:
                gguf = Path(tmp) / f"{variant}.gguf"
                quantize(Path(args.formiga), models / src, gguf, qtype, args.threads)
                digests = file_digests(gguf)
                # formiga quantize must be deterministic for the test to re-create the file.
                again = Path(tmp) / f"{variant}.again.gguf"
                quantize(Path(args.formiga), models / src, again, qtype, args.threads)
                digests["deterministic"] = file_digests(again)["sha256"] == digests["sha256"]
                again.unlink()
                print(f"{variant}: quantized {digests}", flush=True)
            if not args.skip_llamacpp:
                llamacpp_golden(variant, gguf, qtype is None, digests, args.threads, summary)
            if not args.skip_hf:
                try:
                    hf_golden(variant, gguf, args.threads)
                except Exception as e:  # noqa: BLE001 - report which model transformers cannot load
                    print(f"{variant}: transformers failed: {type(e).__name__}: {e}", file=sys.stderr)
                    summary.setdefault("hf_failures", {})[variant] = f"{type(e).__name__}: {e}"[:500]
            write_summary(summary_path, summary)
    write_summary(summary_path, summary)
    if not args.skip_greedy:
        g = greedy_golden(models / "SmolLM2-135M-Instruct.Q4_1.gguf", args.threads)
        (OUT / "greedy.json").write_text(json.dumps(g, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
