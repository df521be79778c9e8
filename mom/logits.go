package mom

import "mom/gpu"

// RecordForwardLogits records the forward pass up to the logits, without
// the losses (whose kernels overwrite the logits with their gradient):
// RecordForward is this and the loss kernels.
//
// In mixed precision it starts with the float16 copies of the weights
// (from the masters as they are now) and casts each activation that feeds
// a GEMM or the conv after it is made (half.go).
func (m *Model) RecordForwardLogits(r *gpu.Recorder) {
	h := &m.f16
	rec(r, h.weights)
	m.embed.RecordForward(r)
	if m.patchIn != nil {
		rec(r, h.cPatches)
		m.patchIn.RecordForward(r)
	}
	for i, ly := range m.layers {
		f := &ly.f16
		ly.norm.RecordForward(r)
		rec(r, f.cXn)
		ly.inX.RecordForward(r)
		ly.inZ.RecordForward(r)
		rec(r, f.cX1)
		ly.conv.RecordForward(r)
		rec(r, f.cX2)
		ly.xpDt.RecordForward(r)
		ly.xpB.RecordForward(r)
		ly.xpC.RecordForward(r)
		rec(r, f.cDtLow)
		ly.dt.RecordForward(r)
		ly.scan.RecordForward(r)
		rec(r, f.cY)
		r.Copy(m.h[i].Buf, 0, m.h[i+1].Buf, 0, m.h[i].Bytes())
		ly.out.RecordForward(r)
	}
	m.normF.RecordForward(r)
	rec(r, h.cXf)
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
