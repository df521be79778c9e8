package mom

import (
	"mom/gpu"
	"mom/nn"
)

// RecordForwardWith records RecordForward with mid recorded between the
// LM head and the loss kernels, which overwrite the logits with their
// gradient: the one moment in a forward pass with losses when the logits
// (LogitsTensor) can be read, by an argmax say. Keep it in step with
// RecordForward.
func (m *Model) RecordForwardWith(r *gpu.Recorder, mid func(r *gpu.Recorder)) {
	m.RecordForwardLogits(r)
	if mid != nil {
		mid(r)
	}
	m.xent.Record(r)
	if m.patchOut != nil {
		m.patchOut.RecordForward(r)
		m.mse.Record(r)
	}
}

// LogitsTensor is the model's logits, (B·L, V): valid after
// RecordForwardLogits, and inside RecordForwardWith's mid.
func (m *Model) LogitsTensor() (*nn.Tensor, error) { return m.logits.Reshape(m.T, m.Cfg.Vocab) }
