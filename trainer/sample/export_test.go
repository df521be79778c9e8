package sample

// SetTestHookPred sets the hook that sees every diffusion pass's input
// patches and predicted noise (nil: none).
func SetTestHookPred(f func(level, stream int, x, eps []float32)) { testHookPred = f }
