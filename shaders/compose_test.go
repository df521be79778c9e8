package shaders

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestCompose(t *testing.T) {
	fsys := fstest.MapFS{
		"k.wgsl":           {Data: []byte("// kernel\n//#import tile\nfn main() {}\n  //#import tile\nfn tail() {}\n")},
		"shared/tile.wgsl": {Data: []byte("// tile\n//#import math\nfn mma() {}\n")},
		"shared/math.wgsl": {Data: []byte("fn sq() {}\n")},
		"cyc.wgsl":         {Data: []byte("//#import a\n")},
		"shared/a.wgsl":    {Data: []byte("//#import b\n")},
		"shared/b.wgsl":    {Data: []byte("//#import a\n")},
		"missing.wgsl":     {Data: []byte("x\n//#import nothere\n")},
		"bad.wgsl":         {Data: []byte("//#import ../up\n")},
	}
	src, m, err := ComposeFS(fsys, "k.wgsl")
	if err != nil {
		t.Fatal(err)
	}
	want := "// kernel\n//#import tile\n// tile\n//#import math\nfn sq() {}\nfn mma() {}\nfn main() {}\n  //#import tile\nfn tail() {}\n"
	if src != want {
		t.Fatalf("composed:\n%s\nwant:\n%s", src, want)
	}
	for _, c := range []struct {
		line     int
		file     string
		fileLine int
		via      string
	}{
		{1, "k.wgsl", 1, ""}, {2, "k.wgsl", 2, ""}, {3, "shared/tile.wgsl", 1, "k.wgsl"}, {4, "shared/tile.wgsl", 2, "k.wgsl"},
		{5, "shared/math.wgsl", 1, "shared/tile.wgsl"}, {6, "shared/tile.wgsl", 3, "k.wgsl"},
		{7, "k.wgsl", 3, ""}, {8, "k.wgsl", 4, ""}, {9, "k.wgsl", 5, ""}, {42, "", 42, ""},
	} {
		f, l, v := m.Locate(c.line)
		if f != c.file || l != c.fileLine || v != c.via {
			t.Errorf("line %d: %s:%d via %q, want %s:%d via %q", c.line, f, l, v, c.file, c.fileLine, c.via)
		}
	}
	for file, msg := range map[string]string{
		"cyc.wgsl":     "cycle",
		"missing.wgsl": "missing.wgsl imports \"nothere\"",
		"bad.wgsl":     "bad.wgsl:1",
		"none.wgsl":    "no WGSL file",
	} {
		if _, _, err := ComposeFS(fsys, file); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want an error with %q", file, err, msg)
		}
	}
}

// TestGemmTileShared: both GEMM files import the one tile and declare none
// of its parts themselves.
func TestGemmTileShared(t *testing.T) {
	tile, err := files.ReadFile("shared/gemm_tile.wgsl")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"gemm.wgsl", "gemm_grouped.wgsl"} {
		raw, _ := files.ReadFile(f)
		if !strings.Contains(string(raw), ImportDirective+"gemm_tile") {
			t.Errorf("%s does not import gemm_tile", f)
		}
		for _, decl := range []string{"fn mma(", "var<workgroup> As4", "fn row_of(", "override BM:", "var<private> ra0"} {
			if strings.Contains(string(raw), decl) {
				t.Errorf("%s declares %q itself", f, decl)
			}
			if !strings.Contains(string(tile), decl) {
				t.Errorf("the tile lacks %q", decl)
			}
		}
		src, m, err := Compose(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(src, "fn mma("); n != 1 {
			t.Errorf("%s composed has mma %d times", f, n)
		}
		i := strings.Index(src, "fn mma(")
		line := strings.Count(src[:i], "\n") + 1
		if file, _, via := m.Locate(line); file != "shared/gemm_tile.wgsl" || via != f {
			t.Errorf("%s: mma located in %s via %s", f, file, via)
		}
	}
}
