// Package runfolder is a training run's folder, for the trainer that
// writes it and for every reader (the plots, the live window, the run
// comparison): one definition of its files, their readers and their
// integrity. It imports no GPU code.
//
// A run folder holds
//
//	.lock               the writer's exclusive lock (Acquire): one writer at a time
//	config.json         what the run is (Config): model, data, settings, and the
//	                    segments a resumed run added (Segment)
//	metrics.jsonl       one Record per line, appended as the run goes
//	                    (MetricsWriter; ReadMetrics, Tail for readers)
//	checkpoints/        step_N/{model.safetensors, optimizer.safetensors, state.json}
//	                    and "latest" naming the newest (SaveCheckpoint,
//	                    LoadCheckpoint, LoadLatestIntact)
//	samples/            step_N/ per sampled step, written whole (WriteSamples;
//	                    LatestSamples, ReadSamples for readers)
//
// Every file is written so that a crash at any moment leaves the previous
// good state readable: whole files are replaced atomically, metrics lines
// are appended one write at a time (a torn last line is skipped by the
// readers), and a checkpoint is complete and verified by SHA-256 (its
// tensor files and state.json alike) before "latest" names it. Readers
// report a malformed file with its name and line.
//
// Files and folders are created with the usual permissions (0666 and 0777,
// trimmed by the process's umask).
package runfolder
