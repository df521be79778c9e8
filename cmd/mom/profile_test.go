package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestBenchStepProfile: `bench step --profile N` lists N kernels of each
// model with positive GPU times, largest first, the GEMM and the scan
// among the entry points, and a per-entry total that adds up.
func TestBenchStepProfile(t *testing.T) {
	code, out, errOut := runCLI("bench", "step", "--preset", "tiny", "--batch", "2", "--seq", "32", "--steps", "1", "--rounds", "1", "--profile", "4")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	head := regexp.MustCompile(`(?m)^(dense|MoM \(in,x,dt,out\)): profile of one step, every dispatch timed alone: kernels ([0-9.]+) ms in all`)
	heads := head.FindAllStringSubmatch(out, -1)
	if len(heads) != 2 {
		t.Fatalf("want a profile for dense and MoM, got %d headers in:\n%s", len(heads), out)
	}
	for _, part := range strings.Split(out, "profile of one step")[1:] {
		entries, top, _ := strings.Cut(part, "top 4 kernels:")
		if top == "" {
			t.Fatalf("no top-4 list in:\n%s", part)
		}
		total, _ := strconv.ParseFloat(head.FindStringSubmatch("dense: profile of one step" + strings.SplitN(part, "\n", 2)[0])[2], 64)
		sum := 0.0
		seen := map[string]bool{}
		for _, l := range strings.Split(entries, "\n")[2:] {
			f := strings.Fields(l)
			if len(f) != 4 {
				continue
			}
			ms, err := strconv.ParseFloat(f[0], 64)
			if err != nil || ms < 0 {
				t.Fatalf("bad line %q", l)
			}
			sum += ms
			seen[f[3][strings.LastIndex(f[3], ":")+1:]] = true
		}
		if total <= 0 || sum < 0.99*total || sum > 1.01*total+0.01 {
			t.Errorf("entry points add up to %.3f ms, the header says %.3f", sum, total)
		}
		if !seen["scan_fwd"] || !seen["scan_bwd"] {
			t.Errorf("the scan is missing from the entry points: %v", seen)
		}
		var last float64 = 1e18
		n := 0
		for _, l := range strings.Split(top, "\n")[2:] {
			f := strings.Fields(l)
			if len(f) != 4 {
				continue
			}
			ms, _ := strconv.ParseFloat(f[0], 64)
			if ms > last {
				t.Errorf("top kernels not sorted: %q after %.3f", l, last)
			}
			last = ms
			n++
		}
		if n != 4 {
			t.Errorf("want 4 top kernels, got %d:\n%s", n, top)
		}
	}
}
