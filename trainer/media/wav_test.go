package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// wavSpec describes a WAV file that testWAV builds byte by byte.
type wavSpec struct {
	tag        uint16 // 1 PCM, 3 float, 0xFFFE extensible (then sub is the real tag)
	sub        uint16
	channels   int
	rate       int
	bits       int
	blockAlign int    // 0: channels*bits/8
	data       []byte // the sample bytes
	dataSize   uint32 // 0: len(data)
	before     []byte // chunks written between fmt and data
	fmtFirst   bool   // false puts data before fmt (an error)
	guidTail   []byte // nil: the standard one
}

func testWAV(s wavSpec) []byte {
	le := binary.LittleEndian
	var fmtBody []byte
	ba := s.blockAlign
	if ba == 0 {
		ba = s.channels * ((s.bits + 7) / 8)
	}
	fmtBody = le.AppendUint16(fmtBody, s.tag)
	fmtBody = le.AppendUint16(fmtBody, uint16(s.channels))
	fmtBody = le.AppendUint32(fmtBody, uint32(s.rate))
	fmtBody = le.AppendUint32(fmtBody, uint32(s.rate*ba))
	fmtBody = le.AppendUint16(fmtBody, uint16(ba))
	fmtBody = le.AppendUint16(fmtBody, uint16(s.bits))
	if s.tag == wavExtensible {
		fmtBody = le.AppendUint16(fmtBody, 22)
		fmtBody = le.AppendUint16(fmtBody, uint16(s.bits))
		fmtBody = le.AppendUint32(fmtBody, 0) // channel mask
		fmtBody = le.AppendUint16(fmtBody, s.sub)
		tail := s.guidTail
		if tail == nil {
			tail = wavGUIDTail[:]
		}
		fmtBody = append(fmtBody, tail...)
	}
	chunk := func(id string, body []byte, size uint32) []byte {
		out := append([]byte(id), le.AppendUint32(nil, size)...)
		out = append(out, body...)
		if len(body)%2 == 1 && id != "data" {
			out = append(out, 0)
		}
		return out
	}
	size := s.dataSize
	if size == 0 {
		size = uint32(len(s.data))
	}
	fmtC := chunk("fmt ", fmtBody, uint32(len(fmtBody)))
	dataC := chunk("data", s.data, size)
	var body []byte
	body = append(body, "WAVE"...)
	if s.fmtFirst {
		body = append(body, fmtC...)
		body = append(body, s.before...)
		body = append(body, dataC...)
	} else {
		body = append(body, dataC...)
		body = append(body, fmtC...)
	}
	return append(append([]byte("RIFF"), le.AppendUint32(nil, uint32(len(body)))...), body...)
}

// ints encodes integer sample values of the given byte width (8-bit
// unsigned, others signed), little-endian.
func ints(width int, vals []int64) []byte {
	var out []byte
	for _, v := range vals {
		if width == 1 {
			v += 128
		}
		for b := range width {
			out = append(out, byte(uint64(v)>>(8*b)))
		}
	}
	return out
}

func TestDecodeWAVFormats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randInts := func(n, bits int) []int64 {
		v := make([]int64, n)
		lim := int64(1) << (bits - 1)
		for i := range v {
			v[i] = rng.Int64N(2*lim) - lim
		}
		return v
	}
	const n = 300
	type tc struct {
		name string
		spec wavSpec
		want []float64 // mono samples
		tol  float64
	}
	var cases []tc
	for _, bits := range []int{8, 16, 24, 32} {
		v := randInts(n, bits)
		want := make([]float64, n)
		for i := range v {
			want[i] = float64(v[i]) / math.Exp2(float64(bits-1))
		}
		cases = append(cases, tc{name: "pcm" + string(rune('0'+bits/8)), spec: wavSpec{tag: 1, channels: 1, rate: 8000, bits: bits, data: ints(bits/8, v), fmtFirst: true}, want: want, tol: 1e-7})
		cases = append(cases, tc{name: "extensible pcm" + string(rune('0'+bits/8)), spec: wavSpec{tag: wavExtensible, sub: 1, channels: 1, rate: 8000, bits: bits, data: ints(bits/8, v), fmtFirst: true}, want: want, tol: 1e-7})
	}
	// Stereo: the mean of the two channels.
	{
		l, r := randInts(n, 16), randInts(n, 16)
		var inter []int64
		want := make([]float64, n)
		for i := range l {
			inter = append(inter, l[i], r[i])
			want[i] = (float64(l[i]) + float64(r[i])) / 2 / 32768
		}
		cases = append(cases, tc{name: "stereo16", spec: wavSpec{tag: 1, channels: 2, rate: 44100, bits: 16, data: ints(2, inter), fmtFirst: true}, want: want, tol: 1e-7})
	}
	// Floats, with values outside [-1, 1] clipped; 3 channels mixed.
	for _, bits := range []int{32, 64} {
		var raw []byte
		want := make([]float64, n)
		for i := range want {
			var sum float64
			for range 3 {
				v := rng.Float64()*3 - 1.5
				if bits == 32 {
					v = float64(float32(v))
					raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(v)))
				} else {
					raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(v))
				}
				sum += max(-1, min(1, v))
			}
			want[i] = sum / 3
		}
		cases = append(cases, tc{name: "float" + string(rune('0'+bits/8)), spec: wavSpec{tag: 3, channels: 3, rate: 22050, bits: bits, data: raw, fmtFirst: true}, want: want, tol: 1e-6})
		cases = append(cases, tc{name: "extensible float" + string(rune('0'+bits/8)), spec: wavSpec{tag: wavExtensible, sub: 3, channels: 3, rate: 22050, bits: bits, data: raw, fmtFirst: true}, want: want, tol: 1e-6})
	}
	// Other chunks (an odd-sized one, padded) before the data are skipped.
	{
		v := randInts(n, 16)
		want := make([]float64, n)
		for i := range v {
			want[i] = float64(v[i]) / 32768
		}
		list := append([]byte("LIST\x05\x00\x00\x00abcde"), 0)
		cases = append(cases, tc{name: "extra chunk", spec: wavSpec{tag: 1, channels: 1, rate: 16000, bits: 16, data: ints(2, v), before: list, fmtFirst: true}, want: want, tol: 1e-7})
		// Streamed: a placeholder size; the data run to the end, and a
		// trailing partial frame is dropped.
		for _, size := range []uint32{0x7ffff000, 0xffffffff} {
			data := append(ints(2, v), 0x12)
			cases = append(cases, tc{name: "streamed", spec: wavSpec{tag: 1, channels: 1, rate: 22050, bits: 16, data: data, dataSize: size, fmtFirst: true}, want: want, tol: 1e-7})
		}
		// A declared size shorter than the bytes present: the rest is ignored.
		cases = append(cases, tc{name: "trailing bytes", spec: wavSpec{tag: 1, channels: 1, rate: 16000, bits: 16, data: append(ints(2, v), 1, 2, 3, 4), dataSize: uint32(2 * n), fmtFirst: true}, want: want, tol: 1e-7})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := DecodeWAV(bytes.NewReader(testWAV(c.spec)))
			if err != nil {
				t.Fatal(err)
			}
			if a.Rate != c.spec.rate {
				t.Errorf("rate %d, want %d", a.Rate, c.spec.rate)
			}
			if len(a.Samples) != len(c.want) {
				t.Fatalf("%d samples, want %d", len(a.Samples), len(c.want))
			}
			for i, w := range c.want {
				if math.Abs(float64(a.Samples[i])-w) > c.tol {
					t.Fatalf("sample %d = %v, want %v", i, a.Samples[i], w)
				}
			}
		})
	}
}

func TestDecodeWAVErrors(t *testing.T) {
	pcm := func(mod func(*wavSpec)) []byte {
		s := wavSpec{tag: 1, channels: 1, rate: 16000, bits: 16, data: make([]byte, 20), fmtFirst: true}
		mod(&s)
		return testWAV(s)
	}
	good := pcm(func(*wavSpec) {})
	nanData := binary.LittleEndian.AppendUint32(make([]byte, 8), math.Float32bits(float32(math.NaN())))
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "offset 0: 0 bytes, too short"},
		{"short", []byte("RIFF\x00"), "offset 0: 5 bytes"},
		{"not riff", append([]byte("OggS"), good[4:]...), `offset 0: magic "OggS"`},
		{"rifx", append([]byte("RIFX"), good[4:]...), "big-endian"},
		{"rf64", append([]byte("RF64"), good[4:]...), "RF64"},
		{"not wave", append(append([]byte{}, good[:8]...), append([]byte("AVI "), good[12:]...)...), `offset 8: RIFF form type "AVI "`},
		{"no chunks", good[:12], "offset 12: the file ends without a fmt or a data chunk"},
		{"no data", good[:36], "offset 36: the file ends without a data chunk"},
		{"cut chunk header", good[:40], "offset 36: truncated chunk header (4 of 8 bytes)"},
		{"data first", pcm(func(s *wavSpec) { s.fmtFirst = false }), "offset 12: data chunk before any fmt chunk"},
		{"adpcm", pcm(func(s *wavSpec) { s.tag = 2 }), "offset 20: format tag 0x0002 is not supported"},
		{"no channels", pcm(func(s *wavSpec) { s.channels = 0; s.blockAlign = 2 }), "offset 22: 0 channels"},
		{"no rate", pcm(func(s *wavSpec) { s.rate = 0 }), "offset 24: sample rate 0 Hz"},
		{"block align", pcm(func(s *wavSpec) { s.blockAlign = 3 }), "offset 32: block align 3 does not match"},
		{"float16", pcm(func(s *wavSpec) { s.tag = 3 }), "offset 34: IEEE float of 16 bits"},
		{"pcm40", pcm(func(s *wavSpec) { s.bits = 40 }), "offset 34: integer PCM of 40 bits"},
		{"bad guid", pcm(func(s *wavSpec) { s.tag = wavExtensible; s.sub = 1; s.guidTail = make([]byte, 14) }), "offset 44: WAVE_FORMAT_EXTENSIBLE sub-format GUID"},
		{"ext adpcm", pcm(func(s *wavSpec) { s.tag = wavExtensible; s.sub = 2 }), "format tag 0x0002"},
		{"truncated data", good[:len(good)-3], "offset 36: data chunk declares 20 bytes but the input ends after 17"},
		{"nan", pcm(func(s *wavSpec) { s.tag = 3; s.bits = 32; s.data = nanData }), "offset 52: float sample is NaN"},
		{"big fmt", append(append([]byte{}, good[:12]...), "fmt \xff\xff\xff\x00"...), "offset 12: fmt chunk of 16777215 bytes"},
		{"cut fmt", good[:30], "offset 20: fmt chunk truncated: 10 of 16 bytes"},
		{"cut other chunk", append(append([]byte{}, good[:36]...), "LIST\x10\x00\x00\x00abc"...), `offset 36: chunk "LIST" of 16 bytes truncated after 3`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeWAV(bytes.NewReader(c.b))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestWAVRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a := &Audio{Rate: 16000, Samples: make([]float32, 1001)}
	for i := range a.Samples {
		a.Samples[i] = float32(rng.Float64()*2.4 - 1.2) // some beyond [-1, 1]
	}
	a.Samples[0], a.Samples[1] = 1, -1
	var buf bytes.Buffer
	if err := EncodeWAV(&buf, a); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 44+2*len(a.Samples) {
		t.Fatalf("%d bytes, want %d", buf.Len(), 44+2*len(a.Samples))
	}
	b, err := DecodeWAV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rate != a.Rate || len(b.Samples) != len(a.Samples) {
		t.Fatalf("got %d Hz x %d, want %d Hz x %d", b.Rate, len(b.Samples), a.Rate, len(a.Samples))
	}
	for i, v := range a.Samples {
		want := max(-1, min(1, float64(v)))
		if d := math.Abs(float64(b.Samples[i]) - want); d > 1.0/32768+1e-9 {
			t.Fatalf("sample %d: %v came back as %v", i, v, b.Samples[i])
		}
	}
	// Values on the 16-bit grid come back exactly, and a second round trip
	// changes nothing.
	var buf2 bytes.Buffer
	if err := EncodeWAV(&buf2, b); err != nil {
		t.Fatal(err)
	}
	c, err := DecodeWAV(&buf2)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.Samples {
		if b.Samples[i] != c.Samples[i] {
			t.Fatalf("sample %d: %v then %v", i, b.Samples[i], c.Samples[i])
		}
	}
}

func TestEncodeWAVErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		a    *Audio
		want string
	}{
		{"nil", nil, "no audio"},
		{"rate", &Audio{Rate: 0}, "sample rate 0"},
		{"nan", &Audio{Rate: 8000, Samples: []float32{0, float32(math.NaN())}}, "sample 1 is NaN"},
		{"inf", &Audio{Rate: 8000, Samples: []float32{float32(math.Inf(-1))}}, "sample 0 is -Inf"},
	} {
		if err := EncodeWAV(&bytes.Buffer{}, c.a); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func TestWAVFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.wav")
	a := &Audio{Rate: 22050, Samples: []float32{0, 0.5, -0.25, 1}}
	if err := WriteWAV(path, a); err != nil {
		t.Fatal(err)
	}
	b, err := ReadWAV(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rate != a.Rate || len(b.Samples) != 4 || b.Samples[1] != 0.5 || b.Samples[3] != 32767.0/32768 {
		t.Fatalf("read back %+v", b)
	}
	// A failed write leaves the old file.
	if err := WriteWAV(path, &Audio{Rate: 0}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v, want one naming %s", err, path)
	}
	if b2, err := ReadWAV(path); err != nil || len(b2.Samples) != 4 {
		t.Fatalf("the old file is gone: %v", err)
	}
	if _, err := ReadWAV(filepath.Join(dir, "missing.wav")); err == nil || !strings.Contains(err.Error(), "missing.wav") {
		t.Fatalf("error %v, want one naming the file", err)
	}
	bad := filepath.Join(dir, "bad.wav")
	os.WriteFile(bad, []byte("RIFF\x00\x00\x00\x00WAVX"), 0o644)
	if _, err := ReadWAV(bad); err == nil || !strings.Contains(err.Error(), "bad.wav: media: WAV offset 8") {
		t.Fatalf("error %v, want one naming the file and offset", err)
	}
}

// TestDecodeEspeakStream reads what espeak-ng writes to a pipe: sizes that
// are placeholders (0x7ffff000), so the data run to the end of the input.
func TestDecodeEspeakStream(t *testing.T) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng is not installed (Debian package espeak-ng); the placeholder-size case is also covered by TestDecodeWAVFormats")
	}
	out, err := exec.Command("espeak-ng", "--stdout", "Testing one two three.").Output()
	if err != nil {
		t.Fatal(err)
	}
	if size := binary.LittleEndian.Uint32(out[40:44]); size < wavStreamed {
		t.Logf("espeak-ng wrote a real data size %d", size)
	}
	a, err := DecodeWAV(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if a.Rate != 22050 || len(a.Samples) != (len(out)-44)/2 {
		t.Fatalf("%d Hz, %d samples from %d bytes", a.Rate, len(a.Samples), len(out))
	}
	var peak float32
	for _, v := range a.Samples {
		peak = max(peak, v, -v)
	}
	if a.Seconds() < 0.5 || peak < 0.05 {
		t.Fatalf("%.2f s with peak %.3f: not speech", a.Seconds(), peak)
	}
}

func FuzzDecodeWAV(f *testing.F) {
	v := ints(2, []int64{0, 1000, -1000, 32767, -32768})
	f.Add(testWAV(wavSpec{tag: 1, channels: 1, rate: 16000, bits: 16, data: v, fmtFirst: true}))
	f.Add(testWAV(wavSpec{tag: 1, channels: 1, rate: 16000, bits: 16, data: v, dataSize: 0x7ffff000, fmtFirst: true}))
	f.Add(testWAV(wavSpec{tag: 1, channels: 2, rate: 8000, bits: 8, data: []byte{1, 2, 3, 4, 255, 0}, fmtFirst: true}))
	f.Add(testWAV(wavSpec{tag: 1, channels: 1, rate: 8000, bits: 24, data: make([]byte, 9), fmtFirst: true}))
	f.Add(testWAV(wavSpec{tag: 3, channels: 1, rate: 8000, bits: 32, data: make([]byte, 8), fmtFirst: true}))
	f.Add(testWAV(wavSpec{tag: wavExtensible, sub: 3, channels: 2, rate: 48000, bits: 64, data: make([]byte, 32), fmtFirst: true}))
	f.Add(testWAV(wavSpec{tag: 1, channels: 1, rate: 16000, bits: 16, data: v, before: []byte("LIST\x01\x00\x00\x00x\x00"), fmtFirst: true}))
	f.Add(testWAV(wavSpec{tag: 1, channels: 1, rate: 16000, bits: 16, data: v}))
	f.Add([]byte("RIFF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeWAV(bytes.NewReader(b))
		if err != nil {
			if a != nil {
				t.Fatal("audio returned with an error")
			}
			return
		}
		if a.Rate <= 0 || a.Rate > wavMaxRate {
			t.Fatalf("rate %d", a.Rate)
		}
		if len(a.Samples) > len(b) {
			t.Fatalf("%d samples from %d bytes", len(a.Samples), len(b))
		}
		for i, s := range a.Samples {
			if !(s >= -1 && s <= 1) {
				t.Fatalf("sample %d = %v", i, s)
			}
		}
		var buf bytes.Buffer
		if err := EncodeWAV(&buf, a); err != nil {
			t.Fatal(err)
		}
		c, err := DecodeWAV(&buf)
		if err != nil || len(c.Samples) != len(a.Samples) || c.Rate != a.Rate {
			t.Fatalf("re-encoded audio does not decode the same: %v", err)
		}
	})
}
