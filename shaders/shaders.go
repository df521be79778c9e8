// Package shaders holds mom's WGSL compute shaders (one file per op, embedded
// with go:embed) and their Go-side descriptors: the bindings in order with
// their shapes, the workgroup size and the override constants each entry
// point needs. It holds no model logic; package nn compiles and binds these.
//
// A piece shared by several kernels lives once in shared/NAME.wgsl and is
// pulled in by a `//#import NAME` line (Compose); the composition's LineMap
// takes a compile error's line back to the file it came from. The GEMM
// tile of gemm.wgsl and gemm_grouped.wgsl is shared/gemm_tile.wgsl.
package shaders

import (
	"embed"
	"sort"
	"strings"
)

//go:embed *.wgsl shared/*.wgsl
var files embed.FS

// Kernel describes one entry point of one WGSL file.
type Kernel struct {
	File      string   // e.g. "gemm.wgsl"
	Entry     string   // entry point, e.g. "gemm_nt"
	Bindings  []string // group 0 bindings 0, 1, ... as "name: (shape) access"
	Workgroup [3]int   // @workgroup_size, as declared or as set by constants
	Constants []string // override constants the caller must set
	// Half lists the bindings that hold float16 in the file's "f16" variant
	// (ComposeVariant): a kernel reads them as float16 and works in float32.
	Half []int
}

// Source returns the WGSL text of file with its imports expanded
// (Compose); Compose also gives the map of its lines to the files.
func Source(file string) (string, error) {
	src, _, err := Compose(file)
	return src, err
}

// Files lists the embedded WGSL files.
func Files() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".wgsl") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// Name is "file:entry".
func (k Kernel) Name() string { return k.File + ":" + k.Entry }
