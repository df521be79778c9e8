package trainer

import (
	"fmt"
	"math/rand/v2"

	"mom/gpu"
)

// Footprint sets up the training of o on d as Train does (the model with
// its activations and gradients, the optimizer state, the gradient norm,
// the loss ring, the data) and records and submits one training step with
// its batch upload and loss readback, without drawing the parameters; it
// returns the device's memory accounting and releases everything (and
// collects it: Device.Collect). It is
// meant for dry-run devices (gpu.OpenDryRun), where nothing is allocated
// and nothing runs: the report says what the run would take on the device
// the profile describes. On a real device the step computes on
// uninitialised memory.
func Footprint(d *gpu.Device, o Options) (gpu.MemoryReport, error) {
	if o.Out == "" {
		o.Out = "footprint"
	}
	if err := o.Validate(); err != nil {
		return gpu.MemoryReport{}, err
	}
	d.ResetPeak()
	t := &trainer{o: o, d: d, rng: rand.New(rand.NewPCG(1, 2))}
	defer func() {
		t.close()
		d.Collect() // Dawn frees the memory now: the next footprint starts from nothing
	}()
	if err := t.setup(); err != nil {
		return gpu.MemoryReport{}, err
	}
	if err := t.train.Next(&t.batch); err != nil {
		return gpu.MemoryReport{}, err
	}
	if err := t.toModelBatch(&t.batch); err != nil {
		return gpu.MemoryReport{}, err
	}
	if err := t.m.SetBatch(&t.mb, o.Accum); err != nil {
		return gpu.MemoryReport{}, err
	}
	r := d.NewRecorder()
	t.m.RecordZeroGrads(r)
	t.m.RecordForward(r)
	t.m.RecordBackward(r)
	slotBytes := t.slotBytes()
	t.m.RecordLosses(r, t.lossBuf, 0)
	t.norm.Record(r)
	t.recordStepTail(r, 0)
	t.opt.Record(r)
	if err := r.Submit(); err != nil {
		return gpu.MemoryReport{}, fmt.Errorf("trainer: footprint of %s: %w", o.Config.Name, err)
	}
	if _, err := t.lossBuf.Read(0, slotBytes); err != nil {
		return gpu.MemoryReport{}, err
	}
	return d.Memory(), nil
}
