package mom

// FLOPs counts the floating-point operations of a training step per token.
//
// Forward, per token and layer (D = d_model, E = expand·D, N = d_state,
// R = dt_rank, K = d_conv; one weight set per projection is used, so a split
// model costs the same as the dense one):
//
//	in_proj   2·D·2E        x and z halves
//	conv1d    2·K·E         + SiLU, not counted
//	x_proj    2·E·(R+2N)    dt, B, C
//	dt_proj   2·R·E
//	scan      9·E·N         per state: exp(dt·A), two multiplies and an add
//	                        for h, a multiply-add for C·h, softplus and the
//	                        D skip and gate per channel amortised
//	out_proj  2·E·D
//
// plus the head 2·V·D per token (the logits) and, in Transfusion, 2·P·D for
// each patch projection. Norms, residuals, losses and the optimizer are
// linear in the parameter or activation count and left out, as is usual.
// A training step is taken as 3× the forward (the backward of a matrix
// product is two products of the same size; the scan's backward, which
// recomputes the chunk states, costs about twice its forward too).
type FLOPs struct {
	ForwardPerToken float64 // one forward pass
	TrainPerToken   float64 // forward + backward
	MatmulShare     float64 // fraction of the forward in matrix products
}

// StepFLOPs returns the per-token FLOP counts of c.
func (c Config) StepFLOPs() FLOPs {
	D, E, N, R, K := float64(c.DModel), float64(c.ED()), float64(c.DState), float64(c.DtRank), float64(c.DConv)
	matmul := 2*D*2*E + 2*E*(R+2*N) + 2*R*E + 2*E*D
	other := 2*K*E + 9*E*N
	L := float64(c.Layers)
	head := 2 * float64(c.Vocab) * D
	if c.Continuous() {
		head += 2 * 2 * float64(c.PatchDim) * D
	}
	mm := L*matmul + head
	fwd := mm + L*other
	return FLOPs{ForwardPerToken: fwd, TrainPerToken: 3 * fwd, MatmulShare: mm / fwd}
}
