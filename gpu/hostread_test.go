package gpu

import (
	"encoding/binary"
	"math"
	"testing"
)

// TestHostReadBufferReuse: a host-read buffer brings device data to the
// host in place, several times over, and two of them can be in flight at
// once; live object counts do not grow.
func TestHostReadBufferReuse(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		const n = 1000
		src, err := d.NewBuffer("src", 4*n, UsageTensor)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Release()
		before := d.LiveObjects()
		a, err := d.NewHostReadBuffer("a", 4*n)
		if err != nil {
			t.Fatal(err)
		}
		b, err := d.NewHostReadBuffer("b", 4*n)
		if err != nil {
			t.Fatal(err)
		}
		for round := 0; round < 3; round++ {
			vals := make([]float32, n)
			for i := range vals {
				vals[i] = float32(round*n + i)
			}
			if err := src.WriteFloat32(0, vals); err != nil {
				t.Fatal(err)
			}
			r := d.NewRecorder()
			r.Copy(src, 0, a.Buffer(), 0, 4*n)
			if err := r.Submit(); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if err := a.Map(); err != nil {
				t.Fatal(err)
			}
			r = d.NewRecorder()
			r.Copy(src, 4*(n/2), b.Buffer(), 0, 4*(n/2))
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			if err := b.Map(); err != nil {
				t.Fatal(err)
			}
			if err := a.Map(); err == nil {
				t.Errorf("a second Map of a mapped buffer was accepted")
			}
			for _, c := range []struct {
				h     *HostReadBuffer
				first int
				count int
			}{{b, n / 2, n / 2}, {a, 0, n}} {
				raw, err := c.h.Wait()
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < c.count; i++ {
					if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != vals[c.first+i] {
						t.Fatalf("round %d: [%d] = %g, want %g", round, i, got, vals[c.first+i])
					}
				}
				c.h.Unmap()
			}
		}
		a.Release()
		b.Release()
		after := d.LiveObjects()
		for k, v := range before {
			if after[k] != v {
				t.Errorf("live %s: %d before, %d after", k, v, after[k])
			}
		}
	})
}

// TestHostWriteBufferReuse: a host-write buffer brings host data to the
// device, several rounds over, each round's copy seeing that round's bytes;
// writing before the copy out of it was remapped is refused; live object
// counts do not grow.
func TestHostWriteBufferReuse(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		const n = 1000
		dst, err := d.NewBuffer("dst", 4*n, UsageTensor)
		if err != nil {
			t.Fatal(err)
		}
		defer dst.Release()
		if _, err := dst.ReadFloat32(0, n); err != nil { // (a read makes the device's readback buffer, which stays)
			t.Fatal(err)
		}
		before := d.LiveObjects()
		u, err := d.NewHostWriteBuffer("u", 4*n)
		if err != nil {
			t.Fatal(err)
		}
		for round := 0; round < 3; round++ {
			p, err := u.Bytes()
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			for i := 0; i < n; i++ {
				binary.LittleEndian.PutUint32(p[4*i:], math.Float32bits(float32(round*n+i)))
			}
			if err := u.Unmap(); err != nil {
				t.Fatal(err)
			}
			if _, err := u.Bytes(); err == nil {
				t.Errorf("round %d: Bytes of an unmapped buffer was accepted", round)
			}
			r := d.NewRecorder()
			r.Copy(u.Buffer(), 4*(n/2), dst, 0, 4*(n/2))
			r.Copy(u.Buffer(), 0, dst, 4*(n/2), 4*(n/2))
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			if err := u.Remap(); err != nil {
				t.Fatal(err)
			}
			got, err := dst.ReadFloat32(0, n)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				want := float32(round*n + (i+n/2)%n)
				if got[i] != want {
					t.Fatalf("round %d: [%d] = %g, want %g", round, i, got[i], want)
				}
			}
		}
		u.Release()
		after := d.LiveObjects()
		for k, v := range before {
			if after[k] != v {
				t.Errorf("live %s: %d before, %d after", k, v, after[k])
			}
		}
	})
}
