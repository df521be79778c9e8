// Package nnbench holds mom's kernel and transfer benchmarks, importable and
// runnable against any device (as gonum's testblas holds its conformance
// tests): `mom bench kernels` and `mom bench transfer` run them on the
// device they open, `go test -bench . ./nn/nnbench` on every runtime's
// lavapipe device, and the tests set every case up on dry-run devices (an
// H200 profile included) to prove the large sizes build.
//
// A Case builds an op of package nn at a size (Small fits lavapipe and CI,
// Large is sized for a real GPU: the shapes of the H200 figures in the
// README and issue 12) and says how many FLOPs and compulsory bytes one run
// costs; Run times it with GPU timestamps (wall clock where the device has
// none) and states the rates as fractions of the device's roof (Peak).
// Transfer times host-device copies of each transfer path.
package nnbench
