#!/usr/bin/env python3
"""Writes the small seed corpora for the parser fuzzers (fuzz/*_fuzz.cc).

Makes fuzz/seeds/gguf/*.gguf with gguf-py (every metadata value type, nested
arrays, several tensor types, alignment 32 and 64) and
fuzz/seeds/safetensors/*.safetensors with the `safetensors` package. Each file
is a few hundred bytes to a few KB so that mutations reach the header often.

Run: python3 fuzz/seeds/make_seeds.py   (needs gguf, numpy, safetensors)
Then: build/gguf-fuzz/gguf_fuzz -max_total_time=120 fuzz-corpus/gguf fuzz/seeds/gguf
"""
from pathlib import Path

import numpy as np
import gguf
from safetensors.numpy import save_file

HERE = Path(__file__).resolve().parent


def gguf_seed(path: Path, alignment: int | None, tensors: bool) -> None:
    w = gguf.GGUFWriter(str(path), arch="llama")
    if alignment is not None:
        w.add_uint32("general.alignment", alignment)
    w.add_uint8("t.u8", 7)
    w.add_int8("t.i8", -7)
    w.add_uint16("t.u16", 700)
    w.add_int16("t.i16", -700)
    w.add_uint32("llama.block_count", 2)
    w.add_int32("t.i32", -70000)
    w.add_float32("llama.rope.freq_base", 10000.0)
    w.add_uint64("t.u64", 1 << 40)
    w.add_int64("t.i64", -(1 << 40))
    w.add_float64("t.f64", 0.25)
    w.add_bool("tokenizer.ggml.add_bos_token", True)
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_array("tokenizer.ggml.tokens", ["a", "b", "ab", "<s>"])
    w.add_array("tokenizer.ggml.scores", [0.0, -1.0, -2.0, -3.0])
    w.add_array("t.nested", [[1, 2], [3]])
    if tensors:
        w.add_tensor("a", np.arange(8, dtype=np.float32))
        w.add_tensor("b", np.arange(16, dtype=np.float16).reshape(2, 8))
        w.add_tensor("q", np.zeros((1, 34), dtype=np.uint8), raw_shape=(1, 34), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main() -> None:
    gguf_seed(HERE / "gguf" / "small.gguf", None, True)
    gguf_seed(HERE / "gguf" / "align64.gguf", 64, True)
    gguf_seed(HERE / "gguf" / "no_tensors.gguf", None, False)
    save_file({"a": np.arange(4, dtype=np.float32), "b": np.ones((2, 3), dtype=np.int64),
               "e": np.zeros((0, 5), dtype=np.float16)},
              str(HERE / "safetensors" / "small.safetensors"), metadata={"format": "pt"})
    save_file({"w": np.arange(6, dtype=np.uint8).reshape(2, 3)}, str(HERE / "safetensors" / "one.safetensors"))


if __name__ == "__main__":
    main()
