package nn

import (
	"fmt"
	"math"

	"mom/gpu"
)

// Dynamic loss scaling defaults (those of PyTorch's GradScaler): the first
// scale, the clean steps after which it doubles, and its bounds.
const (
	DefaultLossScale       = 65536
	DefaultLossScaleGrowth = 2000
	MinLossScale           = 1.0 / (1 << 24)
	MaxLossScale           = 1 << 24
)

// LossScaleArgs configure dynamic loss scaling.
type LossScaleArgs struct {
	// Init is the first loss scale, a power of two between MinLossScale and
	// MaxLossScale; 0 means DefaultLossScale.
	Init float64
	// GrowthEvery is the number of steps in a row without overflow after
	// which the scale doubles; 0 means DefaultLossScaleGrowth.
	GrowthEvery int
}

// LossScale is the device state of dynamic loss scaling for mixed
// precision: the scale the loss gradient is multiplied by (read on the
// device by the scaled casts, nn.Cast with Scale), the overflow flag the
// casts raise, and the counters that GradNorm's scaled finish
// (NewGradNormScaled) updates once per step. Nothing of it crosses to the
// host during a step.
type LossScale struct {
	a     LossScaleArgs
	state *Tensor // (8) [0] scale of the next step, [1] clean steps in a row, [2] steps skipped, [3] last step skipped, [4] its scale
	flag  *Tensor // (1) uint32 overflow flag
}

// LossScaleState is the host's view of a LossScale (checkpoints, tests).
type LossScaleState struct {
	Scale       float64 `json:"scale"`        // the scale of the next step
	Clean       int     `json:"clean"`        // steps in a row without overflow since the scale last changed
	Skipped     int     `json:"skipped"`      // steps skipped in all
	LastSkipped bool    `json:"last_skipped"` // the last step was skipped
	LastScale   float64 `json:"last_scale"`   // the scale the last step used
}

// LossScaleWords is the length of the state tensor (LossScale.State).
const LossScaleWords = 8

// Offsets of the state tensor's words that a trainer copies into its
// per-step record.
const (
	LossScaleSkippedWord   = 3 // 1 if the last step was skipped
	LossScaleLastScaleWord = 4 // the scale the last step used
)

// NewLossScale allocates the state (counted as optimizer state) and sets
// it to a's first scale.
func NewLossScale(d *gpu.Device, a LossScaleArgs) (*LossScale, error) {
	if a.Init == 0 {
		a.Init = DefaultLossScale
	}
	if a.GrowthEvery == 0 {
		a.GrowthEvery = DefaultLossScaleGrowth
	}
	if fr, _ := math.Frexp(a.Init); fr != 0.5 || a.Init < MinLossScale || a.Init > MaxLossScale {
		return nil, fmt.Errorf("nn: loss scale %g: want a power of two from 2^-24 to 2^24", a.Init)
	}
	if a.GrowthEvery < 1 || a.GrowthEvery > 1<<24 {
		return nil, fmt.Errorf("nn: loss scale growth interval %d: want 1 to 2^24 steps", a.GrowthEvery)
	}
	s := &LossScale{a: a}
	var err error
	if s.state, err = NewTensorIn(d, gpu.MemOptimizer, "loss_scale.state", LossScaleWords); err == nil {
		s.flag, err = NewTensorIn(d, gpu.MemOptimizer, "loss_scale.overflow", 1)
	}
	if err == nil {
		err = s.Set(LossScaleState{Scale: a.Init, LastScale: a.Init})
	}
	if err != nil {
		s.Release()
		return nil, fmt.Errorf("nn: loss scale: %w", err)
	}
	return s, nil
}

// Args are the settings (defaults filled in).
func (s *LossScale) Args() LossScaleArgs { return s.a }

// State is the state tensor, (8) float32: element 0 is the scale the next
// step multiplies the loss gradient by (bind it as a Cast's Scale).
func (s *LossScale) State() *Tensor { return s.state }

// Overflow is the (1) uint32 flag the casts raise (a Cast's Overflow); the
// scaled gradient norm's finish reads and clears it.
func (s *LossScale) Overflow() *Tensor { return s.flag }

// constants are the scaled finish's override constants.
func (s *LossScale) constants(maxNorm float32) gpu.Constants {
	return gpu.Constants{"MAX_NORM": float64(maxNorm), "GROWTH_EVERY": float64(s.a.GrowthEvery),
		"MIN_SCALE": MinLossScale, "MAX_SCALE": MaxLossScale}
}

// Get reads the state back (a synchronous readback: not inside a step).
func (s *LossScale) Get() (LossScaleState, error) {
	v, err := s.state.Download()
	if err != nil {
		return LossScaleState{}, fmt.Errorf("nn: loss scale: %w", err)
	}
	return LossScaleState{Scale: float64(v[0]), Clean: int(v[1]), Skipped: int(v[2]), LastSkipped: v[3] != 0, LastScale: float64(v[4])}, nil
}

// Set writes the state (a resumed run's) and clears the overflow flag.
func (s *LossScale) Set(st LossScaleState) error {
	if !(st.Scale >= MinLossScale && st.Scale <= MaxLossScale) || st.Clean < 0 || st.Skipped < 0 {
		return fmt.Errorf("nn: loss scale state %+v out of range", st)
	}
	v := make([]float32, LossScaleWords)
	v[0], v[1], v[2], v[4] = float32(st.Scale), float32(st.Clean), float32(st.Skipped), float32(st.LastScale)
	if st.LastSkipped {
		v[3] = 1
	}
	if err := s.state.Upload(v); err != nil {
		return err
	}
	return s.flag.UploadU32([]uint32{0})
}

// Release frees the state. A nil LossScale is fine.
func (s *LossScale) Release() {
	if s == nil {
		return
	}
	releaseTensors([]*Tensor{s.state, s.flag})
	s.state, s.flag = nil, nil
}
