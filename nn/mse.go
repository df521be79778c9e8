package nn

import (
	"fmt"
	"math"

	"mom/gpu"
	"mom/shaders"
)

// MSEArgs are the tensors of a per-row mean squared error.
type MSEArgs struct {
	Pred, Target, DPred *Tensor // (T, P)
	Groups              int
}

// MSE is the per-row mean squared error over P (the diffusion
// noise-prediction loss) with its gradient DPred = weights[m]·2(pred−target)/P,
// and per-modality sums of the row losses and counts of the rows with
// nonzero weight, summed in a fixed order (deterministic).
type MSE struct {
	t, p, groups int
	info         *Tensor // (T + G) u32: modality, weight bits
	rowLoss      *Tensor // (T)
	sums, counts *Tensor // (G)
	row, sum     *gpu.BindGroup
	rx, ry       int
	host         []uint32
}

// NewMSE checks shapes and builds the dispatches.
func NewMSE(d *gpu.Device, a MSEArgs) (*MSE, error) {
	if a.Pred == nil || a.Target == nil || a.DPred == nil {
		return nil, fmt.Errorf("nn: mse: Pred, Target and DPred are required")
	}
	if len(a.Pred.Shape) != 2 {
		return nil, fmt.Errorf("nn: mse: prediction %s has shape %v, want (T, P)", a.Pred.Name, a.Pred.Shape)
	}
	t, p := a.Pred.Shape[0], a.Pred.Shape[1]
	if err := CheckShape("mse target", a.Target, t, p); err != nil {
		return nil, err
	}
	if err := CheckShape("mse dpred", a.DPred, t, p); err != nil {
		return nil, err
	}
	if shareBuffer(a.DPred, a.Pred) || shareBuffer(a.DPred, a.Target) {
		return nil, fmt.Errorf("nn: mse: DPred %s shares its buffer with an input", a.DPred.Name)
	}
	if a.Groups < 1 {
		return nil, fmt.Errorf("nn: mse: %d groups, want at least 1", a.Groups)
	}
	m := &MSE{t: t, p: p, groups: a.Groups, host: make([]uint32, t+a.Groups)}
	var err error
	fail := func(e error) (*MSE, error) {
		m.Release()
		return nil, e
	}
	for _, x := range []struct {
		p    **Tensor
		name string
		n    int
	}{{&m.info, ".mse_info", t + a.Groups}, {&m.rowLoss, ".mse_rowloss", t}, {&m.sums, ".mse_sums", a.Groups}, {&m.counts, ".mse_counts", a.Groups}} {
		if *x.p, err = NewTensor(d, a.Pred.Name+x.name, x.n); err != nil {
			return fail(err)
		}
	}
	// Until the first Update: every row in group 0, every weight 0.
	if err := m.info.UploadU32(m.host); err != nil {
		return fail(err)
	}
	most := int(min(d.Limits.MaxComputeInvocationsPerWorkgroup, d.Limits.MaxComputeWorkgroupSizeX, 256))
	wg := 32
	for wg*2 <= most && wg*4 < p {
		wg *= 2
	}
	cr := gpu.Constants{"P": float64(p), "T": float64(t), "G": float64(a.Groups), "WG": float64(wg)}
	if m.row, err = Bind(d, shaders.MSE, cr, a.Pred, a.Target, a.DPred, m.info, m.rowLoss); err != nil {
		return fail(fmt.Errorf("nn: mse of %s %v: %w", a.Pred.Name, a.Pred.Shape, err))
	}
	m.rx, m.ry = Grid(d, t)
	cs := gpu.Constants{"T": float64(t), "G": float64(a.Groups), "WGS": float64(sumThreads(d, t))}
	if m.sum, err = Bind(d, shaders.MSESums, cs, m.info, m.rowLoss, m.sums, m.counts); err != nil {
		return fail(fmt.Errorf("nn: mse sums of %s %v: %w", a.Pred.Name, a.Pred.Shape, err))
	}
	return m, nil
}

// Update uploads the modality of each row (< Groups) and the weight of each
// group, which scales the group's gradient; rows of a group with weight 0
// contribute nothing (text rows in Transfusion). Nothing is uploaded on
// error.
func (m *MSE) Update(modality []uint32, weights []float32) error {
	if len(modality) != m.t || len(weights) != m.groups {
		return fmt.Errorf("nn: mse: %d modalities, %d weights; want %d, %d", len(modality), len(weights), m.t, m.groups)
	}
	for i, g := range modality {
		if int64(g) >= int64(m.groups) {
			return fmt.Errorf("nn: mse: modality[%d] = %d, want < %d groups", i, g, m.groups)
		}
	}
	for g, w := range weights {
		if !finiteF32(w) {
			return fmt.Errorf("nn: mse: weights[%d] = %g is not finite", g, w)
		}
	}
	copy(m.host, modality)
	for g, w := range weights {
		m.host[m.t+g] = math.Float32bits(w)
	}
	if err := m.info.UploadU32(m.host); err != nil {
		return fmt.Errorf("nn: mse: %w", err)
	}
	return nil
}

// Record records the loss and gradient, then the per-group sums.
func (m *MSE) Record(r *gpu.Recorder) {
	r.Dispatch(m.row, m.rx, m.ry, 1)
	r.Dispatch(m.sum, 1, 1, 1)
}

// LossSums is (Groups): Σ of row MSEs over the rows of groups with nonzero weight.
func (m *MSE) LossSums() *Tensor { return m.sums }

// Counts is (Groups): rows counted in LossSums (float).
func (m *MSE) Counts() *Tensor { return m.counts }

// RowLosses is (T): every row's MSE (also for rows of weight 0).
func (m *MSE) RowLosses() *Tensor { return m.rowLoss }

// Release frees the op's own buffers.
func (m *MSE) Release() {
	m.row.Release()
	m.sum.Release()
	m.row, m.sum = nil, nil
	releaseTensors([]*Tensor{m.info, m.rowLoss, m.sums, m.counts})
	m.info, m.rowLoss, m.sums, m.counts = nil, nil, nil, nil
}
