#!/usr/bin/env python3
"""Scores a batch with an `mom export --format hf` folder in transformers.

    mom grads  --checkpoint RUN --out batch.safetensors [--batch B --seq L]
    mom export --checkpoint RUN --format hf --out EXPORT
    python3 hf_loss.py EXPORT batch.safetensors

It loads EXPORT with MambaForCausalLM.from_pretrained, runs the batch that
`mom grads` wrote (batch.inputs, batch.targets; targets 0xFFFFFFFF are
ignored), and prints transformers' mean next-token cross-entropy beside the
loss mom computed on the same batch (loss.total). For dense models of the
chameleon and three settings, whose loss is the mean over all targets.
Used with Python 3.11.7, torch 2.15.0, transformers 5.24.0, safetensors 0.8.0.
"""
import sys

import safetensors.torch
import torch
import torch.nn.functional as F
from transformers import MambaForCausalLM


def main(export_dir, batch_file):
    b = safetensors.torch.load_file(batch_file)
    inputs = b["batch.inputs"].to(torch.int64)
    targets = b["batch.targets"].to(torch.int64)
    ignore = targets == 0xFFFFFFFF
    targets = targets.masked_fill(ignore, -100)
    model = MambaForCausalLM.from_pretrained(export_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(input_ids=inputs, use_cache=False).logits.float()
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
    mom_loss = float(b["loss.total"][0])
    print(f"transformers loss {loss.item():.6f}  mom loss {mom_loss:.6f}  difference {abs(loss.item() - mom_loss):.2e}")
    print(f"batch {tuple(inputs.shape)}, {int((~ignore).sum())} targets, vocabulary {logits.shape[-1]}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
