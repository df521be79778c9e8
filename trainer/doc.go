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
//   - the run comparison (LoadRuns, PairRuns, Compare), the step
//     benchmark (BenchSteps: one model at a time, with its memory and
//     setup time) and the memory a run takes on a device it need not have
//     (Footprint on a gpu.OpenDryRun device);
//   - data-parallel training over MPI ranks (package trainer/mpi, and
//     "Several GPUs" below);
//   - mixed precision (Options.Precision "f16", precision.go): the loss
//     scale, the skipped steps and their records.
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
// # Several GPUs
//
// With Options.World (package trainer/mpi: one process per GPU under
// mpirun) a run is data-parallel (parallel.go). Every rank reads the whole
// global batch and uploads its own rows with the whole batch's loss weights
// (mom.Model.SetBatchShare), so the sum of the ranks' gradients is the one
// process's gradient. The last micro-batch's backward is recorded in stages
// (mom.Model.RecordBackwardStage); after the stage that completes a bucket
// of gradients (planBuckets) the bucket is copied to host-readable memory
// (gradStaging, behind which a faster host-mapped path can go) and handed
// to the MPI thread, which sums it over the ranks in a fixed order
// (mpi.Reducer: through an MPI-3 shared-memory window when every rank is
// on one host, else all-to-all) while the GPU runs the rest of the
// backward. The sums go
// back to the gradient tensors. A tied embedding's table gets its
// gradient from the head (the first stage) and from the scatter of the
// token rows (the last); with Options.EmbeddingGather the last stage leaves
// the scatter out (mom.Model.DeferEmbeddingBackward), the table is summed
// while the backward runs, every rank's rows are gathered (a float32
// bucket in which each rank fills its own slot) and every rank scatters
// them into the summed table. A small control bucket adds up the loss
// record and the ranks' stop requests (so the ranks stop after the same
// step), and every rank takes the same AdamW step. The ranks compare
// parameter checksums (nn.Checksum) at the start, every CheckEvery steps and
// before each checkpoint. Rank 0 alone writes the run folder; when a run
// resumes it sends the others the checkpoint's state, so any number of
// ranks resumes any run.
//
// Modalities and settings come from the table in package mom: the trainer
// asks a modality's row (continuous or not, its synthetic generator, its
// name in the metrics) and never tests for a setting.
package trainer
