package nnbench

import (
	"fmt"
	"time"

	"mom/gpu"
)

// TransferResult is the speed of one transfer path, in bytes per second,
// each way: from a Go slice to a device buffer and back (what Buffer.Write
// and Read cost), and in place (the staging memory filled or read where it
// is, as parameter init and checkpoint I/O can).
type TransferResult struct {
	Path                   gpu.TransferPath
	Bytes                  int64
	Up, Down               float64
	UpInPlace, DownInPlace float64
}

// Transfer times moving size bytes to and from a device buffer through
// path, the best of reps runs each way after a warm-up, by the wall clock
// from the call to the device's completion.
func Transfer(d *gpu.Device, path gpu.TransferPath, size int64, reps int) (TransferResult, error) {
	res := TransferResult{Path: path, Bytes: size}
	if d.DryRun {
		return res, fmt.Errorf("transfer %s: a dry-run device moves nothing", path)
	}
	if reps < 1 {
		reps = 1
	}
	s, err := d.NewStager(path, 0)
	if err != nil {
		return res, err
	}
	defer s.Release()
	buf, err := d.NewBuffer("bench.transfer", size, gpu.UsageTensor)
	if err != nil {
		return res, err
	}
	defer buf.Release()
	host := make([]byte, size)
	for i := range host {
		host[i] = byte(i * 7)
	}
	best := func(run func() error) (float64, error) {
		if err := run(); err != nil { // warm-up: staging made, pages touched
			return 0, err
		}
		b := 0.0
		for i := 0; i < reps; i++ {
			start := time.Now()
			if err := run(); err != nil {
				return 0, err
			}
			if err := d.Sync(); err != nil {
				return 0, err
			}
			if el := time.Since(start).Seconds(); b == 0 || el < b {
				b = el
			}
		}
		return b, nil
	}
	noFill := func(p []byte, pos int64) error { return nil }
	noUse := func(p []byte, pos int64) error { return nil }
	steps := []struct {
		run func() error
		out *float64
	}{
		{func() error { return s.Upload(buf, 0, host) }, &res.Up},
		{func() error { return s.Download(buf, 0, host) }, &res.Down},
		{func() error { return s.UploadFunc(buf, 0, size, noFill) }, &res.UpInPlace},
		{func() error { return s.DownloadFunc(buf, 0, size, noUse) }, &res.DownInPlace},
	}
	for _, st := range steps {
		sec, err := best(st.run)
		if err != nil {
			return res, fmt.Errorf("transfer %s of %d bytes: %w", path, size, err)
		}
		*st.out = float64(size) / sec
	}
	return res, nil
}
