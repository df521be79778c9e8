// Package trainer holds everything around the training step that does not
// touch the GPU, and the step loop itself:
//
//   - data streams come from package trainer/data (the synthetic stream
//     and token files);
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
// Modalities and settings come from the table in package mom: the trainer
// asks a modality's row (continuous or not, its synthetic generator, its
// name in the metrics) and never tests for a setting.
package trainer
