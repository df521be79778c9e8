package sample

// SetTestHookPred sets the hook that sees every diffusion pass's input
// patches and predicted noise (nil: none).
func SetTestHookPred(f func(level, stream int, x, eps []float32)) { testHookPred = f }

// SetChunk sets the most steps a sampler runs per submit (1: every step
// on its own).
func (s *Sampler) SetChunk(n int) { s.chunk = min(max(n, 1), generateSteps) }
