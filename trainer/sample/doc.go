// Package sample draws samples from a trained Mixture-of-Mamba model in
// the recurrent step mode (mom.StepModel): text, discrete images and
// speech token by token with sampling on the GPU, and continuous images
// (Transfusion) by a diffusion sampler (DDPM or DDIM) over the span's
// patches.
//
// A Vocab ties a model config to a dataset's markers and tokenizers
// (NewVocab); a Sampler (New) runs a fixed number of streams, one per
// sample, on a Model's parameters; Sample draws, Result.Write writes the
// text, PNGs (and a grid), WAVs and a JSON record.
//
// Generation follows the documents the trainer saw. A prompt becomes
// <|doc|> + its text tokens; then either the model writes on (free text:
// the text range without the markers only the sampler places), opening a
// span of a discrete modality M when it draws M's begin marker, or
// (Options.Modality) M's begin marker follows the prompt and the sample is
// one item of M. Inside a span of M the draws are limited to M's range:
// an image (fixed length) takes exactly its tokenizer's tokens per image,
// after which the sampler places the end marker; a span of the model's
// chosen length (speech) may also draw M's end marker, and ends there or
// at Options.MaxTokens.
//
// A continuous span (image patches) is denoised instead: from the state
// after the prompt and the begin marker (a step-model snapshot, restored
// before each pass), every pass runs the whole span as forced steps with
// the noise level's token as input id and the noisy patches as inputs,
// reads the predicted noise, and moves the patches to the next level
// (diffusion.go states the math).
//
// The training loop can sample between steps: make one Sampler from the
// training Model (it shares its parameter tensors, so it sees the latest
// weights without a copy) and call Sample whenever wanted; the step
// model's buffers are its own, so the training step's are untouched.
// Generate does the device's part only and leaves decoding (speech's
// Griffin-Lim) to Result.Decode or Result.Write, which may run on another
// goroutine while training goes on (`mom train --sample-every` does).
package sample
