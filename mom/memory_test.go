package mom

import "testing"

// TestBoundWhole: the largest tensor one kernel binds whole, which decides
// whether a preset fits a device's storage binding limit (lavapipe: 128
// MiB), as the README states.
func TestBoundWhole(t *testing.T) {
	const lavapipe = 128 << 20
	for _, c := range []struct {
		preset string
		b, l   int
		name   string
		bytes  int64
		fits   bool
	}{
		{"tiny", 8, 128, "logits", 4 * 1024 * 192, true},
		{"small", 8, 128, "logits", 4 * 1024 * 2048, true},
		{"37m", 8, 128, "logits", 4 * 1024 * 65536, false},
		{"37m", 4, 128, "logits", 4 * 512 * 65536, true},
		{"94m", 1, 64, "embedding.weight", 4 * 65536 * 640, false},
	} {
		cfg, err := Preset(c.preset, ThreeModal, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		big := cfg.BoundWhole(c.b, c.l)[0]
		if big.Name != c.name || big.Bytes != c.bytes || (big.Bytes <= lavapipe) != c.fits {
			t.Errorf("%s at %dx%d: largest %s of %d bytes, want %s of %d (fits %v)", c.preset, c.b, c.l, big.Name, big.Bytes, c.name, c.bytes, c.fits)
		}
	}
}
