package mom

import (
	"errors"
	"fmt"

	"mom/gpu"
	"mom/nn"
)

// StepSnapshot holds a copy of a StepModel's recurrent state: every
// stream's conv and SSM states, step counters and current ids. A diffusion
// sampler saves the state at the start of an image span and restores it
// before each denoising pass over the span.
type StepSnapshot struct {
	s       *StepModel
	pairs   [][2]*nn.Tensor // (live, copy)
	tensors []*nn.Tensor
}

// NewSnapshot allocates a snapshot of the step model's size (empty until
// saved into).
func (s *StepModel) NewSnapshot() (_ *StepSnapshot, err error) {
	sn := &StepSnapshot{s: s}
	defer func() {
		if err != nil {
			sn.Release()
		}
	}()
	add := func(live *nn.Tensor) error {
		t, err := nn.NewTensor(s.d, "snapshot."+live.Name, live.Shape...)
		if err != nil {
			return fmt.Errorf("mom: step snapshot: %w", err)
		}
		sn.tensors = append(sn.tensors, t)
		sn.pairs = append(sn.pairs, [2]*nn.Tensor{live, t})
		return nil
	}
	for _, ly := range s.layers {
		if ly.conv != nil {
			if err := add(ly.conv); err != nil {
				return nil, err
			}
		}
		if err := add(ly.ssm); err != nil {
			return nil, err
		}
	}
	if err := add(s.pos); err != nil {
		return nil, err
	}
	if err := add(s.ids); err != nil {
		return nil, err
	}
	return sn, nil
}

// RecordSave records copying the step model's state into sn.
func (s *StepModel) RecordSave(r *gpu.Recorder, sn *StepSnapshot) {
	for _, p := range sn.pairs {
		r.Copy(p[0].Buf, 0, p[1].Buf, 0, p[0].Bytes())
	}
}

// RecordRestore records copying sn back into the step model's state.
func (s *StepModel) RecordRestore(r *gpu.Recorder, sn *StepSnapshot) {
	for _, p := range sn.pairs {
		r.Copy(p[1].Buf, 0, p[0].Buf, 0, p[0].Bytes())
	}
}

// Save copies the step model's state into sn.
func (s *StepModel) Save(sn *StepSnapshot) error {
	if err := s.checkSnapshot(sn); err != nil {
		return err
	}
	r := s.d.NewRecorder()
	s.RecordSave(r, sn)
	return r.Submit()
}

// Restore copies sn back into the step model's state: the streams continue
// from where they were when it was saved.
func (s *StepModel) Restore(sn *StepSnapshot) error {
	if err := s.checkSnapshot(sn); err != nil {
		return err
	}
	r := s.d.NewRecorder()
	s.RecordRestore(r, sn)
	return r.Submit()
}

func (s *StepModel) checkSnapshot(sn *StepSnapshot) error {
	switch {
	case sn == nil:
		return errors.New("mom: step snapshot: nil")
	case sn.s != s:
		return errors.New("mom: step snapshot: made by another step model")
	case sn.tensors == nil:
		return errors.New("mom: step snapshot: released")
	}
	return nil
}

// Release frees the snapshot's buffers.
func (sn *StepSnapshot) Release() {
	for _, t := range sn.tensors {
		t.Release()
	}
	sn.tensors, sn.pairs = nil, nil
}

// ForcedSteps runs N steps of every stream in one submit with inputs
// given in advance (teacher forcing): step i reads ids row i and, with
// continuous inputs, patches row i, and its predicted noise is kept. The
// steps update the states only: they compute no logits and sample nothing
// (the step counters stay). A diffusion sampler runs an image span this
// way, once per denoising pass; a prompt can be fed this way too.
type ForcedSteps struct {
	s       *StepModel
	N       int
	ids     *nn.Tensor // (n, s) u32
	patches *nn.Tensor // (n, s, p), with continuous inputs
	pred    *nn.Tensor // (n, s, p), with continuous inputs
	tensors []*nn.Tensor
}

// NewForcedSteps allocates forced runs of n steps.
func (s *StepModel) NewForcedSteps(n int) (_ *ForcedSteps, err error) {
	if n <= 0 {
		return nil, fmt.Errorf("mom: forced steps: %d steps, want at least 1", n)
	}
	f := &ForcedSteps{s: s, N: n}
	defer func() {
		if err != nil {
			f.Release()
		}
	}()
	ten := func(name string, shape ...int) (*nn.Tensor, error) {
		t, err := nn.NewTensor(s.d, "forced."+name, shape...)
		if err != nil {
			return nil, fmt.Errorf("mom: forced steps: %w", err)
		}
		f.tensors = append(f.tensors, t)
		return t, nil
	}
	if f.ids, err = ten("ids", n, s.Streams); err != nil {
		return nil, err
	}
	if s.patches != nil {
		if f.patches, err = ten("patches", n, s.Streams, s.Cfg.PatchDim); err != nil {
			return nil, err
		}
		if f.pred, err = ten("pred", n, s.Streams, s.Cfg.PatchDim); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Run restores from (unless nil), then runs the N steps with ids (n, s)
// and patches (n, s, p; nil for zeros, and nil without continuous inputs),
// all in one submit. Pred then reads the predicted noise. The step model's
// current ids and patches are left as the last step's.
func (f *ForcedSteps) Run(from *StepSnapshot, ids []uint32, patches []float32) error {
	s := f.s
	if from != nil {
		if err := s.checkSnapshot(from); err != nil {
			return err
		}
	}
	if len(ids) != f.N*s.Streams {
		return fmt.Errorf("mom: forced steps: %d ids for %d steps of %d streams", len(ids), f.N, s.Streams)
	}
	for i, id := range ids {
		if int64(id) >= int64(s.Cfg.Vocab) {
			return fmt.Errorf("mom: forced steps: step %d stream %d has id %d outside the vocabulary of %d", i/s.Streams, i%s.Streams, id, s.Cfg.Vocab)
		}
	}
	if err := f.ids.UploadU32(ids); err != nil {
		return fmt.Errorf("mom: forced steps: %w", err)
	}
	switch {
	case f.patches == nil && patches != nil:
		return fmt.Errorf("mom: forced steps: the %s setting has no continuous inputs", s.Cfg.Setting)
	case f.patches != nil && patches != nil:
		if len(patches) != f.patches.Len() {
			return fmt.Errorf("mom: forced steps: %d patch values, want %d (steps, streams, patch)", len(patches), f.patches.Len())
		}
		if err := f.patches.Upload(patches); err != nil {
			return fmt.Errorf("mom: forced steps: %w", err)
		}
	}
	r := s.d.NewRecorder()
	if f.patches != nil && patches == nil {
		r.Clear(f.patches.Buf, 0, f.patches.Bytes())
	}
	if from != nil {
		s.RecordRestore(r, from)
	}
	idRow := int64(4 * s.Streams)
	var pRow int64
	if f.patches != nil {
		pRow = int64(4 * s.Streams * s.Cfg.PatchDim)
	}
	for i := 0; i < f.N; i++ {
		r.Copy(f.ids.Buf, int64(i)*idRow, s.ids.Buf, 0, idRow)
		if f.patches != nil {
			r.Copy(f.patches.Buf, int64(i)*pRow, s.patches.Buf, 0, pRow)
		}
		s.recordBody(r)
		if s.patchOut != nil {
			s.patchOut.Record(r)
			r.Copy(s.pred.Buf, 0, f.pred.Buf, int64(i)*pRow, pRow)
		}
	}
	if err := r.Submit(); err != nil {
		return fmt.Errorf("mom: %d forced steps of %d streams: %w", f.N, s.Streams, err)
	}
	return nil
}

// Pred reads the predicted noise of the last Run, (n, s, p).
func (f *ForcedSteps) Pred() ([]float32, error) {
	if f.pred == nil {
		return nil, fmt.Errorf("mom: forced steps: the %s setting has no continuous inputs", f.s.Cfg.Setting)
	}
	return f.pred.Download()
}

// Release frees the forced run's buffers.
func (f *ForcedSteps) Release() {
	for _, t := range f.tensors {
		t.Release()
	}
	f.tensors = nil
}

// Broadcast copies stream src's states, step counter and current id to
// every other stream, in one submit: a prefilled prompt continues in all.
func (s *StepModel) Broadcast(src int) error {
	if src < 0 || src >= s.Streams {
		return fmt.Errorf("mom: broadcast of stream %d of %d", src, s.Streams)
	}
	r := s.d.NewRecorder()
	for i := 0; i < s.Streams; i++ {
		s.RecordCopyStream(r, i, src)
	}
	if err := r.Submit(); err != nil {
		return fmt.Errorf("mom: broadcast of stream %d: %w", src, err)
	}
	return nil
}
