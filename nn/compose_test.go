package nn

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"mom/gpu"
	"mom/gpu/gputest"
	"mom/shaders"
)

// TestComposedCompileErrorLine: a WGSL error in a shared piece is reported
// at the piece's file and line (naming the kernel that imported it), one
// in the kernel file after the import at the kernel's own line, on both
// runtimes.
func TestComposedCompileErrorLine(t *testing.T) {
	fsys := fstest.MapFS{
		"k.wgsl": {Data: []byte("// a kernel\n//#import piece\n" +
			"@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n" +
			"@compute @workgroup_size(1)\nfn main() {\n\to[0] = twice(1.0);\n}\n")},
		"late.wgsl": {Data: []byte("// a kernel\n//#import good\n" +
			"@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n" +
			"@compute @workgroup_size(1)\nfn main() {\n\to[0] = twice(1.0) + undefined_thing;\n}\n")},
		"shared/piece.wgsl": {Data: []byte("// a shared piece\n\nfn twice(x: f32) -> f32 {\n\treturn x * 2.0 + nonsense;\n}\n")},
		"shared/good.wgsl":  {Data: []byte("fn twice(x: f32) -> f32 {\n\treturn x * 2.0;\n}\n")},
	}
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, c := range []struct {
			kernel, file, via string
			line              int
			text              string
		}{
			{"k.wgsl", "shared/piece.wgsl", "k.wgsl", 4, "nonsense"},
			{"late.wgsl", "late.wgsl", "", 6, "undefined_thing"},
		} {
			src, lines, err := shaders.ComposeFS(fsys, c.kernel)
			if err != nil {
				t.Fatal(err)
			}
			_, err = compile(d, c.kernel, src, lines)
			var ce *gpu.CompileError
			if !errors.As(err, &ce) {
				t.Fatalf("%s: %v, want a compile error", c.kernel, err)
			}
			if ce.Shader != c.file || ce.Line != c.line || ce.Via != c.via || !strings.Contains(ce.Text, c.text) {
				t.Errorf("%s: error in %s line %d via %q (%q), want %s line %d via %q\n%v", c.kernel, ce.Shader, ce.Line, ce.Via, ce.Text, c.file, c.line, c.via, err)
			}
			if c.via != "" && !strings.Contains(err.Error(), "imported by "+c.via) {
				t.Errorf("%s: %q does not say which kernel imported the piece", c.kernel, err)
			}
		}
	})
}
