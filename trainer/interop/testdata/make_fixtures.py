#!/usr/bin/env python3
"""Makes the interop fixtures that trainer/interop's Go tests read.

Run once, from this folder:  python3 make_fixtures.py
Made with: Python 3.11.7, torch 2.15.0 (the PyPI wheel, run on the CPU), transformers 5.24.0,
safetensors 0.8.0, tokenizers 0.23.3. The versions
actually used are also written into every fixture (fixture.json and the
safetensors metadata), so a rerun with other versions is visible in the diff.

It writes, all small (d_model 64, 2 layers, a 256-id vocabulary):

  hf_tiny/          a transformers MambaForCausalLM saved with save_pretrained:
                    config.json, model.safetensors (tied lm_head left out, as
                    transformers does), tokenizer.json (a byte-level BPE with
                    the 256 byte tokens and no merges), and batch.safetensors:
                    input_ids (2, 16) I64 and that model's logits (2, 16, 256)
                    F32 from the slow (pure PyTorch) path in float32.
  mamba_ssm_tiny/   the same weights in mamba_ssm's MambaLMHeadModel layout:
                    config.json with mamba_ssm's MambaConfig fields (vocab_size
                    251 with pad_vocab_size_multiple 8, so the embedding has 256
                    rows, as mamba_ssm pads it), and pytorch_model.bin written by
                    torch.save of the state dict (zip + pickle, lm_head.weight
                    sharing the embedding's storage, as a tied model saves it),
                    plus the same batch.safetensors.
  torch_small.pt    a torch.save'd dict of small tensors of several dtypes, one
                    a transposed view, for the pickle reader's tests;
                    torch_small.json holds their values as JSON.

mamba_ssm itself needs CUDA to install, so its layout is produced here from
the names its MambaLMHeadModel documents (backbone.embedding.weight,
backbone.layers.N.mixer.*, backbone.layers.N.norm.weight, backbone.norm_f.weight,
lm_head.weight); the mixer parameters are the same as transformers' MambaMixer's.
"""
import collections
import json
import os
import platform
import shutil
import sys

import safetensors
import safetensors.torch
import tokenizers
import torch
import transformers
from transformers import MambaConfig, MambaForCausalLM

HERE = os.path.dirname(os.path.abspath(__file__))
VERSIONS = {
    "python": platform.python_version(),
    "torch": torch.__version__,
    "transformers": transformers.__version__,
    "safetensors": safetensors.__version__,
    "tokenizers": tokenizers.__version__,
}


def fresh(path):
    if os.path.exists(path):
        shutil.rmtree(path)
    os.makedirs(path)


def byte_tokenizer(path):
    """A byte-level BPE tokenizer.json: the 256 byte symbols, no merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    # ByteLevel.alphabet() is a set; order the ids by the byte each symbol stands for.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    sym = {b: chr(c) for b, c in zip(bs, cs)}
    vocab = {sym[b]: b for b in range(256)}
    assert set(vocab) == set(alphabet)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.save(path)


def main():
    torch.manual_seed(20250101)
    cfg = MambaConfig(
        vocab_size=256,
        hidden_size=64,
        state_size=16,
        num_hidden_layers=2,
        expand=2,
        conv_kernel=4,
        time_step_rank="auto",
        layer_norm_epsilon=1e-5,
        use_bias=False,
        use_conv_bias=True,
        tie_word_embeddings=True,
        use_mambapy=False,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = MambaForCausalLM(cfg).float().eval()
    # Move every parameter off its initial value (norm weights and D start at
    # one, A_log at log(1..n)), so that a tensor mapped to the wrong place
    # changes the logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("norm_f.weight") or name.endswith(".D"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("A_log"):
                p.add_(0.2 * torch.randn_like(p))
            elif name.endswith("embeddings.weight"):
                p.copy_(0.5 * torch.randn_like(p))
            elif name.endswith("dt_proj.bias"):
                p.add_(0.3 * torch.randn_like(p))
            else:
                p.add_(0.05 * torch.randn_like(p))
    g = torch.Generator().manual_seed(7)
    input_ids = torch.randint(0, 256, (2, 16), generator=g)
    with torch.no_grad():
        logits = model(input_ids=input_ids, use_cache=False).logits.float().contiguous()
    meta = {"made_by": "make_fixtures.py", **{k: str(v) for k, v in VERSIONS.items()}}
    batch = {"input_ids": input_ids.contiguous(), "logits": logits}

    hf = os.path.join(HERE, "hf_tiny")
    fresh(hf)
    model.save_pretrained(hf, safe_serialization=True)
    for extra in ("generation_config.json",):
        p = os.path.join(hf, extra)
        if os.path.exists(p):
            os.remove(p)
    byte_tokenizer(os.path.join(hf, "tokenizer.json"))
    safetensors.torch.save_file(batch, os.path.join(hf, "batch.safetensors"), metadata=meta)

    ms = os.path.join(HERE, "mamba_ssm_tiny")
    fresh(ms)
    sd = model.state_dict()
    out = collections.OrderedDict()
    for k, v in sd.items():
        out[k.replace("backbone.embeddings.", "backbone.embedding.")] = v
    out._metadata = collections.OrderedDict(
        (k.replace("backbone.embeddings", "backbone.embedding"), v) for k, v in sd._metadata.items()
    )
    assert out["lm_head.weight"].untyped_storage().data_ptr() == out["backbone.embedding.weight"].untyped_storage().data_ptr()
    torch.save(out, os.path.join(ms, "pytorch_model.bin"))
    ms_cfg = {
        "d_model": 64,
        "d_intermediate": 0,
        "n_layer": 2,
        "vocab_size": 251,
        "ssm_cfg": {},
        "attn_layer_idx": [],
        "attn_cfg": {},
        "rms_norm": True,
        "residual_in_fp32": True,
        "fused_add_norm": True,
        "pad_vocab_size_multiple": 8,
        "tie_embeddings": True,
    }
    with open(os.path.join(ms, "config.json"), "w") as f:
        json.dump(ms_cfg, f, indent=4)
    safetensors.torch.save_file(batch, os.path.join(ms, "batch.safetensors"), metadata=meta)

    a = torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4
    small = collections.OrderedDict()
    small["a"] = a
    small["a_t"] = a.t()  # a strided view of a's storage
    small["h"] = torch.tensor([0.5, -2.0, 65504.0, 1e-3], dtype=torch.float16)
    small["bf"] = torch.tensor([1.5, -0.25, 3.0e38], dtype=torch.bfloat16)
    small["d"] = torch.tensor([[1.0, 2.5]], dtype=torch.float64)
    small["i"] = torch.tensor([1, -2, 3], dtype=torch.int64)
    small["s"] = torch.tensor(4.0)  # a scalar
    small["e"] = torch.zeros(0, 3)  # empty
    torch.save(small, os.path.join(HERE, "torch_small.pt"))
    values = {k: {"shape": list(v.shape), "values": v.double().flatten().tolist()} for k, v in small.items()}
    with open(os.path.join(HERE, "torch_small.json"), "w") as f:
        json.dump(values, f, indent=1)

    info = {
        "versions": VERSIONS,
        "model": "transformers MambaForCausalLM, random weights (seed 20250101), float32",
        "batch": "input_ids (2, 16), seed 7; logits from model(input_ids).logits on the CPU",
        "logits_max_abs": float(logits.abs().max()),
    }
    with open(os.path.join(HERE, "fixture.json"), "w") as f:
        json.dump(info, f, indent=1)
    print("wrote fixtures", json.dumps(info))


if __name__ == "__main__":
    sys.exit(main())
