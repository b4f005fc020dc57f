"""GGUF interoperability between formiga and gguf-py (the reference Python reader/writer).

Two directions:

1. formiga writes, gguf-py reads. The sample is written by formiga's own writer
   through its unit test binary: `gguf_writer_test --gtest_filter=GgufWriterInterop.WriteSample`
   with FORMIGA_GGUF_SAMPLE=<path> writes the file (no hidden CLI command needed).
   The binary is found next to FORMIGA_BIN (build/<dir>/src/formats/gguf_writer_test)
   or given by FORMIGA_GGUF_WRITER_TEST. The expected values below mirror
   AddAllValueTypes() and PatternByte() in src/formats/gguf_writer_test.cc.
2. gguf-py writes (every value type, nested arrays, several tensor types, alignment 64),
   formiga reads: `formiga info --json` must report identical values, types, shapes and sizes.

Also `formiga info` itself on the real test models (checked against gguf-py's reading), its
error messages, and a sharded safetensors checkpoint.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
VT = gguf.GGUFValueType


def _writer_test_bin(formiga_bin: Path) -> Path:
    env = os.environ.get("FORMIGA_GGUF_WRITER_TEST")
    path = Path(env) if env else formiga_bin.parent / "src" / "formats" / "gguf_writer_test"
    if not path.exists():
        pytest.skip(f"{path} not built (unit tests off?); set FORMIGA_GGUF_WRITER_TEST")
    return path


def _pattern(t: int, n: int) -> bytes:
    return bytes(((t * 31 + j * 7 + 1) & 0xFF) for j in range(n))


F32 = float(np.float32(0.1))
# key -> (gguf-py value types, contents()) in insertion order; mirrors AddAllValueTypes().
EXPECTED_META = [
    ("general.architecture", [VT.STRING], "llama"),
    ("t.u8", [VT.UINT8], 255),
    ("t.i8", [VT.INT8], -128),
    ("t.u16", [VT.UINT16], 65535),
    ("t.i16", [VT.INT16], -32768),
    ("t.u32", [VT.UINT32], 4294967295),
    ("t.i32", [VT.INT32], -2147483648),
    ("t.u64", [VT.UINT64], 18446744073709551615),
    ("t.i64", [VT.INT64], -9223372036854775808),
    ("t.f32", [VT.FLOAT32], F32),
    ("t.f64", [VT.FLOAT64], -2.5e300),
    ("t.bool_true", [VT.BOOL], True),
    ("t.bool_false", [VT.BOOL], False),
    ("t.string", [VT.STRING], 'h\u00e9llo \n\t"world"'),
    ("t.empty_string", [VT.STRING], ""),
    ("t.strings", [VT.ARRAY, VT.STRING], ["a", "", "\u2581token"]),
    ("t.floats", [VT.ARRAY, VT.FLOAT32], [1.5, -0.0, float(np.float32(3.4028235e38))]),
    ("t.ints", [VT.ARRAY, VT.INT32], [-1, 0, 2147483647]),
    ("t.u8s", [VT.ARRAY, VT.UINT8], [1, 2]),
    ("t.bools", [VT.ARRAY, VT.BOOL], [True, False]),
    ("t.f64s", [VT.ARRAY, VT.FLOAT64], [1e-300]),
    ("t.empty_array", [VT.ARRAY], []),  # gguf-py records no element type for empty arrays
    ("t.nested", None, None),  # gguf-py's contents() cannot decode mixed nested arrays; checked below
]
# (name, ggml type, ne, bytes) mirrors WriteSample(): shape {block*2, 3}.
EXPECTED_TENSORS = [
    ("w.f32", gguf.GGMLQuantizationType.F32, [2, 3], 24),
    ("w.f16", gguf.GGMLQuantizationType.F16, [2, 3], 12),
    ("w.bf16", gguf.GGMLQuantizationType.BF16, [2, 3], 12),
    ("w.q8_0", gguf.GGMLQuantizationType.Q8_0, [64, 3], 34 * 6),
    ("w.q4_k", gguf.GGMLQuantizationType.Q4_K, [512, 3], 144 * 6),
    ("w.i32", gguf.GGMLQuantizationType.I32, [2, 3], 24),
]


@pytest.fixture(scope="module")
def formiga_sample(formiga_bin, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("interop") / "formiga_writer_sample.gguf"
    binary = _writer_test_bin(formiga_bin)
    proc = subprocess.run([str(binary), "--gtest_filter=GgufWriterInterop.WriteSample"],
                          env={**os.environ, "FORMIGA_GGUF_SAMPLE": str(out)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.exists()
    return out


def test_gguf_py_reads_formiga_file(formiga_sample):
    r = gguf.GGUFReader(str(formiga_sample))
    fields = [(k, f) for k, f in r.fields.items() if not k.startswith("GGUF.")]
    assert [k for k, _ in fields] == [k for k, _, _ in EXPECTED_META]
    assert r.fields["GGUF.version"].contents() == 3
    for (key, types, value), (_, field) in zip(EXPECTED_META, fields):
        if types is None:
            continue
        assert field.types == types, key
        assert field.contents() == value, key
    nested = r.fields["t.nested"]
    assert nested.types[:2] == [VT.ARRAY, VT.ARRAY]
    assert r.alignment == 32
    assert len(r.tensors) == len(EXPECTED_TENSORS)
    for k, (t, (name, qtype, ne, nbytes)) in enumerate(zip(r.tensors, EXPECTED_TENSORS)):
        assert t.name == name
        assert t.tensor_type == qtype
        assert [int(x) for x in t.shape] == ne
        assert int(t.n_bytes) == nbytes
        assert (t.data_offset - r.data_offset) % 32 == 0
        assert t.data.tobytes() == _pattern(k, nbytes), name


def test_formiga_info_agrees_with_gguf_py_on_formiga_file(formiga_sample, run_formiga):
    info = json.loads(run_formiga("info", "--json", formiga_sample).stdout)
    meta = info["metadata"]
    assert meta["t.nested"] == {
        "type": "array", "elem_type": "array", "length": 2, "truncated": False,
        "value": [
            {"type": "array", "elem_type": "int32", "length": 2, "value": [1, 2], "truncated": False},
            {"type": "array", "elem_type": "string", "length": 1, "value": ["x"], "truncated": False},
        ]}
    assert meta["t.u64"] == {"type": "uint64", "value": 18446744073709551615}
    assert meta["t.empty_array"]["elem_type"] == "int64"
    assert meta["t.f32"] == {"type": "float32", "value": F32}
    assert info["totals"]["tensors"] == len(EXPECTED_TENSORS)


def _gguf_py_file(path: Path) -> dict:
    """Writes every value type with gguf-py; returns key -> (formiga type name, value)."""
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_custom_alignment(64)  # sets general.alignment and pads with it
    w.add_uint8("k.u8", 200)
    w.add_int8("k.i8", -100)
    w.add_uint16("k.u16", 60000)
    w.add_int16("k.i16", -30000)
    w.add_uint32("k.u32", 4000000000)
    w.add_int32("k.i32", -2000000000)
    w.add_float32("k.f32", 1.25)
    w.add_uint64("k.u64", 2**64 - 1)
    w.add_int64("k.i64", -(2**63))
    w.add_float64("k.f64", 3.141592653589793)
    w.add_bool("k.bool", True)
    w.add_string("k.str", "caf\u00e9 \u2581x\n")
    w.add_array("k.strs", ["x", "", "yz"])
    w.add_array("k.ints", [1, -2, 3])
    w.add_array("k.floats", [0.5, -1.5])
    w.add_array("k.bools", [False, True])
    w.add_key_value("k.u8s", [9, 8], VT.ARRAY, sub_type=VT.UINT8)
    w.add_array("k.nested", [[1, 2], [3]])
    w.add_array("k.long", list(range(100)))
    w.add_tensor("t.f32", np.arange(12, dtype=np.float32).reshape(3, 4))
    w.add_tensor("t.f16", np.ones((2, 8), dtype=np.float16))
    w.add_tensor("t.q8_0", np.zeros((2, 34), dtype=np.uint8), raw_shape=(2, 34),
                 raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {
        "general.architecture": ("string", "llama"),
        "general.alignment": ("uint32", 64),
        "k.u8": ("uint8", 200), "k.i8": ("int8", -100), "k.u16": ("uint16", 60000),
        "k.i16": ("int16", -30000), "k.u32": ("uint32", 4000000000), "k.i32": ("int32", -2000000000),
        "k.f32": ("float32", 1.25), "k.u64": ("uint64", 2**64 - 1), "k.i64": ("int64", -(2**63)),
        "k.f64": ("float64", 3.141592653589793), "k.bool": ("bool", True),
        "k.str": ("string", "caf\u00e9 \u2581x\n"),
    }


def test_formiga_reads_gguf_py_file(tmp_path, run_formiga):
    path = tmp_path / "gguf_py.gguf"
    scalars = _gguf_py_file(path)
    info = json.loads(run_formiga("info", "--json", path).stdout)
    assert info["file"]["alignment"] == 64
    assert info["file"]["version"] == 3
    meta = info["metadata"]
    ref = gguf.GGUFReader(str(path))
    assert list(meta) == [k for k in ref.fields if not k.startswith("GGUF.")]
    for key, (type_name, value) in scalars.items():
        assert meta[key] == {"type": type_name, "value": value}, key

    def arr(elem, values, length=None, truncated=False):
        return {"type": "array", "elem_type": elem, "length": length or len(values), "value": values,
                "truncated": truncated}

    assert meta["k.strs"] == arr("string", ["x", "", "yz"])
    assert meta["k.ints"] == arr("int32", [1, -2, 3])
    assert meta["k.floats"] == arr("float32", [0.5, -1.5])
    assert meta["k.bools"] == arr("bool", [False, True])
    assert meta["k.u8s"] == arr("uint8", [9, 8])
    assert meta["k.nested"] == arr("array", [arr("int32", [1, 2]), arr("int32", [3])])
    assert meta["k.long"] == arr("int32", list(range(8)), length=100, truncated=True)
    # Every value also agrees with gguf-py's own reading of the file.
    for key, field in ref.fields.items():
        if key.startswith("GGUF.") or field.types[0] == VT.ARRAY:
            continue
        assert meta[key]["value"] == field.contents(), key

    tensors = {t["name"]: t for t in info["tensors"]}
    for t in ref.tensors:
        mine = tensors[t.name]
        assert mine["shape"] == [int(x) for x in t.shape]
        assert mine["type"] == t.tensor_type.name.lower()
        assert mine["bytes"] == int(t.n_bytes)
        assert mine["offset"] + info["file"]["data_offset"] == t.data_offset
    assert tensors["t.f32"]["shape"] == [4, 3]  # ne[0] first: numpy (3, 4) reversed
    assert info["totals"]["parameters"] == 12 + 16 + 64


# ---- formiga info on the real test models and on safetensors -----------------

def test_info_smollm2_table_and_json(smollm2, run_formiga):
    out = run_formiga("info", smollm2).stdout
    for needle in ("GGUF v3", "architecture   llama", "block_count", "49152 tokens", "48900",
                   "1 '<|im_start|>'", "chat template  (368 chars", "token_embd.weight", "MOSTLY_Q4_1",
                   "134.52 M (134515008)", "bits/weight    5.744"):
        assert needle in out, needle
    assert "ectable" not in out  # the vocabulary is summarized, never dumped
    info = json.loads(run_formiga("info", "--json", smollm2).stdout)
    ref = gguf.GGUFReader(str(smollm2))
    assert info["hparams"]["attention.head_count_kv"] == 3
    assert len(info["tensors"]) == len(ref.tensors) == 272
    assert info["totals"]["parameters"] == sum(int(t.n_elements) for t in ref.tensors)
    assert info["totals"]["data_bytes"] == sum(int(t.n_bytes) for t in ref.tensors)
    assert info["tokenizer"]["chat_template"] == ref.fields["tokenizer.chat_template"].contents()
    assert info["metadata"]["tokenizer.ggml.tokens"]["length"] == 49152
    assert len(info["metadata"]["tokenizer.ggml.tokens"]["value"]) == 8


def test_info_gemma3_json(gemma3, run_formiga):
    info = json.loads(run_formiga("info", "--json", gemma3).stdout)
    assert info["architecture"] == "gemma3"
    assert info["tokenizer"]["vocab_size"] == 262144
    assert info["totals"]["by_type"]["q6_k"]["tensors"] == 9
    assert info["general"]["file_type_name"] == "MOSTLY_Q4_K_M"


def test_info_errors(tmp_path, run_formiga):
    missing = run_formiga("info", tmp_path / "nope.gguf", check=False)
    assert missing.returncode == 1 and "nope.gguf" in missing.stderr
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world, not a model")
    bad = run_formiga("info", junk, check=False)
    assert bad.returncode == 1 and "neither a GGUF nor a safetensors" in bad.stderr
    trunc = tmp_path / "trunc.gguf"
    trunc.write_bytes(b"GGUF\x03\x00\x00\x00\x01")
    bad = run_formiga("info", trunc, check=False)
    assert bad.returncode == 1 and "offset 8" in bad.stderr and "truncated" in bad.stderr


def test_info_safetensors_checkpoint(tmp_path, run_formiga):
    from safetensors.numpy import save_file
    save_file({"model.embed_tokens.weight": np.zeros((10, 4), dtype=np.float32)},
              str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"lm_head.weight": np.zeros((10, 4), dtype=np.float16)},
              str(tmp_path / "model-00002-of-00002.safetensors"))
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
        "lm_head.weight": "model-00002-of-00002.safetensors"}}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 4,
                                                      "num_hidden_layers": 0}))
    info = json.loads(run_formiga("info", "--json", tmp_path).stdout)
    assert info["config"]["model_type"] == "llama"
    assert {t["name"]: (t["dtype"], t["shape"]) for t in info["tensors"]} == {
        "model.embed_tokens.weight": ("F32", [10, 4]), "lm_head.weight": ("F16", [10, 4])}
    assert info["totals"]["parameters"] == 80
    assert info["totals"]["data_bytes"] == 160 + 80
    assert "model_type" in run_formiga("info", tmp_path).stdout
