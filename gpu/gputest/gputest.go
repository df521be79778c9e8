// Package gputest gives tests a shared device per WebGPU runtime: the
// runtimes named in $MOM_RUNTIMES (comma-separated; default dawn and wgpu),
// each opened once per test binary on the best adapter. A runtime whose
// library or adapter is missing fails the test that asks for it (run
// `make deps`); it is never skipped silently.
package gputest

import (
	"os"
	"strings"
	"sync"
	"testing"

	"mom/gpu"
)

var (
	mu      sync.Mutex
	devices = map[gpu.Runtime]*gpu.Device{}
	errs    = map[gpu.Runtime]error{}
)

// Runtimes are those named in $MOM_RUNTIMES, default both.
func Runtimes() []gpu.Runtime {
	env := os.Getenv("MOM_RUNTIMES")
	if env == "" {
		return []gpu.Runtime{gpu.Dawn, gpu.WGPU}
	}
	var out []gpu.Runtime
	for _, s := range strings.Split(env, ",") {
		rt, err := gpu.ParseRuntime(s)
		if err != nil {
			panic("MOM_RUNTIMES: " + err.Error())
		}
		out = append(out, rt)
	}
	return out
}

// Device returns the shared device of runtime rt, opening it on first use.
func Device(rt gpu.Runtime) (*gpu.Device, error) {
	mu.Lock()
	defer mu.Unlock()
	if d, ok := devices[rt]; ok {
		return d, nil
	}
	if err, ok := errs[rt]; ok {
		return nil, err
	}
	d, err := gpu.Open(gpu.Options{Runtime: rt, Adapter: -1})
	if err != nil {
		errs[rt] = err
		return nil, err
	}
	devices[rt] = d
	return d, nil
}

// ForEachDevice runs fn as a subtest per runtime with its shared device.
func ForEachDevice(t *testing.T, fn func(t *testing.T, d *gpu.Device)) {
	t.Helper()
	for _, rt := range Runtimes() {
		t.Run(string(rt), func(t *testing.T) {
			d, err := Device(rt)
			if err != nil {
				t.Fatalf("opening a %s device: %v", rt, err)
			}
			fn(t, d)
		})
	}
}

// Must returns the shared device of rt or fails b.
func Must(tb testing.TB, rt gpu.Runtime) *gpu.Device {
	tb.Helper()
	d, err := Device(rt)
	if err != nil {
		tb.Fatalf("opening a %s device: %v", rt, err)
	}
	return d
}
