#!/usr/bin/env python3
"""Golden files for formiga's block formats (src/core/quant_golden_test.cc).

What it makes (in tests/data/quant/, a few KB per case):
  * dequant cases -- raw block bytes and the f32 values gguf-py's
    gguf.quants.dequantize() gives for them:
      - slices of REAL tensors from the two test models in .cache/models
        (SmolLM2 Q4_1/Q8_0/F32, Gemma-3 Q4_K/Q6_K/Q5_0/Q8_0);
      - synthetic blocks (random bytes with sane f16 scales) for the types the
        models do not contain (Q2_K, Q3_K, Q5_K, Q4_0, Q5_1) and random
        16-bit patterns (inf, NaN, subnormals included) for F16/BF16.
  * quant cases -- a fixed pseudo-random f32 input (normal rows plus edge
    blocks: zeros, constant, negative-only, large, tiny), the bytes
    gguf-py's quantize() writes for it (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, BF16,
    F16), and gguf-py's dequantization of those bytes;
  * K-quant quant cases -- when llama-cpp-python (`llama_cpp`) is importable:
    the same input written as a one-tensor F32 GGUF and quantized by
    llama.cpp itself (llama_model_quantize, `pure` so every 2-D tensor gets
    the one type; no imatrix, i.e. ggml's quantize_row_*_ref) to Q2_K, Q3_K,
    Q4_K, Q5_K, Q6_K. Without llama_cpp those cases are skipped (and the
    committed files from a run with it are kept by not deleting them).

Format (documented for the C++ reader too): `manifest.txt`, one case a line,
whitespace separated, '#' starts a comment:
    dequant <type> <n> <blocks.bin> <expected.f32>                  [source]
    quant   <type> <n> <input.f32> <expected.bin> <expected_dequant.f32>
<type> is ggml's lower-case name (q4_k, bf16...), <n> the element count;
*.f32 are little-endian float32 arrays, *.bin raw block bytes as on disk.

Run from the repository root (needs numpy and gguf; the models come from
scripts/setup):
    python3 scripts/golden/make_quant_golden.py
"""
from __future__ import annotations

import importlib.metadata
import os
import sys

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader
from gguf import quants

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "quant")
MODELS = os.path.join(ROOT, ".cache", "models")
SMOL = os.path.join(MODELS, "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA = os.path.join(MODELS, "gemma-3-270m-q4_k_m.gguf")

lines: list[str] = []


def write(name: str, data: bytes) -> str:
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    return name


def block_info(qtype: T) -> tuple[int, int]:
    from gguf.constants import GGML_QUANT_SIZES
    return GGML_QUANT_SIZES[qtype]


def add_dequant(case: str, qtype: T, raw: np.ndarray, source: str) -> None:
    """raw: uint8 bytes of whole blocks."""
    bs, ts = block_info(qtype)
    raw = np.ascontiguousarray(raw, dtype=np.uint8).reshape(-1)
    assert raw.size % ts == 0
    n = raw.size // ts * bs
    expected = quants.dequantize(raw.reshape(1, -1), qtype).astype(np.float32).reshape(-1)
    assert expected.size == n
    name = qtype.name.lower()
    b = write(f"{case}.{name}.bin", raw.tobytes())
    e = write(f"{case}.{name}.f32", expected.astype("<f4").tobytes())
    lines.append(f"dequant {name} {n} {b} {e}  # {source}")


def add_quant(case: str, qtype: T, x: np.ndarray) -> None:
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(1, -1)
    with np.errstate(over="ignore"):  # f16 of huge inputs: inf, on purpose
        q = quants.quantize(x, qtype)
    raw = np.ascontiguousarray(q).view(np.uint8).reshape(-1)
    deq = quants.dequantize(raw.reshape(1, -1), qtype).astype(np.float32).reshape(-1)
    name = qtype.name.lower()
    inp = f"{case}.input.f32"
    if not os.path.exists(os.path.join(OUT, inp)):
        write(inp, x.astype("<f4").tobytes())
    b = write(f"{case}.{name}.q.bin", raw.tobytes())
    e = write(f"{case}.{name}.q.f32", deq.astype("<f4").tobytes())
    lines.append(f"quant {name} {x.size} {inp} {b} {e}")


def tensor_bytes(reader: GGUFReader, name: str, n_elements: int, qtype: T) -> np.ndarray:
    t = next(t for t in reader.tensors if t.name == name)
    assert t.tensor_type == qtype, (name, t.tensor_type)
    bs, ts = block_info(qtype)
    raw = np.asarray(t.data).view(np.uint8).reshape(-1)
    return raw[: n_elements // bs * ts]


def real_tensors() -> None:
    if not (os.path.exists(SMOL) and os.path.exists(GEMMA)):
        sys.exit(f"test models missing in {MODELS}: run scripts/setup first")
    smol = GGUFReader(SMOL)
    add_dequant("smol_blk0_attn_q", T.Q4_1, tensor_bytes(smol, "blk.0.attn_q.weight", 1024, T.Q4_1),
                "SmolLM2 blk.0.attn_q.weight, first 1024 elements")
    # token_embd rows are 576 long: take row 1000 (576 elements, 18 blocks).
    te = next(t for t in smol.tensors if t.name == "token_embd.weight")
    row = np.asarray(te.data).view(np.uint8).reshape(-1, 576 // 32 * 34)[1000]
    add_dequant("smol_token_embd_row1000", T.Q8_0, row, "SmolLM2 token_embd.weight row 1000")
    norm = next(t for t in smol.tensors if t.name == "blk.0.attn_norm.weight")
    add_dequant("smol_blk0_attn_norm", T.F32, np.asarray(norm.data).view(np.uint8),
                "SmolLM2 blk.0.attn_norm.weight")

    gemma = GGUFReader(GEMMA)
    add_dequant("gemma_blk0_attn_output", T.Q4_K,
                tensor_bytes(gemma, "blk.0.attn_output.weight", 1024, T.Q4_K),
                "Gemma-3 blk.0.attn_output.weight row 0")
    add_dequant("gemma_blk0_ffn_down", T.Q6_K, tensor_bytes(gemma, "blk.0.ffn_down.weight", 1024, T.Q6_K),
                "Gemma-3 blk.0.ffn_down.weight, first 1024 elements")
    add_dequant("gemma_blk0_attn_q", T.Q5_0, tensor_bytes(gemma, "blk.0.attn_q.weight", 640, T.Q5_0),
                "Gemma-3 blk.0.attn_q.weight row 0")
    add_dequant("gemma_blk0_attn_v", T.Q8_0, tensor_bytes(gemma, "blk.0.attn_v.weight", 640, T.Q8_0),
                "Gemma-3 blk.0.attn_v.weight row 0")


def synthetic_blocks(rng: np.random.Generator) -> None:
    def f16(v: np.ndarray) -> np.ndarray:
        return v.astype(np.float16).view(np.uint8).reshape(-1, 2)

    nb = 4
    # (type, offsets of f16 scale fields that must stay finite)
    for qtype, offsets in [(T.Q2_K, [80, 82]), (T.Q3_K, [108]), (T.Q4_K, [0, 2]),
                           (T.Q5_K, [0, 2]), (T.Q6_K, [208])]:
        _, ts = block_info(qtype)
        raw = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
        for off in offsets:
            raw[:, off:off + 2] = f16(rng.uniform(0.0005, 0.05, size=nb))
        add_dequant("synth", qtype, raw, "random bytes, random finite scales")
    nb = 32
    for qtype, offsets in [(T.Q4_0, [0]), (T.Q5_1, [0, 2]), (T.Q4_1, [0, 2]), (T.Q5_0, [0]),
                           (T.Q8_0, [0])]:
        _, ts = block_info(qtype)
        raw = rng.integers(0, 256, size=(nb, ts), dtype=np.uint8)
        for off in offsets:
            raw[:, off:off + 2] = f16(rng.uniform(-0.05, 0.05, size=nb))
        add_dequant("synth", qtype, raw, "random bytes, random finite scales")
    # Every class of 16-bit float: random patterns plus the special values.
    bits = rng.integers(0, 1 << 16, size=1024, dtype=np.uint32).astype(np.uint16)
    bits[:8] = [0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x0001, 0x03ff, 0x7bff]
    add_dequant("synth", T.F16, bits.view(np.uint8), "random f16 bit patterns")
    bits[:8] = [0x0000, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x0001, 0x007f, 0x7f7f]
    add_dequant("synth", T.BF16, bits.view(np.uint8), "random bf16 bit patterns")


def quant_inputs(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Block-friendly input (finite, 1024 = 4 x 256) and a float input with specials."""
    x = rng.standard_normal(1024).astype(np.float32) * 0.05
    x[0:32] = 0.0                                   # all-zero block
    x[32:64] = 0.125                                # constant block
    x[64:96] = -np.abs(x[64:96]) - 0.01             # negative-only
    x[96:128] = rng.standard_normal(32) * 5000.0    # large (d stays in f16 range)
    x[128:160] = rng.standard_normal(32) * 1e-6     # tiny (subnormal f16 d)
    x[160:192] = np.linspace(-1, 1, 32)             # exact ties for some levels
    y = (rng.standard_normal(1024) * np.exp(rng.uniform(-20, 12, 1024))).astype(np.float32)
    y[:12] = [0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 65519.0, 65520.0, 6e-8, 3e-8,
              2.9802322e-08, -1e-40]
    return x, y


def add_llama_cpp_kquants(x: np.ndarray) -> None:
    """Reference bytes from llama.cpp's own quantizer (see the docstring)."""
    import ctypes
    import tempfile

    import llama_cpp  # llama-cpp-python

    # llama_ftype values whose base type is the K-quant (pure = no mix).
    ftypes = [(T.Q2_K, 10), (T.Q3_K, 11), (T.Q4_K, 14), (T.Q5_K, 16), (T.Q6_K, 18)]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.gguf")
        w = gguf.GGUFWriter(src, "llama")
        w.add_context_length(64)
        w.add_embedding_length(256)
        w.add_block_count(1)
        w.add_feed_forward_length(256)
        w.add_head_count(2)
        w.add_head_count_kv(2)
        w.add_layer_norm_rms_eps(1e-5)
        w.add_file_type(0)
        w.add_tensor("blk.0.ffn_up.weight", x.reshape(-1, 256))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        for qtype, ftype in ftypes:
            dst = os.path.join(tmp, f"out_{ftype}.gguf")
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = ftype
            params.pure = True
            params.nthread = 1
            rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
            assert rc == 0, f"llama_model_quantize failed for {qtype.name}"
            t = next(t for t in GGUFReader(dst).tensors if t.name == "blk.0.ffn_up.weight")
            assert t.tensor_type == qtype
            raw = np.asarray(t.data).view(np.uint8).reshape(-1)
            deq = quants.dequantize(raw.reshape(1, -1), qtype).astype(np.float32).reshape(-1)
            name = qtype.name.lower()
            b = write(f"blocks.{name}.llamacpp.bin", raw.tobytes())
            e = write(f"blocks.{name}.llamacpp.f32", deq.astype("<f4").tobytes())
            lines.append(f"quant {name} {x.size} blocks.input.f32 {b} {e}  # llama-cpp-python "
                         f"{getattr(llama_cpp, '__version__', '?')} llama_model_quantize")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    try:
        import llama_cpp  # noqa: F401
        have_llama_cpp = True
    except ImportError:
        have_llama_cpp = False
        print("llama_cpp not importable: keeping the committed K-quant quant goldens", file=sys.stderr)
    # Without llama_cpp, keep the committed llama.cpp cases (files and lines).
    kept: list[str] = []
    manifest = os.path.join(OUT, "manifest.txt")
    if not have_llama_cpp and os.path.exists(manifest):
        with open(manifest) as f:
            kept = [line.rstrip("\n") for line in f if ".llamacpp." in line]
    for f in os.listdir(OUT):
        if not have_llama_cpp and ".llamacpp." in f:
            continue
        os.remove(os.path.join(OUT, f))
    rng = np.random.default_rng(20250101)
    real_tensors()
    synthetic_blocks(rng)
    x, y = quant_inputs(rng)
    for qtype in [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.BF16, T.F16]:
        add_quant("blocks", qtype, x)
    for qtype in [T.BF16, T.F16]:
        add_quant("floats", qtype, y)
    if have_llama_cpp:
        add_llama_cpp_kquants(x)
    lines.extend(kept)
    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        f.write("# Generated by scripts/golden/make_quant_golden.py (gguf-py "
                f"{importlib.metadata.version('gguf')}, numpy {np.__version__}); "
                "format documented there.\n")
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print(f"wrote {len(lines)} cases, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
