package trainer

import "mom/trainer/runfolder"

// The run folder's types and files live in package trainer/runfolder; these
// names keep the trainer's API for its callers.

// Record is one line of a run's metrics.jsonl (see runfolder.Record).
type Record = runfolder.Record

// Checkpoint is everything needed to resume a run exactly (see
// runfolder.Checkpoint).
type Checkpoint = runfolder.Checkpoint

// MetricsWriter appends records to metrics.jsonl (see runfolder).
type MetricsWriter = runfolder.MetricsWriter

// ErrNoCheckpoint is wrapped by LoadCheckpoint's error when the folder holds
// no checkpoint at all.
var ErrNoCheckpoint = runfolder.ErrNoCheckpoint

// SaveCheckpoint writes c into a run's checkpoints folder (see
// runfolder.SaveCheckpoint).
func SaveCheckpoint(dir string, c *Checkpoint, keep int) (string, error) {
	return runfolder.SaveCheckpoint(dir, c, keep)
}

// LoadCheckpoint loads the checkpoint that dir/latest names.
func LoadCheckpoint(dir string) (*Checkpoint, error) { return runfolder.LoadCheckpoint(dir) }

// LoadCheckpointAt loads a step folder, or the latest of a checkpoints or
// run folder.
func LoadCheckpointAt(path string) (*Checkpoint, error) { return runfolder.LoadCheckpointAt(path) }

// StepDirName is the folder name of the checkpoint of a step.
func StepDirName(step int) string { return runfolder.StepDirName(step) }

// OpenMetrics opens a run's metrics file (see runfolder.OpenMetrics).
func OpenMetrics(path string, resumeStep int) (*MetricsWriter, error) {
	return runfolder.OpenMetrics(path, resumeStep)
}

// ReadMetrics reads every record of a metrics file.
func ReadMetrics(path string) ([]Record, error) { return runfolder.ReadMetrics(path) }
