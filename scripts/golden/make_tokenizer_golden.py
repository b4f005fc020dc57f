#!/usr/bin/env python3
"""Writes golden token ids for the tokenizer conformance test.

Usage: python3 scripts/golden/make_tokenizer_golden.py [MODELS_DIR]
  (MODELS_DIR defaults to .cache/models; needs `transformers` and `tokenizers`.)

References (no hub access; everything is rebuilt from the GGUF files):
  smollm2: Hugging Face `tokenizers`, from transformers' GGUF loader
    (AutoTokenizer.from_pretrained(dir, gguf_file=...)) with its pre-tokenizer
    set to Digits(individual_digits) + ByteLevel. NOTE: the loader emits a bare
    ByteLevel pre-tokenizer for tokenizer.ggml.pre="smollm", which differs from
    the real SmolLM2 tokenizer.json (and from llama.cpp's "smollm" regexes)
    where whitespace or a prefix space meets a digit ("  1", " ¾"); the script
    prints how many lines the unpatched loader gets wrong.
  gemma3: the `sentencepiece` library itself, on a ModelProto rebuilt from the
    GGUF pieces/scores/types (BPE, byte_fallback, identity normalizer, no dummy
    prefix, whitespace escaped; user-defined pieces get their "▁" back). Control
    tokens are split out in Python for the parse_special case (longest match).
    NOTE: transformers' GGUF loader turns Gemma's user-defined whitespace runs
    into ordinary merges, so long space runs split differently (16+16+18
    instead of SentencePiece's greedy 31+19); the script prints the count.
For each test model it writes, next to tests/data/tokenizer/corpus.txt (see
make_tokenizer_corpus.py for the line escapes):
  <name>.ids          one line per corpus line: the ids of encode(line) with the
                      model's special tokens added (BOS for Gemma) and special
                      token strings recognised (HF's default; formiga's
                      parse_special=true), space separated.
  <name>.nospecial.ids  for corpus lines containing '<': "LINE<TAB>ids" with
                      special tokens NOT recognised (HF encode_special_tokens;
                      formiga's parse_special=false). Line numbers are 1-based.
If llama-cpp-python is importable it also tokenizes every line with llama.cpp
(vocab_only) and prints how many lines agree; the goldens stay HF's.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests/data/tokenizer"
MODELS = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".cache/models"
TESTS = [("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), ("gemma3", "gemma-3-270m-q4_k_m.gguf")]


def unescape(line):
    out, i = [], 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in "nrt\\":
            out.append({"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[line[i + 1]])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sentencepiece_for(gguf_path):
    """A SentencePieceProcessor for the GGUF's vocabulary, plus control tokens."""
    import sentencepiece as spm
    from gguf import GGUFReader
    from sentencepiece import sentencepiece_model_pb2 as pb
    r = GGUFReader(str(gguf_path))
    toks = r.fields["tokenizer.ggml.tokens"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    scores = r.fields["tokenizer.ggml.scores"].contents()
    m = pb.ModelProto()
    m.trainer_spec.model_type = pb.TrainerSpec.BPE
    m.trainer_spec.byte_fallback = True
    m.trainer_spec.vocab_size = len(toks)
    for k in ("unk", "bos", "eos", "pad"):
        key = {"unk": "unknown", "pad": "padding"}.get(k, k)
        setattr(m.trainer_spec, k + "_id", int(r.fields[f"tokenizer.ggml.{key}_token_id"].contents()))
    m.normalizer_spec.name = "identity"
    m.normalizer_spec.add_dummy_prefix = False
    m.normalizer_spec.remove_extra_whitespaces = False
    m.normalizer_spec.escape_whitespaces = True
    P = pb.ModelProto.SentencePiece
    kinds = {1: P.NORMAL, 2: P.UNKNOWN, 3: P.CONTROL, 4: P.USER_DEFINED, 5: P.UNUSED, 6: P.BYTE}
    for t, ty, sc in zip(toks, types, scores):
        p = m.pieces.add()
        p.piece = t.replace(" ", "\u2581") if ty == 4 else t
        p.score = sc
        p.type = kinds[ty]
    sp = spm.SentencePieceProcessor(model_proto=m.SerializeToString())
    controls = {t: i for i, (t, ty) in enumerate(zip(toks, types)) if ty in (2, 3) and t}
    bos = int(r.fields["tokenizer.ggml.bos_token_id"].contents())
    return sp, controls, bos


def sp_encode(sp, controls, bos, text, parse_special):
    import re
    ids = [bos]
    if not parse_special:
        return ids + sp.encode(text)
    if not hasattr(sp_encode, "rx"):
        alts = sorted(controls, key=len, reverse=True)  # first alternative = longest
        sp_encode.rx = re.compile("|".join(re.escape(a) for a in alts))
    pos = 0
    for mt in sp_encode.rx.finditer(text):
        if mt.start() > pos:
            ids += sp.encode(text[pos:mt.start()])
        ids.append(controls[mt.group(0)])
        pos = mt.end()
    if pos < len(text):
        ids += sp.encode(text[pos:])
    return ids


def main():
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer
    lines = (DATA / "corpus.txt").read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    texts = [unescape(l) for l in lines]
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        llama_cpp = None
    for name, gguf in TESTS:
        tok = AutoTokenizer.from_pretrained(str(MODELS), gguf_file=gguf)
        bt = tok.backend_tokenizer
        bt.save(f"/tmp/formiga_{name}_tokenizer.json")  # handy for debugging
        hf = [bt.encode(t, add_special_tokens=True).ids for t in texts]
        # The loader's own ids, for the (local-only) tokenizer.json front-end test.
        with open(f"/tmp/formiga_{name}_hf.ids", "w") as f:
            f.write("".join(" ".join(map(str, ids)) + "\n" for ids in hf))
        if name == "smollm2":
            bt.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
            encode = lambda t, special: (setattr(bt, "encode_special_tokens", not special),
                                         bt.encode(t, add_special_tokens=True).ids)[1]
        else:
            sp, controls, bos = sentencepiece_for(MODELS / gguf)
            encode = lambda t, special: sp_encode(sp, controls, bos, t, special)
        ref = [encode(t, True) for t in texts]
        diff = [n for n, (a, b) in enumerate(zip(hf, ref), 1) if a != b]
        print(f"{name}: transformers' GGUF loader differs from the reference on {len(diff)} lines: {diff[:12]}")
        with open(DATA / f"{name}.ids", "w") as f:
            for ids in ref:
                f.write(" ".join(map(str, ids)) + "\n")
        with open(DATA / f"{name}.nospecial.ids", "w") as f:
            for n, t in enumerate(texts, 1):
                if "<" in t:
                    f.write(f"{n}\t" + " ".join(map(str, encode(t, False))) + "\n")
        print(f"{name}: wrote goldens for {len(texts)} lines")
        if llama_cpp is not None:
            llm = llama_cpp.Llama(str(MODELS / gguf), vocab_only=True, verbose=False)
            agree = 0
            for t in texts:
                got = llm.tokenize(t.encode("utf-8"), add_bos=True, special=True)
                agree += encode(t, True) == got
            print(f"{name}: llama.cpp agrees with the reference on {agree}/{len(texts)} lines")


if __name__ == "__main__":
    main()
