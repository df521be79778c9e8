// Package mom is the Mixture-of-Mamba model: its config (presets near the
// paper's scales and the four per-modality split switches), its parameters
// and their initialisation, FLOP and parameter counting, and the model's
// forward and backward composed from the ops of package nn.
//
// Memory: NewModel allocates everything once. The scans of all layers share
// one backward workspace (with the GEMMs' split-K partials), and with
// ModelOptions.Recompute the backward recomputes each layer's conv and
// dt_proj outputs instead of keeping them, as mamba_ssm does; the trainer's
// Footprint counts what a run takes on a dry-run device.
//
// Precision: with ModelOptions.Precision nn.F16 (mixed precision, half.go)
// the GEMMs and the conv read float16 copies of their weights and inputs,
// and the backward's gradients enter each GEMM in float16, the loss
// gradients multiplied by a dynamic loss scale; everything else stays
// float32.
//
// The dense Mamba baseline is the same code with no splits. A token uses one
// weight set of every split projection, chosen by its modality, so a
// Mixture-of-Mamba model costs the dense model's FLOPs per token.
//
// Glossary: b batch, l sequence length, t = b·l tokens, d d_model, ed the
// inner width expand·d, n d_state, r dt_rank, k d_conv, g modalities
// (weight sets of a split projection), v vocabulary, p patch size.
package mom
