package shaders

import (
	"fmt"
	"strings"
)

// scanConstants are the override constants of the scan kernels: the state
// size N and the layout (P threads per row along time, G rows of one channel
// each per workgroup, ITEMS steps per thread per chunk, QT state threads per
// (channel, time slot), WG = G*P*QT, CHUNK = P*ITEMS), the gate switch and
// the prefetch switch.
// The sizes that vary between calls come in the uniform Dims (see
// scan.wgsl), bound last.
var scanConstants = []string{"N", "P", "G", "ITEMS", "QT", "GATE", "PREFETCH", "WG", "CHUNK"}

// ScanForward is the selective scan's forward: one workgroup of G*P*QT
// threads per (batch, block of G channels), chunks of P*ITEMS steps, over
// B*NBLK workgroups (split over y when above the x limit).
var ScanForward = Kernel{
	File:  "scan.wgsl",
	Entry: "scan_fwd",
	Bindings: []string{
		"u: (B, L, ED) read", "delta: (B, L, ED) read", "z: (B, L, ED) or (1) read",
		"a_log: (ED, N) read", "bm: (B, L, N) read", "cm: (B, L, N) read", "dskip: (ED) read",
		"y: (B, L, ED) read_write", "ws: workspace, hs (B, ED, NCH, N) at 0, hf (B, ED, N) at off_hf, read_write", "dims: Dims uniform",
	},
	Workgroup: [3]int{0, 1, 1}, // WG = G*P*QT
	Constants: scanConstants,
}

// ScanBackward is the selective scan's backward, same grid as ScanForward.
// It reads the inputs A_log, D, B and C from copies in the workspace and
// leaves dB and dC as per-block partials and dA_log, dD in the workspace,
// for ScanBackwardReduce.
var ScanBackward = Kernel{
	File:  "scan.wgsl",
	Entry: "scan_bwd",
	Bindings: []string{
		"u: (B, L, ED) read", "delta: (B, L, ED) read", "z: (B, L, ED) or (1) read", "dy: (B, L, ED) read",
		"du: (B, L, ED) read_write", "ddelta: (B, L, ED) read_write", "dz: (B, L, ED) or (1) read_write",
		"ws: workspace read_write", "dims: Dims uniform",
	},
	Workgroup: [3]int{0, 1, 1},
	Constants: scanConstants,
}

// ScanBackwardReduce sums the dB, dC partials (written =) and adds dA_log
// and dD (+=): one thread per element of B*L*N + ED*N + ED, 256 per
// workgroup.
var ScanBackwardReduce = Kernel{
	File:  "scan.wgsl",
	Entry: "scan_bwd_reduce",
	Bindings: []string{
		"ws: workspace read", "db: (B, L, N) read_write", "dc: (B, L, N) read_write",
		"da_log: (ED, N) read_write", "dd: (ED) read_write", "dims: Dims uniform",
	},
	Workgroup: [3]int{256, 1, 1},
	Constants: scanConstants,
}

// ScanDimsWords is the size of the uniform Dims in 32-bit words, padded to
// 16 bytes.
const ScanDimsWords = 16

// ScanMaxItems is the most steps per thread per chunk (MAXI in scan.wgsl).
const ScanMaxItems = 16

// setConst replaces scan.wgsl's `const NAME: u32 = DEFu;` by value.
func setConst(src, name string, def, value int) (string, error) {
	decl := fmt.Sprintf("const %s: u32 = %du;", name, def)
	if !strings.Contains(src, decl) {
		return "", fmt.Errorf("shaders: scan.wgsl lacks %q", decl)
	}
	return strings.Replace(src, decl, fmt.Sprintf("const %s: u32 = %du;", name, value), 1), nil
}

// ScanSource returns the text of scan.wgsl specialised for items steps per
// thread (the per-thread arrays, MAXI, get exactly that length) and stage
// entries of B and C staged per thread and chunk (MAXS: ceil(CHUNK*NQ/WG)
// of the kernel's layout), for the workgroup-memory row scan (subgroups
// false) or for the subgroup one: with `enable subgroups;` in place of the
// first line, the `//| ` lines of every `//#if subgroups` block uncommented
// and its `//#else` part dropped.
func ScanSource(subgroups bool, items, stage int) (string, error) {
	src, err := Source("scan.wgsl")
	if err != nil {
		return "", err
	}
	if items < 1 || items > ScanMaxItems {
		return "", fmt.Errorf("shaders: scan.wgsl: %d items per thread, want 1..%d", items, ScanMaxItems)
	}
	if stage < 1 || stage > 1024 {
		return "", fmt.Errorf("shaders: scan.wgsl: %d staged entries per thread, want 1..1024", stage)
	}
	if src, err = setConst(src, "MAXI", 16, items); err != nil {
		return "", err
	}
	if src, err = setConst(src, "MAXS", 4, stage); err != nil {
		return "", err
	}
	if !subgroups {
		return src, nil
	}
	return variant(src, "subgroups", "scan.wgsl")
}

// variant applies the `//#if name` / `//#else` / `//#endif` convention: in
// an if-block, `//| ` lines lose their prefix; else-blocks are dropped.
func variant(src, name, file string) (string, error) {
	var b strings.Builder
	// The directive replaces the file's first line (a comment), so that line
	// numbers in compile errors stay those of the file; it stays alone on its
	// line, as gpu expects to find it.
	lines := strings.Split(src, "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "//") {
		return "", fmt.Errorf("shaders: %s must start with a comment line", file)
	}
	b.WriteString("enable " + name + ";\n")
	const (
		outside = iota
		inIf
		inElse
	)
	state := outside
	for n, line := range lines {
		if n == 0 {
			continue
		}
		trim := strings.TrimSpace(line)
		switch {
		case trim == "//#if "+name:
			if state != outside {
				return "", fmt.Errorf("shaders: %s:%d: nested //#if", file, n+1)
			}
			state = inIf
			b.WriteString("\n")
		case trim == "//#else":
			if state != inIf {
				return "", fmt.Errorf("shaders: %s:%d: //#else outside //#if", file, n+1)
			}
			state = inElse
			b.WriteString("\n")
		case trim == "//#endif":
			if state == outside {
				return "", fmt.Errorf("shaders: %s:%d: //#endif outside //#if", file, n+1)
			}
			state = outside
			b.WriteString("\n")
		case state == inIf:
			t := strings.TrimLeft(line, " \t")
			if !strings.HasPrefix(t, "//|") {
				return "", fmt.Errorf("shaders: %s:%d: a line of an //#if block must start with //|", file, n+1)
			}
			t = strings.TrimPrefix(t, "//|")
			t = strings.TrimPrefix(t, " ")
			b.WriteString(t + "\n")
		case state == inElse:
			b.WriteString("\n") // keep line numbers
		default:
			b.WriteString(line + "\n")
		}
	}
	if state != outside {
		return "", fmt.Errorf("shaders: %s: unterminated //#if", file)
	}
	return b.String(), nil
}
