package media

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"mom/trainer/atomicfile"
)

// WAV format tags (the fmt chunk's wFormatTag, and the first two bytes of
// the sub-format GUID of WAVE_FORMAT_EXTENSIBLE).
const (
	wavPCM        = 0x0001
	wavFloat      = 0x0003
	wavExtensible = 0xFFFE
)

// wavGUIDTail is the last 14 bytes shared by the KSDATAFORMAT_SUBTYPE GUIDs
// of PCM and IEEE float in WAVE_FORMAT_EXTENSIBLE's sub-format field
// (00000001-0000-0010-8000-00aa00389b71 and ...0003-..., little-endian).
var wavGUIDTail = [14]byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// wavStreamed is the smallest data-chunk size read as "unknown": programs
// that write a WAV to a pipe cannot seek back to fill in the sizes and put
// a placeholder there (espeak-ng --stdout writes 0x7ffff000, others
// 0xffffffff). Such a data chunk runs to the end of the input.
const wavStreamed = 0x7FFFF000

// wavMaxRate bounds the sample rate a reader accepts; anything above is a
// corrupt header rather than audio.
const wavMaxRate = 10_000_000

// wavFormat is a parsed fmt chunk.
type wavFormat struct {
	tag        uint16 // wavPCM or wavFloat (an extensible file's sub-format)
	channels   int
	rate       int
	blockAlign int // bytes per frame (all channels)
	bytes      int // bytes per sample of one channel (the container)
	bits       int
}

// wavReader tracks the offset of what it reads, for error messages.
type wavReader struct {
	r   *bufio.Reader
	off int64
}

func (w *wavReader) full(b []byte) (int, error) {
	n, err := io.ReadFull(w.r, b)
	w.off += int64(n)
	return n, err
}

func (w *wavReader) skip(n int64) (int64, error) {
	m, err := io.CopyN(io.Discard, w.r, n)
	w.off += m
	return m, err
}

func wavErr(off int64, format string, args ...any) error {
	return fmt.Errorf("media: WAV offset %d: %s", off, fmt.Sprintf(format, args...))
}

// DecodeWAV reads a RIFF WAVE stream: integer PCM of 8 (unsigned), 16, 24
// or 32 bits, or IEEE float of 32 (or 64) bits, in the plain or the
// WAVE_FORMAT_EXTENSIBLE form, with any number of channels, which are
// averaged to mono. Float samples beyond [-1, 1] are clipped; NaN or
// infinite ones are an error. Chunks other than fmt and data are skipped,
// and reading stops at the end of the data chunk. A data chunk whose size
// is a streaming placeholder (0x7ffff000 or more, as espeak-ng --stdout
// writes) runs to the end of the input; a trailing partial frame is
// dropped. Every error names the byte offset of the problem.
func DecodeWAV(r io.Reader) (*Audio, error) {
	w := &wavReader{r: bufio.NewReaderSize(r, 64<<10)}
	var hdr [12]byte
	if n, err := w.full(hdr[:]); err != nil {
		return nil, wavErr(0, "%d bytes, too short for a RIFF WAVE header (12 bytes)", n)
	}
	switch string(hdr[0:4]) {
	case "RIFF":
	case "RIFX":
		return nil, wavErr(0, "big-endian RIFX files are not supported")
	case "RF64":
		return nil, wavErr(0, "RF64 (64-bit RIFF) files are not supported")
	default:
		return nil, wavErr(0, "magic %q is not RIFF (not a WAV file)", hdr[0:4])
	}
	if string(hdr[8:12]) != "WAVE" {
		return nil, wavErr(8, "RIFF form type %q is not WAVE", hdr[8:12])
	}
	var format *wavFormat
	for {
		at := w.off
		var ch [8]byte
		n, err := w.full(ch[:])
		if err != nil {
			if n == 0 && errors.Is(err, io.EOF) {
				if format == nil {
					return nil, wavErr(at, "the file ends without a fmt or a data chunk")
				}
				return nil, wavErr(at, "the file ends without a data chunk")
			}
			return nil, wavErr(at, "truncated chunk header (%d of 8 bytes)", n)
		}
		id := string(ch[0:4])
		size := binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if format != nil {
				return nil, wavErr(at, "a second fmt chunk")
			}
			if size < 16 || size > 1<<16 {
				return nil, wavErr(at, "fmt chunk of %d bytes (want 16 to 65536)", size)
			}
			body := make([]byte, size+size&1)
			if n, err := w.full(body); err != nil && !(n == int(size) && size&1 == 1) {
				return nil, wavErr(at+8, "fmt chunk truncated: %d of %d bytes", n, size)
			}
			format, err = parseWAVFormat(body[:size], at+8)
			if err != nil {
				return nil, err
			}
		case "data":
			if format == nil {
				return nil, wavErr(at, "data chunk before any fmt chunk")
			}
			return readWAVData(w, format, size, at)
		default:
			m, err := w.skip(int64(size) + int64(size&1))
			if err != nil && !(m == int64(size) && size&1 == 1) {
				return nil, wavErr(at, "chunk %q of %d bytes truncated after %d", id, size, m)
			}
		}
	}
}

// parseWAVFormat reads a fmt chunk's body found at offset off.
func parseWAVFormat(b []byte, off int64) (*wavFormat, error) {
	le := binary.LittleEndian
	tag := le.Uint16(b[0:2])
	f := &wavFormat{
		tag:        tag,
		channels:   int(le.Uint16(b[2:4])),
		rate:       int(le.Uint32(b[4:8])),
		blockAlign: int(le.Uint16(b[12:14])),
		bits:       int(le.Uint16(b[14:16])),
	}
	if tag == wavExtensible {
		if len(b) < 40 || le.Uint16(b[16:18]) < 22 {
			return nil, wavErr(off, "WAVE_FORMAT_EXTENSIBLE fmt chunk of %d bytes lacks its 22-byte extension", len(b))
		}
		if [14]byte(b[26:40]) != wavGUIDTail {
			return nil, wavErr(off+24, "WAVE_FORMAT_EXTENSIBLE sub-format GUID % x is not a standard KSDATAFORMAT_SUBTYPE", b[24:40])
		}
		f.tag = le.Uint16(b[24:26])
		if valid := int(le.Uint16(b[18:20])); valid > f.bits {
			return nil, wavErr(off+18, "%d valid bits in a %d-bit container", valid, f.bits)
		}
	}
	if f.channels == 0 {
		return nil, wavErr(off+2, "0 channels")
	}
	if f.rate <= 0 || f.rate > wavMaxRate {
		return nil, wavErr(off+4, "sample rate %d Hz (want 1 to %d)", f.rate, wavMaxRate)
	}
	switch f.tag {
	case wavPCM:
		if f.bits < 1 || f.bits > 32 {
			return nil, wavErr(off+14, "integer PCM of %d bits (want 8, 16, 24 or 32)", f.bits)
		}
	case wavFloat:
		if f.bits != 32 && f.bits != 64 {
			return nil, wavErr(off+14, "IEEE float of %d bits (want 32 or 64)", f.bits)
		}
	default:
		return nil, wavErr(off, "format tag 0x%04x is not supported (only PCM 0x0001, IEEE float 0x0003 and their WAVE_FORMAT_EXTENSIBLE forms)", f.tag)
	}
	f.bytes = (f.bits + 7) / 8
	if f.blockAlign != f.channels*f.bytes {
		return nil, wavErr(off+12, "block align %d does not match %d channels of %d-bit samples (%d bytes)", f.blockAlign, f.channels, f.bits, f.channels*f.bytes)
	}
	return f, nil
}

// readWAVData decodes the data chunk whose header was at offset at.
func readWAVData(w *wavReader, f *wavFormat, size uint32, at int64) (*Audio, error) {
	streamed := size >= wavStreamed
	frames := int64(size) / int64(f.blockAlign)
	a := &Audio{Rate: f.rate}
	if !streamed {
		a.Samples = make([]float32, 0, min(frames, 1<<22))
	}
	const batch = 4096
	buf := make([]byte, batch*f.blockAlign)
	scale := float32(1) / float32(uint64(1)<<(8*f.bytes-1))
	inv := 1 / float32(f.channels)
	for done := int64(0); streamed || done < frames; {
		want := int64(batch)
		if !streamed {
			want = min(want, frames-done)
		}
		start := w.off
		n, err := w.full(buf[:want*int64(f.blockAlign)])
		got := n / f.blockAlign
		for i := range got {
			frame := buf[i*f.blockAlign : (i+1)*f.blockAlign]
			var sum float32
			for c := range f.channels {
				s := frame[c*f.bytes : (c+1)*f.bytes]
				v, ok := wavSample(f, s, scale)
				if !ok {
					return nil, wavErr(start+int64(i*f.blockAlign+c*f.bytes), "float sample is %v", v)
				}
				sum += v
			}
			a.Samples = append(a.Samples, sum*inv)
		}
		done += int64(got)
		if err != nil {
			if streamed && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
				return a, nil
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, wavErr(at, "data chunk declares %d bytes but the input ends after %d", size, done*int64(f.blockAlign)+int64(n%f.blockAlign))
			}
			return nil, wavErr(w.off, "reading samples: %v", err)
		}
	}
	return a, nil
}

// wavSample decodes one channel's sample s; ok is false for a NaN or
// infinite float (whose value is returned for the message).
func wavSample(f *wavFormat, s []byte, scale float32) (float32, bool) {
	le := binary.LittleEndian
	if f.tag == wavFloat {
		var v float64
		if f.bytes == 4 {
			v = float64(math.Float32frombits(le.Uint32(s)))
		} else {
			v = math.Float64frombits(le.Uint64(s))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return float32(v), false
		}
		return float32(max(-1, min(1, v))), true
	}
	switch f.bytes {
	case 1: // 8-bit WAV is unsigned, centred on 128
		return float32(int(s[0])-128) * scale, true
	case 2:
		return float32(int16(le.Uint16(s))) * scale, true
	case 3:
		v := int32(uint32(s[0])<<8|uint32(s[1])<<16|uint32(s[2])<<24) >> 8
		return float32(v) * scale, true
	default:
		return float32(int32(le.Uint32(s))) * scale, true
	}
}

// ReadWAV reads a WAV file (see DecodeWAV).
func ReadWAV(path string) (*Audio, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("media: reading WAV: %w", err)
	}
	defer f.Close()
	a, err := DecodeWAV(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// EncodeWAV writes a as a 16-bit PCM mono WAV: each sample, clipped to
// [-1, 1], becomes round(32768*v) limited to [-32768, 32767], so that
// DecodeWAV gives back every value that is already a multiple of 1/32768.
func EncodeWAV(w io.Writer, a *Audio) error {
	if a == nil {
		return errors.New("media: encoding WAV: no audio")
	}
	if a.Rate <= 0 || a.Rate > wavMaxRate {
		return fmt.Errorf("media: encoding WAV: sample rate %d Hz (want 1 to %d)", a.Rate, wavMaxRate)
	}
	if int64(len(a.Samples))*2 > math.MaxUint32-36 {
		return fmt.Errorf("media: encoding WAV: %d samples exceed the 4 GiB RIFF limit", len(a.Samples))
	}
	for i, v := range a.Samples {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("media: encoding WAV: sample %d is %v", i, v)
		}
	}
	data := uint32(2 * len(a.Samples))
	le := binary.LittleEndian
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	le.PutUint32(h[4:], 36+data)
	copy(h[8:], "WAVEfmt ")
	le.PutUint32(h[16:], 16)
	le.PutUint16(h[20:], wavPCM)
	le.PutUint16(h[22:], 1)
	le.PutUint32(h[24:], uint32(a.Rate))
	le.PutUint32(h[28:], uint32(a.Rate)*2)
	le.PutUint16(h[32:], 2)
	le.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	le.PutUint32(h[40:], data)
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := bw.Write(h); err != nil {
		return fmt.Errorf("media: encoding WAV: %w", err)
	}
	var s [2]byte
	for _, v := range a.Samples {
		q := math.Round(float64(v) * 32768)
		le.PutUint16(s[:], uint16(int16(max(-32768, min(32767, q)))))
		if _, err := bw.Write(s[:]); err != nil {
			return fmt.Errorf("media: encoding WAV: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("media: encoding WAV: %w", err)
	}
	return nil
}

// WriteWAV writes a to path as a 16-bit PCM mono WAV, atomically: a failure
// leaves any previous file intact.
func WriteWAV(path string, a *Audio) error {
	if err := atomicfile.Write(path, 0o644, func(w io.Writer) error { return EncodeWAV(w, a) }); err != nil {
		return fmt.Errorf("media: writing %s: %w", path, err)
	}
	return nil
}
