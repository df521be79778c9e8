package gpu

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"
)

// TestTransferPaths moves bytes up and down through every path the device
// offers, with a small staging chunk so that a transfer takes several
// chunks through both slots and ends on a partial one, at an offset inside
// the buffer; the bytes around the range must stay as they were.
func TestTransferPaths(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		paths := d.TransferPaths()
		if d.Lib.Runtime == Dawn && paths[0] != PathHostMapped {
			t.Errorf("Dawn on %s offers %v: want %s first (lavapipe imports host memory)", d.Info.Name, paths, PathHostMapped)
		}
		const chunk = 64 << 10
		const size = 5*chunk/2 + 12 // 2.5 chunks and a bit
		const off = 4096 + 8
		rng := rand.New(rand.NewSource(7))
		for _, p := range paths {
			t.Run(string(p), func(t *testing.T) {
				s, err := d.NewStager(p, chunk)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Release()
				buf := mustBuffer(t, d, "transfer", off+size+16)
				defer buf.Release()
				// A known background, then the transfer into the middle.
				bg := bytes.Repeat([]byte{0xA5}, int(buf.Size))
				if err := buf.writeQueue(0, bg); err != nil {
					t.Fatal(err)
				}
				data := make([]byte, size)
				rng.Read(data)
				for round := 0; round < 2; round++ { // the second reuses the slots
					data[0] = byte(round)
					if err := s.Upload(buf, off, data); err != nil {
						t.Fatal(err)
					}
					got := make([]byte, size)
					if err := s.Download(buf, off, got); err != nil {
						t.Fatal(err)
					}
					if i := firstDiff(got, data); i >= 0 {
						t.Fatalf("round %d: byte %d came back as %#x, want %#x", round, i, got[i], data[i])
					}
				}
				all, err := buf.Read(0, buf.Size)
				if err != nil {
					t.Fatal(err)
				}
				if i := firstDiff(all[:off], bg[:off]); i >= 0 {
					t.Errorf("byte %d before the range changed", i)
				}
				if i := firstDiff(all[off+size:], bg[off+size:]); i >= 0 {
					t.Errorf("byte %d after the range changed", off+size+i)
				}
				// Filling straight into staging: the pieces cover the range in order.
				var seen int64
				err = s.UploadFunc(buf, off, size, func(q []byte, pos int64) error {
					if pos != seen {
						return fmt.Errorf("piece at %d, want %d", pos, seen)
					}
					seen += int64(len(q))
					for i := range q {
						q[i] = byte(pos + int64(i))
					}
					return nil
				})
				if err != nil || seen != size {
					t.Fatalf("UploadFunc: %v (%d of %d bytes)", err, seen, size)
				}
				sum := 0
				err = s.DownloadFunc(buf, off, size, func(q []byte, pos int64) error {
					for i := range q {
						if q[i] != byte(pos+int64(i)) {
							return fmt.Errorf("byte %d is %#x", pos+int64(i), q[i])
						}
					}
					sum += len(q)
					return nil
				})
				if err != nil || sum != size {
					t.Fatalf("DownloadFunc: %v (%d of %d bytes)", err, sum, size)
				}
				// An error from the callback comes back, and the stager still works.
				boom := errors.New("boom")
				if err := s.DownloadFunc(buf, off, size, func([]byte, int64) error { return boom }); !errors.Is(err, boom) {
					t.Errorf("DownloadFunc with a failing callback: %v, want boom", err)
				}
				if err := s.Download(buf, off, make([]byte, size)); err != nil {
					t.Errorf("Download after a failed one: %v", err)
				}
			})
		}
		if d.Has(FeatureHostMappedPointer) {
			t.Run("host memory freed", func(t *testing.T) {
				d.Check("settle") // Dawn calls dispose callbacks while it processes events
				before := hostAllocations()
				buf := mustBuffer(t, d, "t", 1<<16)
				defer buf.Release()
				for i := 0; i < 3; i++ {
					s, err := d.NewStager(PathHostMapped, 4096)
					if err != nil {
						t.Fatal(err)
					}
					if err := s.Upload(buf, 0, make([]byte, 3*4096)); err != nil {
						t.Fatal(err)
					}
					if err := s.Download(buf, 0, make([]byte, 3*4096)); err != nil {
						t.Fatal(err)
					}
					s.Release()
				}
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
				// Dawn frees the memory from its event processing once the GPU is
				// done with the buffer: give it a few rounds.
				for i := 0; i < 50 && hostAllocations() != before; i++ {
					if err := d.NewRecorder().Submit(); err != nil {
						t.Fatal(err)
					}
					d.Sync()
					d.Check("settle")
					time.Sleep(time.Millisecond)
				}
				if after := hostAllocations(); after != before {
					t.Errorf("%d blocks of host memory live after three stagers came and went, %d before: Dawn's dispose callback did not free them", after, before)
				}
			})
		}
		t.Run("errors", func(t *testing.T) {
			s, err := d.NewStager(PathMapped, chunk)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Release()
			b, err := d.NewBuffer("nocopy", 1024, UsageStorage)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Release()
			if err := s.Upload(b, 0, make([]byte, 64)); err == nil || !strings.Contains(err.Error(), "copy usage") {
				t.Errorf("upload into a buffer without CopyDst: %v", err)
			}
			if err := s.Download(b, 1020, make([]byte, 8)); err == nil || !strings.Contains(err.Error(), "outside") {
				t.Errorf("download past the end: %v", err)
			}
			if d.Lib.Runtime == WGPU {
				if _, err := d.NewStager(PathHostMapped, chunk); err == nil || !strings.Contains(err.Error(), string(FeatureHostMappedPointer)) {
					t.Errorf("host-mapped on wgpu-native: %v, want an error naming %s", err, FeatureHostMappedPointer)
				}
			}
		})
	})
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	if len(b) > len(a) {
		return len(a)
	}
	return -1
}

// TestLargeWriteTakesTransferPath: Buffer.Write and Read of a few MiB go
// through the device's stager (its staging shows in the memory report) and
// round-trip exactly.
func TestLargeWriteTakesTransferPath(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		const n = 3<<20 + 4
		b := mustBuffer(t, d, "large", n)
		defer b.Release()
		data := make([]byte, n)
		rand.New(rand.NewSource(3)).Read(data)
		if err := b.Write(0, data); err != nil {
			t.Fatal(err)
		}
		got, err := b.Read(0, n)
		if err != nil {
			t.Fatal(err)
		}
		if i := firstDiff(got, data); i >= 0 {
			t.Fatalf("byte %d differs", i)
		}
		if d.Transfer() != PathQueue && d.Memory().Staging < 2*defaultChunk {
			t.Errorf("after a %d-byte write and read through %s, staging is %d bytes: the stager was not used", n, d.Transfer(), d.Memory().Staging)
		}
	})
}

// TestHostMappedBuffer: the device copies into host memory and back out of
// it, and the host reads and writes it in place between fences.
func TestHostMappedBuffer(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		if !d.Has(FeatureHostMappedPointer) {
			if _, err := d.NewHostMappedBuffer("h", 4096); err == nil || !strings.Contains(err.Error(), string(FeatureHostMappedPointer)) {
				t.Errorf("without the feature: %v, want an error naming it", err)
			}
			return
		}
		const n = 3000 * 4
		src, dst := mustBuffer(t, d, "src", n), mustBuffer(t, d, "dst", n)
		defer src.Release()
		defer dst.Release()
		data := make([]byte, n)
		rand.New(rand.NewSource(5)).Read(data)
		if err := src.Write(0, data); err != nil {
			t.Fatal(err)
		}
		h, err := d.NewHostMappedBuffer("bucket", n)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Release()
		r := d.NewRecorder()
		r.Copy(src, 0, h.Buffer(), 0, n)
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		if err := h.Fence(); err != nil {
			t.Fatal(err)
		}
		if err := h.Wait(); err != nil {
			t.Fatal(err)
		}
		host := h.Bytes()
		if i := firstDiff(host[:n], data); i >= 0 {
			t.Fatalf("byte %d of the host side differs", i)
		}
		for i := range host[:n] {
			host[i] ^= 0xff // the host works in place
		}
		r = d.NewRecorder()
		r.Copy(h.Buffer(), 0, dst, 0, n)
		if err := r.SubmitChecked(); err != nil {
			t.Fatal(err)
		}
		got, err := dst.Read(0, n)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != data[i]^0xff {
				t.Fatalf("byte %d came back %#x, want %#x", i, got[i], data[i]^0xff)
			}
		}
	})
}
