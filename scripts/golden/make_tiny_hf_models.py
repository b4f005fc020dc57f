#!/usr/bin/env python3
"""Makes tiny random Hugging Face checkpoints for formiga's HF-loading tests.

What it writes, under tests/data/hf/<arch>/ for arch in llama, qwen2, gemma3, falcon:
  config.json, model.safetensors   -- save_pretrained(safe_serialization=True), f32
  tensors.json                     -- {"name": [shape...]} of every stored tensor
  reference_logits.bin / .json     -- transformers' logits for a fixed 8-token input
and tests/data/hf/llama-sharded/: the llama model again, saved in several
shards (model-0000N-of-0000M.safetensors + model.safetensors.index.json).

reference_logits.bin is raw little-endian float32, row-major [n_tokens, vocab]
(the logits for every input position); reference_logits.json holds
{"input_ids": [...], "shape": [n_tokens, vocab], "dtype": "f32", "transformers": version}.

Models are seeded (torch.manual_seed) and tiny (hidden 64, 2-3 layers, vocab
320) so that each folder stays well under 1 MB. Needs torch and transformers;
CI does not run this script, tests read the committed outputs.

Run: python3 scripts/golden/make_tiny_hf_models.py [--out tests/data/hf]
"""
import argparse
import json
import os
import shutil

import numpy as np
import torch
import transformers
from transformers import (FalconConfig, FalconForCausalLM, Gemma3ForCausalLM, Gemma3TextConfig,
                          LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM)

VOCAB = 320
INPUT_IDS = [1, 17, 42, 99, 7, 250, 3, 128]


def make_models():
    common = dict(vocab_size=VOCAB, hidden_size=64, max_position_embeddings=256)
    return {
        "llama": (LlamaForCausalLM, LlamaConfig(
            **common, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)),
        "qwen2": (Qwen2ForCausalLM, Qwen2Config(
            **common, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0, tie_word_embeddings=True)),
        # 3 layers with a pattern of 3: layers 0, 1 slide, layer 2 is global.
        "gemma3": (Gemma3ForCausalLM, Gemma3TextConfig(
            **common, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=1, head_dim=32, rms_norm_eps=1e-6, sliding_window=4,
            layer_types=["sliding_attention", "sliding_attention", "full_attention"],
            query_pre_attn_scalar=32, rope_theta=1000000.0, rope_local_base_freq=10000.0,
            final_logit_softcapping=None, attn_logit_softcapping=None)),
        # Falcon-40B style: new decoder architecture, grouped KV heads, two norms.
        "falcon": (FalconForCausalLM, FalconConfig(
            vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_kv_heads=2, new_decoder_architecture=True, multi_query=False, parallel_attn=True,
            bias=False, alibi=False, max_position_embeddings=256, layer_norm_epsilon=1e-5,
            ffn_hidden_size=256)),
    }


def init_small(model, seed):
    # Random weights with a visible spread (default init gives ~0.02 std and
    # near-uniform logits, which would make a logits comparison weak).
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                if "norm" in name or "ln" in name:
                    p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
                    if "gemma" in type(model).__name__.lower():
                        p.copy_(0.1 * torch.randn(p.shape, generator=g))  # gemma norms are (1 + w)
                    if name.endswith("bias"):
                        p.copy_(0.05 * torch.randn(p.shape, generator=g))
                else:
                    p.copy_(0.05 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[-1] ** 0.5))


def save_reference(model, out_dir):
    ids = torch.tensor([INPUT_IDS])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].to(torch.float32).numpy()
    logits.astype("<f4").tofile(os.path.join(out_dir, "reference_logits.bin"))
    with open(os.path.join(out_dir, "reference_logits.json"), "w") as f:
        json.dump({"input_ids": INPUT_IDS, "shape": list(logits.shape), "dtype": "f32",
                   "layout": "row-major [n_tokens, vocab], little-endian",
                   "transformers": transformers.__version__, "torch": torch.__version__}, f, indent=1)


def save_listing(model, out_dir):
    from safetensors import safe_open
    listing = {}
    files = sorted(x for x in os.listdir(out_dir) if x.endswith(".safetensors"))
    for fn in files:
        with safe_open(os.path.join(out_dir, fn), "np") as st:
            for k in st.keys():
                listing[k] = list(st.get_slice(k).get_shape())
    with open(os.path.join(out_dir, "tensors.json"), "w") as f:
        json.dump(dict(sorted(listing.items())), f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "hf"))
    args = ap.parse_args()
    for seed, (arch, (cls, cfg)) in enumerate(make_models().items()):
        torch.manual_seed(1234 + seed)
        model = cls(cfg).eval()
        init_small(model, 1234 + seed)
        out_dir = os.path.join(args.out, arch)
        shutil.rmtree(out_dir, ignore_errors=True)
        model.save_pretrained(out_dir, safe_serialization=True)
        for extra in ("generation_config.json",):
            if os.path.exists(os.path.join(out_dir, extra)):
                os.remove(os.path.join(out_dir, extra))
        save_reference(model, out_dir)
        save_listing(model, out_dir)
        if arch == "llama":
            sh_dir = os.path.join(args.out, "llama-sharded")
            shutil.rmtree(sh_dir, ignore_errors=True)
            model.save_pretrained(sh_dir, safe_serialization=True, max_shard_size="100KB")
            if os.path.exists(os.path.join(sh_dir, "generation_config.json")):
                os.remove(os.path.join(sh_dir, "generation_config.json"))
            save_listing(model, sh_dir)
        size = sum(os.path.getsize(os.path.join(out_dir, x)) for x in os.listdir(out_dir))
        print(f"{arch}: {out_dir} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
