package mom

import "mom/gpu"

// RecordForwardLogits records the forward pass up to the logits, without
// the losses (whose kernels overwrite the logits with their gradient):
// RecordForward is this and the loss kernels.
func (m *Model) RecordForwardLogits(r *gpu.Recorder) {
	m.embed.RecordForward(r)
	if m.patchIn != nil {
		m.patchIn.RecordForward(r)
	}
	for i, ly := range m.layers {
		ly.norm.RecordForward(r)
		ly.inX.RecordForward(r)
		ly.inZ.RecordForward(r)
		ly.conv.RecordForward(r)
		ly.xpDt.RecordForward(r)
		ly.xpB.RecordForward(r)
		ly.xpC.RecordForward(r)
		ly.dt.RecordForward(r)
		ly.scan.RecordForward(r)
		r.Copy(m.h[i].Buf, 0, m.h[i+1].Buf, 0, m.h[i].Bytes())
		ly.out.RecordForward(r)
	}
	m.normF.RecordForward(r)
	m.head.RecordForward(r)
}

// Logits runs the forward pass on the batch last given to SetBatch and
// returns the logits, (B·L, V) row-major.
func (m *Model) Logits() ([]float32, error) {
	r := m.d.NewRecorder()
	m.RecordForwardLogits(r)
	if err := r.Submit(); err != nil {
		return nil, err
	}
	return m.logits.Download()
}
