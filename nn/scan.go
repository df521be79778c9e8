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
	// Threads per channel along time (P), a power of two; default 4.
	Threads int
	// Rows: channels per workgroup (G); default 8. The backward's partial
	// sums of dB and dC take Batch*ceil(ED/Rows)*N*Len floats each.
	Rows int
	// Items: steps per thread per chunk, 1 to 16; default 4. A chunk is
	// Threads*Items steps (default 16).
	//
	// The defaults were the fastest forward+backward of a sweep on an H200
	// (Dawn, B=8 L=2048 ED=1536 N=16): 4x8x4 took 1.24 + 3.45 ms, 8x8x8
	// 1.48 + 4.72, 4x8x8 1.15 + 4.20, 16x8x4 2.46 + 4.35, 32x4x2 4.17 +
	// 7.67: the row scan costs more than it saves beyond a few threads, as
	// long as (batch x channels) fill the GPU.
	Items int
	// StateThreads (QT): threads per channel and time slot, each taking
	// every QT-th quad of the N states; it must divide ceil(N/4). Default 1.
	// More of them put QT times as many threads to work, each with a QT
	// times shorter sequential walk, at the price of computing the per-step
	// scalars QT times and summing over states in workgroup memory.
	StateThreads int
	// Subgroups: 0 uses subgroup shuffles for the row scans where the device
	// has them, 1 requires them, -1 uses workgroup memory only.
	Subgroups int
}

// EnvScan names the environment variable that forces the layout of the
// selective scans built while it is set, for tuning: "P,G,ITEMS[,QT]"
// (Threads, Rows, Items and StateThreads of ScanOptions). Options given
// explicitly in code take precedence.
const EnvScan = "MOM_SCAN"

// envScan fills the zero fields of o from EnvScan.
func envScan(o ScanOptions) (ScanOptions, error) {
	e := os.Getenv(EnvScan)
	if e == "" {
		return o, nil
	}
	f := strings.Split(e, ",")
	if len(f) != 3 && len(f) != 4 {
		return o, fmt.Errorf("nn: %s=%q: want P,G,ITEMS[,QT]", EnvScan, e)
	}
	var v [4]int
	for i, x := range f {
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil || n <= 0 {
			return o, fmt.Errorf("nn: %s=%q: %q is not a positive number; want P,G,ITEMS[,QT]", EnvScan, e, x)
		}
		v[i] = n
	}
	for i, p := range []*int{&o.Threads, &o.Rows, &o.Items, &o.StateThreads} {
		if *p == 0 {
			*p = v[i]
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
	p, g, items, qt int
	chunks, blocks  int
	subgroups       bool
	st              *Tensor // the chunk-start and final states (kept from forward to backward)
	ws              *Tensor // the backward's workspace, see shaders/scan.wgsl (shared or own)
	stBytes         int64
	dummyZ, dummyDZ *Tensor
	fwd, bwd, red   *gpu.BindGroup
	gx, gy, rx, ry  int
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

// scanShared is the workgroup memory of scan_bwd (the larger kernel) in
// bytes: row-scan maps 64 per thread, carry, A and dA 64 per (row, state
// quad), the dB/dC reduction 32 per step of a chunk per row, dA partials 16
// per thread.
// per thread, and with state threads the parts of (pre, d dt, du) 16 per
// step of a chunk per row and state thread past the first.
func scanShared(p, g, items, qt, n int) int {
	wg := p * g * qt
	nq := (n + 3) / 4
	return 80*wg + 64*g*nq + 32*wg*items + 16*((qt-1)*g*p*items+1)
}

func (s *SelectiveScan) layout(d *gpu.Device, o ScanOptions) error {
	const op = "SelectiveScan"
	o, err := envScan(o)
	if err != nil {
		return err
	}
	p, g, items, qt := o.Threads, o.Rows, o.Items, o.StateThreads
	nq := (s.n + 3) / 4
	if p == 0 {
		p = 4
	}
	if qt == 0 {
		qt = 1
	} else if qt < 1 || nq%qt != 0 {
		return fmt.Errorf("nn: %s: StateThreads %d must divide the %d quads of N=%d states", op, qt, nq, s.n)
	}
	if g == 0 {
		g = 8
	}
	if items == 0 {
		items = 4
	}
	if p&(p-1) != 0 || p < 1 {
		return fmt.Errorf("nn: %s: Threads %d is not a power of two", op, p)
	}
	if items < 1 || items > shaders.ScanMaxItems || g < 1 {
		return fmt.Errorf("nn: %s: Items must be in 1..%d and Rows positive, got %d, %d", op, shaders.ScanMaxItems, items, g)
	}
	lim := d.Limits
	explicit := o.Rows != 0 || o.Items != 0 || o.StateThreads != 0
	for {
		wg := p * g * qt
		fits := wg <= int(lim.MaxComputeInvocationsPerWorkgroup) && wg <= int(lim.MaxComputeWorkgroupSizeX) &&
			scanShared(p, g, items, qt, s.n) <= int(lim.MaxComputeWorkgroupStorageSize)
		if fits {
			break
		}
		if explicit {
			return fmt.Errorf("nn: %s: %d threads x %d rows x %d items x %d state threads with N=%d needs %d bytes of workgroup memory and %d invocations; the device allows %d and %d",
				op, p, g, items, qt, s.n, scanShared(p, g, items, qt, s.n), wg, lim.MaxComputeWorkgroupStorageSize, lim.MaxComputeInvocationsPerWorkgroup)
		}
		switch {
		case g > 1:
			g /= 2
		case items > 1:
			items /= 2
		case qt > 1:
			qt = 1
		case p > 1:
			p /= 2
		default:
			return fmt.Errorf("nn: %s: N=%d does not fit the device's %d bytes of workgroup memory", op, s.n, lim.MaxComputeWorkgroupStorageSize)
		}
	}
	s.p, s.g, s.items, s.qt = p, g, items, qt
	s.chunks = CeilDiv(s.a.Len, p*items)
	s.blocks = CeilDiv(s.ed, g)
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
	if n := int(lim.MaxStorageBuffersPerShaderStage); n < 9 {
		return fmt.Errorf("nn: %s: needs 9 storage buffers per shader stage, %s allows %d", op, d, n)
	}
	return nil
}

// Chunk is the number of steps per chunk (Threads*Items).
func (s *SelectiveScan) Chunk() int { return s.p * s.items }

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
	c := gpu.Constants{
		"N": float64(n), "P": float64(s.p), "G": float64(s.g), "ITEMS": float64(s.items), "QT": float64(s.qt),
		"GATE": scanBool(a.Z != nil), "WG": float64(s.p * s.g * s.qt), "CHUNK": float64(s.p * s.items),
	}
	dims, err := uniformDims(d, "scan.dims", shaders.ScanDimsWords,
		b, l, ed, s.chunks, s.blocks, offDB, offDC, offDA, offDD, offAL, offD, offB, offC, (n+3)/4, offHF)
	if err != nil {
		return fmt.Errorf("nn: %s: %w", op, err)
	}
	s.owned = append(s.owned, dims)
	name := fmt.Sprintf("scan.wgsl(items=%d)", s.items)
	src, err := shaders.ScanSource(s.subgroups, s.items)
	if err != nil {
		return err
	}
	if s.subgroups {
		name = fmt.Sprintf("scan.wgsl(items=%d,subgroups)", s.items)
	}
	bind := func(k shaders.Kernel, c gpu.Constants, ts ...*Tensor) (*gpu.BindGroup, error) {
		g, err := bindVariant(d, k, name, src, c, ts...)
		if err != nil {
			return nil, fmt.Errorf("nn: %s (B=%d L=%d ED=%d N=%d): %w", op, b, l, ed, n, err)
		}
		s.groups = append(s.groups, g)
		return g, nil
	}
	if s.fwd, err = bind(shaders.ScanForward, c, a.U, a.Delta, z, a.ALog, a.Bm, a.Cm, a.D, a.Y, s.st, dims); err != nil {
		return err
	}
	s.gx, s.gy = Grid(d, b*s.blocks)
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
	if s.bwd, err = bind(shaders.ScanBackward, c, a.U, a.Delta, z, a.DY, a.DU, a.DDelta, dz, s.ws, dims); err != nil {
		return err
	}
	if s.red, err = bind(shaders.ScanBackwardReduce, c, s.ws, a.DB, a.DC, a.DALog, a.DD, dims); err != nil {
		return err
	}
	s.rx, s.ry = Grid(d, CeilDiv(b*l*n+ed*n+ed, 256))
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
	r.Dispatch(s.bwd, s.gx, s.gy, 1)
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
