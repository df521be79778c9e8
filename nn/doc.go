// Package nn holds the ops of a Mixture-of-Mamba training step, each with an
// explicit forward and backward recorded onto a gpu.Recorder: Linear (GEMM),
// GroupedLinear (per-modality GEMM through a routing table), CausalConv1d,
// SelectiveScan, RMSNorm, Embedding, the losses, AdamW and gradient-norm
// clipping; and the forward-only ops of the recurrent step mode, which run
// one token for each of s streams: StepEmbedding, RoutedLinear (a GEMV
// routed per stream by its token's modality), ConvStep and ConvTail,
// SSMStep (the selective state update), MaskLogits (each stream's logits
// restricted to an id set) and Sampler (the next token, drawn on the GPU);
// and Checksum, an exact checksum of tensors' bits with which data-parallel
// ranks compare their parameters.
//
// Mixed precision: tensors may be float16 (DType F16, shader-f16 needed).
// The GEMMs, their bias gradients and the conv take float16 inputs in the
// f16 variants of their files and work in float32; Cast makes the float16
// copies (rounded on the bits, optionally times the loss scale, with an
// overflow flag); LossScale holds dynamic loss scaling's state on the
// device, which GradNorm's scaled finish updates (NewGradNormScaled), and
// AdamW skips a step whose clip scale is 0.
//
// An op is built once, before the step loop, from the tensors it reads and
// writes: construction compiles (or fetches from the cache) its pipelines and
// creates its bind groups. Recording it allocates nothing. Parameter
// gradients accumulate (+=), as in llm.c: the trainer zeroes them once per
// optimizer step.
//
// Every kernel has a plain-Go twin in nn/ref with the same name and argument
// order; the tests compare the two on random inputs at edge sizes. The
// kernel benchmarks live in nn/nnbench, importable and runnable against any
// device.
//
// Glossary (as in the Mamba papers): b batch, l sequence length, t = b*l
// tokens, d d_model, ed = expand*d, n d_state, r dt_rank, m modality, s
// streams.
package nn
