// Package trainer holds everything around the training step that does not
// touch the GPU, and the step loop itself:
//
//   - data streams (Stream): a deterministic synthetic interleaved
//     multimodal stream (NewSynthetic) and a binary token file format for
//     real data (tokfile.go), both yielding Batch values of token ids,
//     next-token targets and per-position modalities;
//   - the learning-rate schedule (LR);
//   - checkpoints (SaveCheckpoint, LoadCheckpoint) in the safetensors format
//     (package trainer/safetensors), written atomically
//     (package trainer/atomicfile) so that a crash never damages what was
//     already on disk;
//   - metrics as JSON lines (OpenMetrics) that live viewers can follow;
//   - progress output: a bar on a terminal, plain log lines otherwise
//     (NewProgress).
//
// A run lives in one folder:
//
//	runs/NAME/
//	    metrics.jsonl                 one JSON object per line (Record)
//	    checkpoints/
//	        latest                    names the newest complete checkpoint
//	        step_00000123/
//	            model.safetensors     parameters (F32)
//	            optimizer.safetensors optimizer state, e.g. m.<param>, v.<param>
//	            state.json            step, tokens, FLOPs, RNG, data position,
//	                                  config, and the sizes and SHA-256 of the
//	                                  two tensor files
//
// Modalities are numbered 0 text, 1 image, 2 speech (ModalityNames). The
// unified vocabulary gives each modality one contiguous range of ids
// (Vocab); a position's modality is what routes it through the per-modality
// projections of a Mixture-of-Mamba model.
package trainer
