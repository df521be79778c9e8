// Package interop moves checkpoints between mom and the Mamba ecosystem.
//
// Export writes a run's checkpoint in one of three layouts:
//
//   - "hf": a folder that transformers' MambaForCausalLM.from_pretrained
//     loads: config.json (MambaConfig) and model.safetensors under HF's
//     names (backbone.embeddings.weight, backbone.layers.N.mixer.*, ...).
//     Dense models only.
//   - "mamba_ssm": mamba_ssm's MambaLMHeadModel names and config.json
//     (d_model, n_layer, ssm_cfg, ...), weights in model.safetensors. Dense
//     models only.
//   - "paper": Mixture-of-Mamba, under the names of the paper's released
//     MixtureOfMamba module (local_experts_in_proj.M.weight, ...) inside
//     mamba_ssm's LM wrapper, with the modality order and vocabulary ranges
//     in config.json.
//
// Every export also writes mom.json (mom's own config of the model, so an
// import gives back the same model) and, where the run has one, the text
// tokenizer's tokenizer.json.
//
// Import reads those layouts, transformers' and mamba_ssm's own folders
// (config.json with model.safetensors, a sharded model.safetensors.index.json,
// or mamba_ssm's pytorch_model.bin through the torchpickle sub-package), and
// mom run folders, and writes a new run folder whose step-0 checkpoint
// `mom train --resume` continues. Upcycling turns a dense model into
// Mixture-of-Mamba: each modality's expert of a split projection starts as
// a copy of the dense weights, so the upcycled model computes the same
// logits before its first step; new modalities' embedding rows are drawn
// fresh.
//
// Names: mom stores in_proj as its x and z halves and x_proj as its dt, B
// and C parts (the same numbers, split by rows), conv1d.weight as (ed, k)
// rather than (ed, 1, k), and a split projection as one (G, out, in) tensor;
// Layout lists, for a config and a format, how each file tensor is made of
// mom's parameters, and both directions use it.
package interop
