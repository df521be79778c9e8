package nn

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"mom/gpu"
	"mom/shaders"
)

// ScanArgs are the tensors of a selective scan (see shaders/scan.wgsl for the
// math and the derivation of the backward).
type ScanArgs struct {
	Batch, Len int
	// U, Delta, Z, Y: (Batch, Len, ED); ALog (ED, N); Bm, Cm (Batch, Len, N);
	// D (ED). Z may be nil (no gate). Delta already holds dt_proj's bias; the
	// kernel applies softplus.
	U, Delta, ALog, Bm, Cm, D, Z, Y *Tensor
	// Backward; all nil for forward-only (DZ nil when Z is). DU, DDelta, DB,
	// DC, DZ are written (=); DALog, DD accumulate (+=).
	DY, DU, DDelta, DALog, DB, DC, DD, DZ *Tensor
	// Final (Batch, ED, N), optional: RecordForward writes the state after
	// the last step into it, where the recurrent step mode continues.
	Final *Tensor
	// Scratch, optional, holds the backward's workspace (its partial sums
	// and input copies, ScanWorkspace floats), shared with other ops that
	// run one after another (a model's layers); nil gives the op its own.
	// Only the chunk-start states stay with the op between its forward and
	// backward.
	Scratch *Scratch
}

// ScanOptions tune the scan's kernels; zero fields pick defaults for the
// device. Tests use them to reach every code path.
type ScanOptions struct {
	// Threads per channel along time (P), a power of two.
	Threads int
	// Rows: channels per workgroup (G). The backward's partial sums of dB
	// and dC take Batch*ceil(ED/Rows)*N*Len floats each.
	Rows int
	// Items: steps per thread per chunk, 1 to 16. A chunk is Threads*Items
	// steps.
	Items int
	// StateThreads (QT): threads per channel and time slot, each taking
	// every QT-th quad of the N states; it must divide ceil(N/4). More of
	// them put QT times as many threads to work, each with a QT times
	// shorter sequential walk, at the price of computing the per-step
	// scalars QT times and summing over states in workgroup memory (on the
	// H200 at B=8, which fills the GPU without them, that price was higher
	// than the gain: 2 took 1.3-1.5x as long, 4 about 2x).
	StateThreads int
	// Backward, when any of its fields is set, is the backward kernel's
	// layout (its zero fields default as above); otherwise the backward
	// uses the forward's (Threads, Rows, Items, StateThreads), or, when
	// those are all zero too, the device's default backward layout. Both
	// kernels must have the same chunk (Threads*Items): the backward walks
	// the forward's chunks.
	Backward ScanLayout
	// Subgroups: 0 uses subgroup shuffles for the row scans where the device
	// has them, 1 requires them, -1 uses workgroup memory only.
	Subgroups int
	// Prefetch: 0 loads each chunk's inputs one chunk ahead except through
	// wgpu-native with its shader checks on (gpu.Options.Robust), where on
	// the H200 that was slower (6.92 against 6.37 ms; without the checks
	// 2.69 against 2.78 ms); 1 always, -1 never.
	Prefetch int
}

// ScanLayout is one scan kernel's cover of the work: the fields of
// ScanOptions of the same names.
type ScanLayout struct {
	Threads, Rows, Items, StateThreads int
}

func (l ScanLayout) zero() bool { return l == ScanLayout{} }

func (l ScanLayout) String() string {
	return fmt.Sprintf("%d threads x %d rows x %d items x %d state threads", l.Threads, l.Rows, l.Items, l.StateThreads)
}

// Default layouts, as measured on an H200 through Dawn (B=8 L=2048 ED=1536
// N=16, a sweep of 27 layouts with B and C staged in workgroup memory per
// chunk): the forward fastest at 4x16x4, the backward at 8x8x2 (both
// chunks of 16 steps), where 4x8x4 for both took 1.77 + 3.57 ms (1.24 +
// 3.32 before the staging); with the backward's later changes and the
// prefetch they take 0.56 + 2.21 ms. On a CPU rasteriser (lavapipe) 4x8x4
// for both.
var (
	scanGPUForward  = ScanLayout{Threads: 4, Rows: 16, Items: 4, StateThreads: 1}
	scanGPUBackward = ScanLayout{Threads: 8, Rows: 8, Items: 2, StateThreads: 1}
	scanCPU         = ScanLayout{Threads: 4, Rows: 8, Items: 4, StateThreads: 1}
)

// EnvScan names the environment variable that forces the layouts of the
// selective scans built while it is set, for tuning: "P,G,ITEMS[,QT]" for
// both kernels, or "P,G,ITEMS[,QT];P,G,ITEMS[,QT]" for the forward and the
// backward (Threads, Rows, Items and StateThreads of ScanOptions). Layouts
// given in code take precedence.
const EnvScan = "MOM_SCAN"

// EnvScanPrefetch names the environment variable that forces the scans'
// prefetch (ScanOptions.Prefetch) where the code leaves it 0, for tuning:
// "on" or "off".
const EnvScanPrefetch = "MOM_SCAN_PREFETCH"

// envScan fills o's layouts from EnvScan where o leaves them zero, and its
// prefetch from EnvScanPrefetch.
func envScan(o ScanOptions) (ScanOptions, error) {
	if e := os.Getenv(EnvScanPrefetch); e != "" && o.Prefetch == 0 {
		switch e {
		case "on":
			o.Prefetch = 1
		case "off":
			o.Prefetch = -1
		default:
			return o, fmt.Errorf("nn: %s=%q: want on or off", EnvScanPrefetch, e)
		}
	}
	e := os.Getenv(EnvScan)
	if e == "" {
		return o, nil
	}
	parts := strings.Split(e, ";")
	if len(parts) > 2 {
		return o, fmt.Errorf("nn: %s=%q: want P,G,ITEMS[,QT][;P,G,ITEMS[,QT]]", EnvScan, e)
	}
	var ls []ScanLayout
	for _, part := range parts {
		f := strings.Split(part, ",")
		if len(f) != 3 && len(f) != 4 {
			return o, fmt.Errorf("nn: %s=%q: want P,G,ITEMS[,QT][;P,G,ITEMS[,QT]]", EnvScan, e)
		}
		var v [4]int
		for i, x := range f {
			n, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil || n <= 0 {
				return o, fmt.Errorf("nn: %s=%q: %q is not a positive number; want P,G,ITEMS[,QT][;P,G,ITEMS[,QT]]", EnvScan, e, x)
			}
			v[i] = n
		}
		ls = append(ls, ScanLayout{Threads: v[0], Rows: v[1], Items: v[2], StateThreads: v[3]})
	}
	fwd := ScanLayout{o.Threads, o.Rows, o.Items, o.StateThreads}
	if fwd.zero() {
		o.Threads, o.Rows, o.Items, o.StateThreads = ls[0].Threads, ls[0].Rows, ls[0].Items, ls[0].StateThreads
		if len(ls) == 2 && o.Backward.zero() {
			o.Backward = ls[1]
		}
	}
	return o, nil
}

// SelectiveScan is the fused selective scan: softplus(delta), the
// recurrence h = exp(dt*A)*h + dt*B*u, y = (C.h + D*u)*silu(z), and its
// backward. It keeps the state at the start of every chunk (Batch, ED,
// nChunks, N) in its workspace between RecordForward and RecordBackward;
// the backward recomputes everything else. The state after the last step
// (Batch, ED, N) is kept too, and copied to ScanArgs.Final when given.
type SelectiveScan struct {
	a               ScanArgs
	ed, n           int
	f, b            scanShape // the forward's and the backward's layouts
	chunks, blocks  int       // chunks of the sequence; the backward's channel blocks
	subgroups       bool
	prefetch        bool    // load each chunk's inputs one chunk ahead
	st              *Tensor // the chunk-start and final states (kept from forward to backward)
	ws              *Tensor // the backward's workspace, see shaders/scan.wgsl (shared or own)
	stBytes         int64
	dummyZ, dummyDZ *Tensor
	fwd, bwd, red   *gpu.BindGroup
	gx, gy, rx, ry  int   // the forward's and the reduction's grids
	bgx, bgy        int   // the backward's grid
	offAL, offD     int64 // workspace byte offsets of the input copies
	offB, offC      int64
	offHF           int64 // workspace byte offset of the final states
	backward        bool
	owned           []*Tensor
	groups          []*gpu.BindGroup
}

// NewSelectiveScan builds the scan with default options; it allocates the
// chunk-boundary state tensor and the backward's scratch.
func NewSelectiveScan(d *gpu.Device, a ScanArgs) (*SelectiveScan, error) {
	return NewSelectiveScanWith(d, a, ScanOptions{})
}

// NewSelectiveScanWith builds the scan with explicit options.
func NewSelectiveScanWith(d *gpu.Device, a ScanArgs, o ScanOptions) (*SelectiveScan, error) {
	s := &SelectiveScan{a: a}
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := s.layout(d, o); err != nil {
		return nil, err
	}
	if err := s.build(d); err != nil {
		s.Release()
		return nil, err
	}
	return s, nil
}

func (s *SelectiveScan) check() error {
	a := s.a
	const op = "SelectiveScan"
	if a.Batch <= 0 || a.Len <= 0 {
		return fmt.Errorf("nn: %s: batch %d and length %d must be positive", op, a.Batch, a.Len)
	}
	if a.U == nil || len(a.U.Shape) != 3 {
		return fmt.Errorf("nn: %s: U must be (Batch, Len, ED), got %v", op, scanShapeOf(a.U))
	}
	if a.ALog == nil || len(a.ALog.Shape) != 2 {
		return fmt.Errorf("nn: %s: ALog must be (ED, N), got %v", op, scanShapeOf(a.ALog))
	}
	ed, n := a.U.Shape[2], a.ALog.Shape[1]
	s.ed, s.n = ed, n
	b, l := a.Batch, a.Len
	for _, c := range []struct {
		t     *Tensor
		shape []int
	}{
		{a.U, []int{b, l, ed}}, {a.Delta, []int{b, l, ed}}, {a.ALog, []int{ed, n}},
		{a.Bm, []int{b, l, n}}, {a.Cm, []int{b, l, n}}, {a.D, []int{ed}}, {a.Y, []int{b, l, ed}},
	} {
		if err := CheckShape(op, c.t, c.shape...); err != nil {
			return err
		}
	}
	if a.Z != nil {
		if err := CheckShape(op, a.Z, b, l, ed); err != nil {
			return err
		}
	}
	if a.Final != nil {
		if err := CheckShape(op, a.Final, b, ed, n); err != nil {
			return err
		}
	}
	bw := []*Tensor{a.DY, a.DU, a.DDelta, a.DALog, a.DB, a.DC, a.DD}
	set := 0
	for _, t := range bw {
		if t != nil {
			set++
		}
	}
	if set == 0 && a.DZ == nil {
		return s.alias(op)
	}
	if set != len(bw) {
		return fmt.Errorf("nn: %s: the backward needs all of DY, DU, DDelta, DALog, DB, DC, DD (or none of them for forward only)", op)
	}
	if (a.Z == nil) != (a.DZ == nil) {
		return fmt.Errorf("nn: %s: DZ must be given exactly when Z is", op)
	}
	s.backward = true
	for _, c := range []struct {
		t     *Tensor
		shape []int
	}{
		{a.DY, []int{b, l, ed}}, {a.DU, []int{b, l, ed}}, {a.DDelta, []int{b, l, ed}}, {a.DALog, []int{ed, n}},
		{a.DB, []int{b, l, n}}, {a.DC, []int{b, l, n}}, {a.DD, []int{ed}},
	} {
		if err := CheckShape(op, c.t, c.shape...); err != nil {
			return err
		}
	}
	if a.DZ != nil {
		if err := CheckShape(op, a.DZ, b, l, ed); err != nil {
			return err
		}
	}
	return s.alias(op)
}

// alias rejects an output that is also an input or another output.
func (s *SelectiveScan) alias(op string) error {
	a := s.a
	ins := []*Tensor{a.U, a.Delta, a.ALog, a.Bm, a.Cm, a.D, a.Z, a.DY}
	outs := []*Tensor{a.Y, a.DU, a.DDelta, a.DALog, a.DB, a.DC, a.DD, a.DZ, a.Final}
	return scanCheckAliases(op, ins, outs)
}

func scanShapeOf(t *Tensor) any {
	if t == nil {
		return "nil"
	}
	return t.Shape
}

// scanCheckAliases returns an error when an output shares its buffer with an
// input or another output (WebGPU forbids binding one buffer both read-only
// and writable in one dispatch, and the results would be wrong anyway).
func scanCheckAliases(op string, ins, outs []*Tensor) error {
	for i, o := range outs {
		if o == nil {
			continue
		}
		for _, in := range ins {
			if in != nil && in.Buf == o.Buf {
				return fmt.Errorf("nn: %s: output %s is also the input %s", op, o.Name, in.Name)
			}
		}
		for _, o2 := range outs[i+1:] {
			if o2 != nil && o2.Buf == o.Buf {
				return fmt.Errorf("nn: %s: outputs %s and %s share a buffer", op, o.Name, o2.Name)
			}
		}
	}
	return nil
}

// scanShape is a resolved ScanLayout: P threads per row, G rows, ITEMS
// steps per thread, QT state threads.
type scanShape struct{ p, g, items, qt int }

func (h scanShape) wg() int    { return h.p * h.g * h.qt }
func (h scanShape) chunk() int { return h.p * h.items }

// scanShared is the workgroup memory of scan_fwd or scan_bwd in bytes, as
// declared in scan.wgsl: row-scan maps 64 per thread; carry and A 48 per
// (row, state quad); the chunk's B and C 32 per step and quad of the padded
// row; the parts of y (forward, 4) or of (pre, d dt, du) (backward, 16) per
// step of a chunk per row and state thread past the first; and in the
// backward dA 16 per (row, quad), the dB/dC reduction 32 per step of a chunk
// per row and state thread, dA partials 16 per thread.
func scanShared(h scanShape, n int, backward bool) int {
	nq := (n + 3) / 4
	sq := nq + 1 - nq%2
	parts := (h.qt-1)*h.g*h.chunk() + 1
	b := 64*h.wg() + 48*h.g*nq + 32*h.chunk()*sq
	if !backward {
		return b + 4*parts
	}
	return b + 16*parts + 16*h.g*nq + 32*h.qt*h.g*h.chunk() + 16*h.wg()
}

// fit resolves a requested layout (zero fields from def) on d: an explicit
// one must fit as it is; a default one shrinks (rows, then items, then state
// threads, then threads) until it fits.
func (s *SelectiveScan) fit(d *gpu.Device, req, def ScanLayout, backward bool) (scanShape, error) {
	const op = "SelectiveScan"
	explicit := !req.zero()
	if req.Threads == 0 {
		req.Threads = def.Threads
	}
	if req.Rows == 0 {
		req.Rows = def.Rows
	}
	if req.Items == 0 {
		req.Items = def.Items
	}
	nq := (s.n + 3) / 4
	if req.StateThreads == 0 {
		req.StateThreads = def.StateThreads
		if nq%req.StateThreads != 0 {
			req.StateThreads = 1
		}
	}
	h := scanShape{req.Threads, req.Rows, req.Items, req.StateThreads}
	if h.qt < 1 || nq%h.qt != 0 {
		return h, fmt.Errorf("nn: %s: StateThreads %d must divide the %d quads of N=%d states", op, h.qt, nq, s.n)
	}
	if h.p&(h.p-1) != 0 || h.p < 1 {
		return h, fmt.Errorf("nn: %s: Threads %d is not a power of two", op, h.p)
	}
	if h.items < 1 || h.items > shaders.ScanMaxItems || h.g < 1 {
		return h, fmt.Errorf("nn: %s: Items must be in 1..%d and Rows positive, got %d, %d", op, shaders.ScanMaxItems, h.items, h.g)
	}
	lim := d.Limits
	for {
		wg := h.wg()
		fits := wg <= int(lim.MaxComputeInvocationsPerWorkgroup) && wg <= int(lim.MaxComputeWorkgroupSizeX) &&
			scanShared(h, s.n, backward) <= int(lim.MaxComputeWorkgroupStorageSize)
		if fits {
			return h, nil
		}
		if explicit {
			return h, fmt.Errorf("nn: %s: %d threads x %d rows x %d items x %d state threads with N=%d needs %d bytes of workgroup memory and %d invocations; the device allows %d and %d",
				op, h.p, h.g, h.items, h.qt, s.n, scanShared(h, s.n, backward), wg, lim.MaxComputeWorkgroupStorageSize, lim.MaxComputeInvocationsPerWorkgroup)
		}
		switch {
		case h.g > 1:
			h.g /= 2
		case h.items > 1:
			h.items /= 2
		case h.qt > 1:
			h.qt = 1
		case h.p > 1:
			h.p /= 2
		default:
			return h, fmt.Errorf("nn: %s: N=%d does not fit the device's %d bytes of workgroup memory", op, s.n, lim.MaxComputeWorkgroupStorageSize)
		}
	}
}

func (s *SelectiveScan) layout(d *gpu.Device, o ScanOptions) error {
	const op = "SelectiveScan"
	o, err := envScan(o)
	if err != nil {
		return err
	}
	fwdReq := ScanLayout{o.Threads, o.Rows, o.Items, o.StateThreads}
	bwdReq := o.Backward
	defF, defB := scanGPUForward, scanGPUBackward
	if d.Info.Type == "CPU" {
		defF, defB = scanCPU, scanCPU
	}
	if !fwdReq.zero() {
		// An explicit forward layout fills the backward's zero fields and
		// is the backward's when that is not given at all.
		defF, defB = scanCPU, scanCPU
		if bwdReq.zero() {
			bwdReq = fwdReq
		}
	}
	if s.f, err = s.fit(d, fwdReq, defF, false); err != nil {
		return err
	}
	if s.b, err = s.fit(d, bwdReq, defB, true); err != nil {
		return err
	}
	if s.f.chunk() != s.b.chunk() {
		if !fwdReq.zero() || !bwdReq.zero() {
			return fmt.Errorf("nn: %s: the forward's chunk (%d threads x %d items) and the backward's (%d x %d) differ; the backward walks the forward's chunks",
				op, s.f.p, s.f.items, s.b.p, s.b.items)
		}
		// Defaults shrunk apart on a small device: one layout for both.
		s.f = s.b
	}
	s.chunks = CeilDiv(s.a.Len, s.f.chunk())
	s.blocks = CeilDiv(s.ed, s.b.g)
	switch o.Prefetch {
	case 0:
		s.prefetch = d.Lib.Runtime != gpu.WGPU || !d.ShaderChecks()
	case 1:
		s.prefetch = true
	}
	has := d.Has(gpu.FeatureSubgroups)
	switch o.Subgroups {
	case 0:
		s.subgroups = has
	case 1:
		if !has {
			return fmt.Errorf("nn: %s: subgroups requested but %s does not offer them", op, d)
		}
		s.subgroups = true
	}
	if n := int(d.Limits.MaxStorageBuffersPerShaderStage); n < 9 {
		return fmt.Errorf("nn: %s: needs 9 storage buffers per shader stage, %s allows %d", op, d, n)
	}
	return nil
}

// Chunk is the number of steps per chunk (Threads*Items).
func (s *SelectiveScan) Chunk() int { return s.f.chunk() }

// Prefetches reports whether the kernels load each chunk's inputs one
// chunk ahead (ScanOptions.Prefetch as resolved).
func (s *SelectiveScan) Prefetches() bool { return s.prefetch }

// Layouts returns the forward's and the backward's layouts.
func (s *SelectiveScan) Layouts() (fwd, bwd ScanLayout) {
	return ScanLayout{s.f.p, s.f.g, s.f.items, s.f.qt}, ScanLayout{s.b.p, s.b.g, s.b.items, s.b.qt}
}

// Subgroups reports whether the row scans use subgroup shuffles.
func (s *SelectiveScan) Subgroups() bool { return s.subgroups }

// scanLayout is the workspace layout in floats (see shaders/scan.wgsl): the
// chunk-start states hs at 0, the final states hf, the dB and dC partials,
// dA, dD, then copies of A_log, D, B, C; size in all.
type scanLayout struct {
	offHF, offDB, offDC, offDA, offDD, offAL, offD, offB, offC, size int
}

func (s *SelectiveScan) workspace() scanLayout {
	b, l, ed, n := s.a.Batch, s.a.Len, s.ed, s.n
	var w scanLayout
	hs := b * ed * s.chunks * n
	part := b * s.blocks * n * l
	w.offHF = hs
	w.offDB = w.offHF + b*ed*n
	w.offDC = w.offDB + part
	w.offDA = w.offDC + part
	w.offDD = w.offDA + b*ed*n
	w.offAL = w.offDD + b*ed
	w.offD = w.offAL + ed*n
	w.offB = w.offD + ed
	w.offC = w.offB + b*l*n
	w.size = w.offC + b*l*n
	return w
}

// ScanWorkspace is the size in floats of the backward workspace of a scan
// with default options on d (what a shared ScanArgs.Scratch must hold); 0
// when such a scan does not fit the device.
func ScanWorkspace(d *gpu.Device, batch, length, ed, n int) int {
	s := &SelectiveScan{a: ScanArgs{Batch: batch, Len: length}, ed: ed, n: n, backward: true}
	if s.layout(d, ScanOptions{}) != nil {
		return 0
	}
	return s.workspace().size
}

func (s *SelectiveScan) build(d *gpu.Device) error {
	a := s.a
	const op = "SelectiveScan"
	b, l, ed, n := a.Batch, a.Len, s.ed, s.n
	w := s.workspace()
	offHF, offDB, offDC, offDA, offDD := w.offHF, w.offDB, w.offDC, w.offDA, w.offDD
	offAL, offD, offB, offC, size := w.offAL, w.offD, w.offB, w.offC, w.size
	if !s.backward {
		size = offDB
	}
	if int64(4*size) > int64(d.Limits.MaxStorageBufferBindingSize) {
		return fmt.Errorf("nn: %s: the workspace needs %d bytes, more than the device's largest storage binding (%d); use more Rows or a smaller batch",
			op, 4*size, d.Limits.MaxStorageBufferBindingSize)
	}
	for _, t := range []*Tensor{a.U, a.Y, a.DY} {
		if t != nil && t.Bytes() > int64(d.Limits.MaxStorageBufferBindingSize) {
			return fmt.Errorf("nn: %s: %s (%d bytes) exceeds the device's largest storage binding (%d)", op, t.Name, t.Bytes(), d.Limits.MaxStorageBufferBindingSize)
		}
	}
	var err error
	// The states live with the op; the backward copies them to the front of
	// its workspace (the layout of scan.wgsl), which may be shared.
	if s.st, err = NewTensorIn(d, gpu.MemActivations, "scan.states", offDB); err != nil {
		return err
	}
	s.owned = append(s.owned, s.st)
	s.stBytes = int64(4 * offDB)
	if s.backward {
		if a.Scratch != nil {
			s.ws, err = a.Scratch.tensor(size)
		} else {
			s.ws, err = s.tensor(d, "scan.workspace", size)
		}
		if err != nil {
			return err
		}
	}
	if s.dummyZ, err = s.tensor(d, "scan.nogate", 1); err != nil {
		return err
	}
	z := a.Z
	if z == nil {
		z = s.dummyZ
	}
	consts := func(h scanShape) gpu.Constants {
		return gpu.Constants{
			"N": float64(n), "P": float64(h.p), "G": float64(h.g), "ITEMS": float64(h.items), "QT": float64(h.qt),
			"GATE": scanBool(a.Z != nil), "PREFETCH": scanBool(s.prefetch), "WG": float64(h.wg()), "CHUNK": float64(h.chunk()),
		}
	}
	dims, err := uniformDims(d, "scan.dims", shaders.ScanDimsWords,
		b, l, ed, s.chunks, s.blocks, offDB, offDC, offDA, offDD, offAL, offD, offB, offC, (n+3)/4, offHF)
	if err != nil {
		return fmt.Errorf("nn: %s: %w", op, err)
	}
	s.owned = append(s.owned, dims)
	bind := func(k shaders.Kernel, h scanShape, ts ...*Tensor) (*gpu.BindGroup, error) {
		stage := CeilDiv(h.chunk()*((n+3)/4), h.wg())
		name := fmt.Sprintf("scan.wgsl(items=%d,stage=%d)", h.items, stage)
		if s.subgroups {
			name = fmt.Sprintf("scan.wgsl(items=%d,stage=%d,subgroups)", h.items, stage)
		}
		src, err := shaders.ScanSource(s.subgroups, h.items, stage)
		if err != nil {
			return nil, err
		}
		g, err := bindVariant(d, k, name, src, consts(h), ts...)
		if err != nil {
			return nil, fmt.Errorf("nn: %s (B=%d L=%d ED=%d N=%d): %w", op, b, l, ed, n, err)
		}
		s.groups = append(s.groups, g)
		return g, nil
	}
	if s.fwd, err = bind(shaders.ScanForward, s.f, a.U, a.Delta, z, a.ALog, a.Bm, a.Cm, a.D, a.Y, s.st, dims); err != nil {
		return err
	}
	s.gx, s.gy = Grid(d, b*CeilDiv(ed, s.f.g))
	s.offHF = int64(4 * offHF)
	if !s.backward {
		return nil
	}
	s.offAL, s.offD, s.offB, s.offC = int64(4*offAL), int64(4*offD), int64(4*offB), int64(4*offC)
	dz := a.DZ
	if dz == nil {
		if s.dummyDZ, err = s.tensor(d, "scan.nogate.grad", 1); err != nil {
			return err
		}
		dz = s.dummyDZ
	}
	if s.bwd, err = bind(shaders.ScanBackward, s.b, a.U, a.Delta, z, a.DY, a.DU, a.DDelta, dz, s.ws, dims); err != nil {
		return err
	}
	if s.red, err = bind(shaders.ScanBackwardReduce, s.b, s.ws, a.DB, a.DC, a.DALog, a.DD, dims); err != nil {
		return err
	}
	s.rx, s.ry = Grid(d, CeilDiv(b*l*n+ed*n+ed, 256))
	s.bgx, s.bgy = Grid(d, b*s.blocks)
	return nil
}

func (s *SelectiveScan) tensor(d *gpu.Device, name string, n int) (*Tensor, error) {
	t, err := NewTensor(d, name, n)
	if err != nil {
		return nil, err
	}
	s.owned = append(s.owned, t)
	return t, nil
}

func scanBool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// uniformDims makes a uniform buffer of words 32-bit words holding vals
// (the sizes a kernel reads at run time), wrapped as a Tensor so that it
// binds like one.
func uniformDims(d *gpu.Device, name string, words int, vals ...int) (*Tensor, error) {
	if len(vals) > words {
		return nil, fmt.Errorf("%s: %d values for %d words", name, len(vals), words)
	}
	buf, err := d.NewBuffer(name, int64(4*words), gpu.UsageUniform|gpu.UsageCopyDst)
	if err != nil {
		return nil, err
	}
	t := &Tensor{Name: name, Shape: []int{words}, Buf: buf}
	w := make([]uint32, words)
	for i, v := range vals {
		if v < 0 || v > math.MaxUint32 {
			t.Release()
			return nil, fmt.Errorf("%s: value %d does not fit 32 bits", name, v)
		}
		w[i] = uint32(v)
	}
	if err := t.UploadU32(w); err != nil {
		t.Release()
		return nil, err
	}
	return t, nil
}

// bindVariant is Bind for a kernel whose WGSL text is given (a variant of its
// file) and cached under name.
func bindVariant(d *gpu.Device, k shaders.Kernel, name, src string, c gpu.Constants, ts ...*Tensor) (*gpu.BindGroup, error) {
	if len(ts) != len(k.Bindings) {
		return nil, fmt.Errorf("kernel %s has %d bindings, got %d tensors", k.Name(), len(k.Bindings), len(ts))
	}
	for _, nm := range k.Constants {
		if _, ok := c[nm]; !ok {
			return nil, fmt.Errorf("kernel %s needs override constant %s", k.Name(), nm)
		}
	}
	sh, err := d.Shader(name, src)
	if err != nil {
		return nil, err
	}
	p, err := d.Pipeline(sh, k.Entry, c)
	if err != nil {
		return nil, err
	}
	bs := make([]gpu.Binding, len(ts))
	for i, t := range ts {
		if t == nil {
			return nil, fmt.Errorf("kernel %s: binding %d (%s) is nil", k.Name(), i, k.Bindings[i])
		}
		bs[i] = gpu.Buf(t.Buf)
	}
	return d.BindGroup(p, bs...)
}

// RecordForward records y = scan(u, delta, A, B, C, D, z) and stores the
// chunk-start states for RecordBackward, and the final state in Final when
// it was given.
func (s *SelectiveScan) RecordForward(r *gpu.Recorder) {
	r.Dispatch(s.fwd, s.gx, s.gy, 1)
	if f := s.a.Final; f != nil {
		r.Copy(s.st.Buf, s.offHF, f.Buf, 0, f.Bytes())
	}
}

// RecordBackward records the gradients. It reads the chunk-start states
// that the last RecordForward (on the same inputs) stored, so record it
// after that forward. On an op built without backward tensors it records an
// invalid dispatch, which makes the recorder's Submit fail.
func (s *SelectiveScan) RecordBackward(r *gpu.Recorder) {
	if !s.backward {
		r.Dispatch(nil, 1, 1, 1)
		return
	}
	a := s.a
	r.Copy(s.st.Buf, 0, s.ws.Buf, 0, s.stBytes)
	r.Copy(a.ALog.Buf, 0, s.ws.Buf, s.offAL, a.ALog.Bytes())
	r.Copy(a.D.Buf, 0, s.ws.Buf, s.offD, a.D.Bytes())
	r.Copy(a.Bm.Buf, 0, s.ws.Buf, s.offB, a.Bm.Bytes())
	r.Copy(a.Cm.Buf, 0, s.ws.Buf, s.offC, a.Cm.Bytes())
	r.Dispatch(s.bwd, s.bgx, s.bgy, 1)
	r.Dispatch(s.red, s.rx, s.ry, 1)
}

// Release frees the workspace and the bind groups.
func (s *SelectiveScan) Release() {
	for _, g := range s.groups {
		g.Release()
	}
	s.groups = nil
	for _, t := range s.owned {
		t.Release()
	}
	s.owned = nil
}
