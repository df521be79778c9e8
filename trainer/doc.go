// Package trainer holds everything around the training step that does not
// touch the GPU, and the step loop itself:
//
//   - data streams come from package trainer/data (the synthetic stream
//     and token files) and trainer/dataset (dataset folders);
//   - the learning-rate schedule (Schedule, LR): a warmup, then cosine,
//     linear or constant, continued by the segments of a resumed run;
//   - the run folder (package trainer/runfolder, also read by viz): its
//     lock, config.json, metrics and checkpoints;
//   - resuming (ResumeOptions): a run's settings come from its folder; the
//     flags that may change start a segment, the others must agree;
//   - progress output: a bar on a terminal, plain log lines otherwise
//     (NewProgress);
//   - the run comparison (LoadRuns, PairRuns, Compare) and the step
//     benchmark (BenchSteps).
//
// A run lives in one folder:
//
//	runs/NAME/
//	    .lock                         held by the one process training it
//	    config.json                   model, data, settings, segments
//	    metrics.jsonl                 one JSON object per line (Record)
//	    checkpoints/
//	        latest                    names the newest complete checkpoint
//	        step_00000123/
//	            model.safetensors     parameters (F32)
//	            optimizer.safetensors optimizer state, e.g. m.<param>, v.<param>
//	            state.json            step, tokens, FLOPs, RNG, data position,
//	                                  config, the sizes and SHA-256 of the
//	                                  two tensor files, and its own SHA-256
//
// A trained model is opened for inference by OpenTrained (a checkpoint
// with its run's config.json, no device needed) and scored on held-out
// data by Evaluate (NewEval then Run): per modality the loss, perplexity,
// argmax accuracy within the modality's range, text bits per byte and the
// diffusion loss, on the trainer's own held-out batches or the whole
// held-out split once. Sampling is package trainer/sample.
//
// Train stops cleanly when its context is cancelled (a signal): the steps
// in flight finish and the last one is checkpointed. Its Result always
// says how far the run got and which checkpoint exists.
//
// Modalities and settings come from the table in package mom: the trainer
// asks a modality's row (continuous or not, its synthetic generator, its
// name in the metrics) and never tests for a setting.
package trainer
