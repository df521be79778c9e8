package shaders

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// WGSL has no modules: a piece that several kernels share (the GEMM tile)
// lives once in shared/NAME.wgsl, and a kernel file pulls it in with a line
//
//	//#import NAME
//
// which Compose replaces by the piece's text (itself composed the same way;
// each piece enters a composition once, later imports of it are blank
// lines). The LineMap of a composition maps a line of the text the compiler
// sees back to the file and line it came from, so that compile errors name
// the right file.

// ImportDirective starts a line that imports a shared piece.
const ImportDirective = "//#import "

// LineMap maps the lines of a composed source to the files they came from.
type LineMap struct {
	spans []lineSpan
}

// lineSpan: lines [at, at+n) of the composition are lines [from, from+n)
// of file, which was imported by via ("" for the kernel file itself).
type lineSpan struct {
	at, n, from int
	file, via   string
}

// Locate returns the file and line (1-based) that line of the composition
// came from, and the file that imported it ("" for the kernel file). A line
// outside the map comes back as it is, with file "".
func (m LineMap) Locate(line int) (file string, fileLine int, via string) {
	i := sort.Search(len(m.spans), func(i int) bool { return m.spans[i].at+m.spans[i].n > line })
	if i == len(m.spans) || m.spans[i].at > line {
		return "", line, ""
	}
	s := m.spans[i]
	return s.file, s.from + line - s.at, s.via
}

// Compose returns the text of the embedded kernel file with its imports
// expanded, and the map of its lines.
func Compose(file string) (string, LineMap, error) { return ComposeFS(files, file) }

// ComposeVariant is Compose followed by the file's variant called name
// ("" for none): `enable NAME;` in place of the first line, the `//| `
// lines of each `//#if NAME` block uncommented and its `//#else` part
// dropped, line numbers kept.
func ComposeVariant(file, name string) (string, LineMap, error) {
	src, m, err := Compose(file)
	if err != nil || name == "" {
		return src, m, err
	}
	src, err = variant(src, name, file)
	return src, m, err
}

// ComposeFS is Compose over any file system (tests use their own pieces).
func ComposeFS(fsys fs.FS, file string) (string, LineMap, error) {
	c := &composer{fsys: fsys, done: map[string]bool{}}
	if err := c.add(file, "", nil); err != nil {
		return "", LineMap{}, err
	}
	return c.out.String(), LineMap{spans: c.spans}, nil
}

type composer struct {
	fsys  fs.FS
	out   strings.Builder
	line  int // lines written so far
	spans []lineSpan
	done  map[string]bool
}

func (c *composer) emit(text, file, via string, from int) {
	c.out.WriteString(text)
	c.out.WriteByte('\n')
	c.line++
	if k := len(c.spans) - 1; k >= 0 {
		s := &c.spans[k]
		if s.file == file && s.via == via && s.at+s.n == c.line && s.from+s.n == from {
			s.n++
			return
		}
	}
	c.spans = append(c.spans, lineSpan{at: c.line, n: 1, from: from, file: file, via: via})
}

// add writes file (imported by via) with its imports expanded; stack holds
// the files being composed, for the error of a cycle.
func (c *composer) add(file, via string, stack []string) error {
	b, err := fs.ReadFile(c.fsys, file)
	if err != nil {
		if via == "" {
			return fmt.Errorf("shaders: no WGSL file %q", file)
		}
		return fmt.Errorf("shaders: %s imports %q: no such shared piece (%s)", via, strings.TrimSuffix(path.Base(file), ".wgsl"), file)
	}
	c.done[file] = true
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	for i, l := range lines {
		t := strings.TrimSpace(l)
		if !strings.HasPrefix(t, ImportDirective) {
			c.emit(l, file, via, i+1)
			continue
		}
		name := strings.TrimSpace(strings.TrimPrefix(t, ImportDirective))
		if name == "" || strings.ContainsAny(name, "/\\. \t") {
			return fmt.Errorf("shaders: %s:%d: %q: want %sNAME, a piece shared/NAME.wgsl", file, i+1, t, ImportDirective)
		}
		piece := "shared/" + name + ".wgsl"
		for _, f := range stack {
			if f == piece {
				return fmt.Errorf("shaders: %s:%d: importing %s makes a cycle (%s)", file, i+1, name, strings.Join(append(stack, file, piece), " -> "))
			}
		}
		// The directive's own line stays (as a comment) so that the
		// kernel's later lines keep their numbers relative to it.
		c.emit(l, file, via, i+1)
		if c.done[piece] {
			continue
		}
		if err := c.add(piece, file, append(stack, file)); err != nil {
			return err
		}
	}
	return nil
}
