package trainer

import (
	"encoding/json"
	"fmt"
	"math"
	"unsafe"

	"mom/gpu"
	"mom/mom"
	"mom/nn"
)

// Mixed precision (Options.Precision "f16"): the model's GEMMs and conv
// read float16 copies (mom.ModelOptions.Precision); the master weights,
// their gradients and AdamW stay float32. Dynamic loss scaling runs on the
// device (nn.LossScale): the backward's loss gradient is multiplied by the
// scale, the casts flag values that leave the float16 range, and the
// gradient norm's finish (nn.NewGradNormScaled) unscales, clips and, at an
// overflow, skips the step (AdamW leaves everything as it was) and halves
// the scale; after LossScaleGrowth clean steps it doubles. The host learns
// of it two steps late, with the losses: each loss slot carries the step's
// gradient norm, whether it was skipped and the scale it used.

// Precisions are the values of Options.Precision.
var Precisions = []string{"f32", "f16"}

// MaxSkipsInARow stops a mixed-precision run whose steps overflow this
// many times in a row: the scale has halved from 2^16 to 2^-24 and the
// gradients are still not finite, which no loss scale will cure.
const MaxSkipsInARow = 41

// precisionName is the precision in flag notation ("" is f32).
func precisionName(p string) string {
	if p == "" {
		return "f32"
	}
	return p
}

// precision is Options.Precision as a tensor type.
func (o Options) precision() nn.DType {
	p, _ := mom.ParsePrecision(o.Precision)
	return p
}

// validatePrecision checks the mixed-precision options.
func (o Options) validatePrecision() error {
	p, err := mom.ParsePrecision(o.Precision)
	if err != nil {
		return fmt.Errorf("trainer: --%v", err)
	}
	if p != nn.F16 {
		if o.LossScale != 0 || o.LossScaleGrowth != 0 {
			return fmt.Errorf("trainer: --loss-scale and --loss-scale-growth apply to --precision f16 only")
		}
		return nil
	}
	if o.LossScale != 0 {
		if fr, _ := math.Frexp(o.LossScale); fr != 0.5 || o.LossScale < nn.MinLossScale || o.LossScale > nn.MaxLossScale {
			return fmt.Errorf("trainer: --loss-scale %g: want a power of two from 2^-24 to 2^24 (default 2^16)", o.LossScale)
		}
	}
	if o.LossScaleGrowth < 0 {
		return fmt.Errorf("trainer: --loss-scale-growth %d must not be negative (0: %d)", o.LossScaleGrowth, nn.DefaultLossScaleGrowth)
	}
	return nil
}

// newLossScale makes the run's loss scale (nil in float32).
func (t *trainer) newLossScale() error {
	if t.o.precision() != nn.F16 {
		return nil
	}
	var err error
	t.ls, err = nn.NewLossScale(t.d, nn.LossScaleArgs{Init: t.o.LossScale, GrowthEvery: t.o.LossScaleGrowth})
	return err
}

// stepTail is what a loss slot holds after the loss record: the gradient
// norm (unscaled), whether the step was skipped and the loss scale it
// used (mixed precision; 0 and 0 otherwise).
const stepTailWords = 3

// slotBytes is the size of one slot of the loss ring.
func (t *trainer) slotBytes() int64 { return int64(4 * (t.m.Cfg.LossSlots() + stepTailWords)) }

// recordStepTail records copying the step's gradient norm, and in mixed
// precision the loss scale's skip flag and scale, into the loss slot at
// byte offset slot (after the gradient norm's finish).
func (t *trainer) recordStepTail(r *gpu.Recorder, slot int64) {
	n := int64(4 * t.m.Cfg.LossSlots())
	r.Copy(t.norm.Norm().Buf, 0, t.lossBuf, slot+n, 4)
	if t.ls != nil {
		r.Copy(t.ls.State().Buf, 4*nn.LossScaleSkippedWord, t.lossBuf, slot+n+4, 8)
	}
}

// stepStats is what a loss slot says beyond the losses.
type stepStats struct {
	gradNorm  float64
	skipped   bool    // mixed precision: an overflow skipped the step
	lossScale float64 // mixed precision: the scale the step used
}

// decodeTail reads the words after the loss record.
func decodeTail(v []float32) stepStats {
	return stepStats{gradNorm: float64(v[0]), skipped: v[1] != 0, lossScale: float64(v[2])}
}

// annotatePrecision adds the mixed-precision fields to a step's metrics
// record and counts the skips; a long run of skips stops the run.
func (t *trainer) annotatePrecision(rec Record, s stepStats) {
	if t.ls == nil {
		rec["grad_norm"] = s.gradNorm
		return
	}
	rec["loss_scale"] = s.lossScale
	rec["skipped"] = 0
	if s.skipped {
		rec["skipped"] = 1
		return // no gradient norm: the gradients were not finite
	}
	rec["grad_norm"] = s.gradNorm
}

// countSkip counts a decoded step's skip; it fails after MaxSkipsInARow
// skips in a row.
func (t *trainer) countSkip(step int, s stepStats) error {
	if t.ls == nil {
		return nil
	}
	if !s.skipped {
		t.skipsInARow = 0
		return nil
	}
	t.res.Skipped++
	t.skipsInARow++
	if t.skipsInARow >= MaxSkipsInARow {
		return fmt.Errorf("trainer: stopping at step %d: %d steps in a row overflowed in float16 (the loss scale is down to %g): "+
			"the gradients are not finite at any scale, which float16 does not cause; %s", step, t.skipsInARow, s.lossScale, t.ckptNote())
	}
	return nil
}

// lossScaleMeta is the checkpoint's metadata key for the loss scale state.
const lossScaleMeta = "loss_scale"

// saveLossScale puts the loss scale state into a checkpoint's metadata.
func (t *trainer) saveLossScale(meta map[string]string) error {
	if t.ls == nil {
		return nil
	}
	st, err := t.ls.Get()
	if err != nil {
		return fmt.Errorf("trainer: checkpoint: %w", err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	meta[lossScaleMeta] = string(b)
	return nil
}

// restoreLossScale sets the loss scale from a checkpoint's metadata (a
// checkpoint of a float32 run, or of an older version, has none: the
// scale starts afresh).
func (t *trainer) restoreLossScale(meta map[string]string, dir string) error {
	if t.ls == nil || meta[lossScaleMeta] == "" {
		return nil
	}
	var st nn.LossScaleState
	if err := json.Unmarshal([]byte(meta[lossScaleMeta]), &st); err != nil {
		return fmt.Errorf("trainer: --resume: checkpoint %s: loss scale: %w", dir, err)
	}
	if err := t.ls.Set(st); err != nil {
		return fmt.Errorf("trainer: --resume: checkpoint %s: %w", dir, err)
	}
	return nil
}

// ctrlOverflowWords is the data-parallel control bucket's room for the
// overflow flag (after the losses and the stop flag).
const ctrlOverflowWords = 1

// recordOverflowDown records copying this rank's overflow flag after the
// loss record in the host-read buffer (mixed precision).
func (t *trainer) recordOverflowDown(r *gpu.Recorder, dst *gpu.Buffer, off int64) {
	if t.ls != nil {
		r.Copy(t.ls.Overflow().Buf, 0, dst, off, 4)
	}
}

// overflowWord reads the flag copied after n loss words of raw as 0 or 1
// (a float the ranks can sum).
func (t *trainer) overflowWord(raw []byte, n int) float32 {
	if t.ls == nil {
		return 0
	}
	if *(*uint32)(unsafe.Pointer(&raw[4*n])) != 0 {
		return 1
	}
	return 0
}

// shareOverflow raises this rank's overflow flag when any rank's was
// raised (sum > 0), so that every rank skips the same steps.
func (t *trainer) shareOverflow(sum float32) error {
	if t.ls == nil || sum == 0 {
		return nil
	}
	return t.ls.Overflow().UploadU32([]uint32{1})
}
