package torchpickle

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"mom/trainer/safetensors"
)

// Read reads the state dict that torch.save wrote to path.
func Read(path string) ([]safetensors.Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("torchpickle: %w", err)
	}
	ts, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("torchpickle: %s: %w", path, err)
	}
	return ts, nil
}

// storageTypes maps the storage classes torch.save names to safetensors
// dtypes.
var storageTypes = map[string]string{
	"FloatStorage":    "F32",
	"DoubleStorage":   "F64",
	"HalfStorage":     "F16",
	"BFloat16Storage": "BF16",
	"LongStorage":     "I64",
	"IntStorage":      "I32",
	"ShortStorage":    "I16",
	"CharStorage":     "I8",
	"ByteStorage":     "U8",
	"BoolStorage":     "BOOL",
}

// Decode reads a torch.save zip archive held in b.
func Decode(b []byte) ([]safetensors.Tensor, error) {
	if len(b) >= 2 && b[0] == 0x80 {
		return nil, errors.New("a raw pickle: the legacy (PyTorch < 1.6) torch.save format is not supported; load and re-save it with a current PyTorch")
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, fmt.Errorf("not a torch.save zip archive: %w", err)
	}
	records := map[string]*zip.File{}
	prefix := ""
	for _, f := range zr.File {
		if _, dup := records[f.Name]; dup {
			return nil, fmt.Errorf("archive holds %s twice", f.Name)
		}
		records[f.Name] = f
		dir, base, ok := strings.Cut(f.Name, "/")
		if ok && base == "data.pkl" {
			if prefix != "" {
				return nil, fmt.Errorf("archive holds two pickles (%sdata.pkl and %s)", prefix, f.Name)
			}
			prefix = dir + "/"
		}
	}
	if prefix == "" {
		return nil, errors.New("archive has no <name>/data.pkl: not a torch.save file")
	}
	if _, ok := records[prefix+"constants.pkl"]; ok {
		return nil, errors.New("a TorchScript archive, not a state dict saved by torch.save")
	}
	if f, ok := records[prefix+"byteorder"]; ok {
		bo, err := readRecord(f, int64(len(b)))
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(bo)); s != "little" {
			return nil, fmt.Errorf("byte order %q: only little-endian archives are supported", truncate(s, 16))
		}
	}
	pkl, err := readRecord(records[prefix+"data.pkl"], int64(len(b)))
	if err != nil {
		return nil, err
	}
	u := &unpickler{data: pkl, records: records, prefix: prefix, fileSize: int64(len(b)), storages: map[string]*storage{}}
	top, err := u.run()
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	d, ok := top.(*dict)
	if !ok {
		return nil, fmt.Errorf("data.pkl holds a %s, want a dict of tensors (a state dict)", typeName(top))
	}
	out := make([]safetensors.Tensor, 0, len(d.keys))
	for _, k := range d.keys {
		t, ok := d.vals[k].(*tensor)
		if !ok {
			return nil, fmt.Errorf("entry %q is a %s, not a tensor (only a flat state dict of tensors is read)", truncate(k, 80), typeName(d.vals[k]))
		}
		st, err := u.materialize(k, t)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// readRecord reads a whole archive record, refusing compressed records
// (torch.save stores them uncompressed) and sizes beyond the file.
func readRecord(f *zip.File, fileSize int64) ([]byte, error) {
	if f.Method != zip.Store {
		return nil, fmt.Errorf("record %s is compressed (method %d); torch.save stores records uncompressed", f.Name, f.Method)
	}
	if f.UncompressedSize64 > uint64(fileSize) || f.CompressedSize64 != f.UncompressedSize64 {
		return nil, fmt.Errorf("record %s claims %d bytes (stored %d) in a %d-byte file", f.Name, f.UncompressedSize64, f.CompressedSize64, fileSize)
	}
	r, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	defer r.Close()
	buf := make([]byte, f.UncompressedSize64)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("record %s: %w", f.Name, err)
	}
	return buf, nil
}

// Values of the pickle machine.
type (
	tuple []any
	list  struct{ items []any }
	dict  struct {
		keys []string
		vals map[string]any
	}
	global  struct{ module, name string }
	storage struct {
		dtype string // safetensors dtype
		key   string
		numel int
		data  []byte // loaded on first use
	}
	tensor struct {
		st            *storage
		offset        int
		shape, stride []int
	}
	markT struct{}
)

func typeName(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case string:
		return "string"
	case int64:
		return "int"
	case float64:
		return "float"
	case bool:
		return "bool"
	case tuple:
		return "tuple"
	case *list:
		return "list"
	case *dict:
		return "dict"
	case *global:
		return "global " + v.module + "." + v.name
	case *storage:
		return "storage"
	case *tensor:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// allowedGlobals are the only globals a state dict may name.
func allowedGlobal(module, name string) bool {
	switch module + "." + name {
	case "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter":
		return true
	}
	if module == "torch" {
		_, ok := storageTypes[name]
		return ok
	}
	return false
}

// unpickler is the pickle machine: a stack, a mark stack and a memo.
type unpickler struct {
	data     []byte
	pos      int
	stack    []any
	marks    []int
	memo     map[uint32]any
	records  map[string]*zip.File
	prefix   string
	fileSize int64
	storages map[string]*storage
}

func (u *unpickler) fail(op byte, format string, a ...any) error {
	return fmt.Errorf("opcode 0x%02x at byte %d: %s", op, u.pos, fmt.Sprintf(format, a...))
}

func (u *unpickler) read(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, fmt.Errorf("truncated pickle: %d bytes wanted at byte %d of %d", n, u.pos, len(u.data))
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) readLine() (string, error) {
	i := bytes.IndexByte(u.data[u.pos:], '\n')
	if i < 0 {
		return "", fmt.Errorf("truncated pickle: no line end after byte %d", u.pos)
	}
	s := string(u.data[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	n := len(u.stack)
	if n == 0 || (len(u.marks) > 0 && u.marks[len(u.marks)-1] == n) {
		return nil, errors.New("stack underflow")
	}
	v := u.stack[n-1]
	u.stack = u.stack[:n-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	n := len(u.stack)
	if n == 0 || (len(u.marks) > 0 && u.marks[len(u.marks)-1] == n) {
		return nil, errors.New("stack underflow")
	}
	return u.stack[n-1], nil
}

// popMark returns the items above the last mark and removes them and the mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("no mark on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

// maxMemo bounds the memo's keys (torch.save numbers them from 0).
const maxMemo = 1 << 24

func (u *unpickler) run() (any, error) {
	u.memo = map[uint32]any{}
	for {
		if u.pos >= len(u.data) {
			return nil, errors.New("truncated pickle: no STOP")
		}
		op := u.data[u.pos]
		u.pos++
		if err := u.step(op); err != nil {
			if err == errStop {
				if len(u.stack) != 1 || len(u.marks) != 0 {
					return nil, fmt.Errorf("STOP with %d values and %d marks on the stack, want one value", len(u.stack), len(u.marks))
				}
				return u.stack[0], nil
			}
			return nil, err
		}
	}
}

var errStop = errors.New("stop")

func (u *unpickler) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		b, err := u.read(1)
		if err != nil {
			return err
		}
		if b[0] < 2 || b[0] > 5 {
			return u.fail(op, "pickle protocol %d, want 2 to 5", b[0])
		}
	case 0x95: // FRAME
		if _, err := u.read(8); err != nil {
			return err
		}
	case '.': // STOP
		return errStop
	case '(': // MARK
		u.marks = append(u.marks, len(u.stack))
	case '}': // EMPTY_DICT
		u.push(&dict{vals: map[string]any{}})
	case ')': // EMPTY_TUPLE
		u.push(tuple{})
	case ']': // EMPTY_LIST
		u.push(&list{})
	case 't': // TUPLE
		items, err := u.popMark()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		u.push(tuple(items))
	case 0x85, 0x86, 0x87: // TUPLE1, TUPLE2, TUPLE3
		n := int(op - 0x84)
		t := make(tuple, n)
		for i := n - 1; i >= 0; i-- {
			v, err := u.pop()
			if err != nil {
				return u.fail(op, "%v", err)
			}
			t[i] = v
		}
		u.push(t)
	case 'a': // APPEND
		v, err := u.pop()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		l, err := u.topList(op)
		if err != nil {
			return err
		}
		l.items = append(l.items, v)
	case 'e': // APPENDS
		items, err := u.popMark()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		l, err := u.topList(op)
		if err != nil {
			return err
		}
		l.items = append(l.items, items...)
	case 's': // SETITEM
		v, err := u.pop()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		k, err := u.pop()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		return u.setItems(op, []any{k, v})
	case 'u': // SETITEMS
		items, err := u.popMark()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		return u.setItems(op, items)
	case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
		var n uint64
		switch op {
		case 'X':
			b, err := u.read(4)
			if err != nil {
				return err
			}
			n = uint64(binary.LittleEndian.Uint32(b))
		case 0x8c:
			b, err := u.read(1)
			if err != nil {
				return err
			}
			n = uint64(b[0])
		default:
			b, err := u.read(8)
			if err != nil {
				return err
			}
			n = binary.LittleEndian.Uint64(b)
		}
		if n > uint64(len(u.data)) {
			return u.fail(op, "string of %d bytes in a %d-byte pickle", n, len(u.data))
		}
		b, err := u.read(int(n))
		if err != nil {
			return err
		}
		u.push(string(b))
	case 'J': // BININT
		b, err := u.read(4)
		if err != nil {
			return err
		}
		u.push(int64(int32(binary.LittleEndian.Uint32(b))))
	case 'K': // BININT1
		b, err := u.read(1)
		if err != nil {
			return err
		}
		u.push(int64(b[0]))
	case 'M': // BININT2
		b, err := u.read(2)
		if err != nil {
			return err
		}
		u.push(int64(binary.LittleEndian.Uint16(b)))
	case 0x8a: // LONG1
		b, err := u.read(1)
		if err != nil {
			return err
		}
		n := int(b[0])
		if n > 8 {
			return u.fail(op, "an integer of %d bytes is too large", n)
		}
		v, err := u.read(n)
		if err != nil {
			return err
		}
		var x uint64
		for i := n - 1; i >= 0; i-- {
			x = x<<8 | uint64(v[i])
		}
		if n > 0 && n < 8 && v[n-1]&0x80 != 0 { // sign-extend
			x |= ^uint64(0) << (8 * n)
		}
		u.push(int64(x))
	case 'G': // BINFLOAT
		b, err := u.read(8)
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'N': // NONE
		u.push(nil)
	case 0x88: // NEWTRUE
		u.push(true)
	case 0x89: // NEWFALSE
		u.push(false)
	case 'c': // GLOBAL
		mod, err := u.readLine()
		if err != nil {
			return err
		}
		name, err := u.readLine()
		if err != nil {
			return err
		}
		return u.pushGlobal(op, mod, name)
	case 0x93: // STACK_GLOBAL
		n, err := u.pop()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		m, err := u.pop()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		ms, ok1 := m.(string)
		ns, ok2 := n.(string)
		if !ok1 || !ok2 {
			return u.fail(op, "module and name must be strings")
		}
		return u.pushGlobal(op, ms, ns)
	case 'Q': // BINPERSID
		pid, err := u.pop()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		s, err := u.persistent(pid)
		if err != nil {
			return u.fail(op, "%v", err)
		}
		u.push(s)
	case 'R': // REDUCE
		args, err := u.pop()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		fn, err := u.pop()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		v, err := u.reduce(fn, args)
		if err != nil {
			return u.fail(op, "%v", err)
		}
		u.push(v)
	case 'b': // BUILD
		state, err := u.pop()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		obj, err := u.top()
		if err != nil {
			return u.fail(op, "%v", err)
		}
		// A state dict (an OrderedDict) carries its _metadata attribute
		// as BUILD state; it holds module versions, not tensors.
		if _, ok := obj.(*dict); !ok {
			return u.fail(op, "BUILD on a %s; only a dict's attributes are accepted", typeName(obj))
		}
		if _, ok := state.(*dict); !ok && state != nil {
			return u.fail(op, "BUILD state is a %s, want a dict", typeName(state))
		}
	case 'q', 'r': // BINPUT, LONG_BINPUT
		var idx uint32
		if op == 'q' {
			b, err := u.read(1)
			if err != nil {
				return err
			}
			idx = uint32(b[0])
		} else {
			b, err := u.read(4)
			if err != nil {
				return err
			}
			idx = binary.LittleEndian.Uint32(b)
		}
		return u.memoize(op, idx)
	case 0x94: // MEMOIZE
		return u.memoize(op, uint32(len(u.memo)))
	case 'h', 'j': // BINGET, LONG_BINGET
		var idx uint32
		if op == 'h' {
			b, err := u.read(1)
			if err != nil {
				return err
			}
			idx = uint32(b[0])
		} else {
			b, err := u.read(4)
			if err != nil {
				return err
			}
			idx = binary.LittleEndian.Uint32(b)
		}
		v, ok := u.memo[idx]
		if !ok {
			return u.fail(op, "memo %d is not set", idx)
		}
		u.push(v)
	default:
		return u.fail(op, "opcode not accepted in a state dict")
	}
	return nil
}

func (u *unpickler) topList(op byte) (*list, error) {
	v, err := u.top()
	if err != nil {
		return nil, u.fail(op, "%v", err)
	}
	l, ok := v.(*list)
	if !ok {
		return nil, u.fail(op, "appending to a %s", typeName(v))
	}
	return l, nil
}

func (u *unpickler) setItems(op byte, items []any) error {
	if len(items)%2 != 0 {
		return u.fail(op, "odd number of items (%d) for a dict", len(items))
	}
	v, err := u.top()
	if err != nil {
		return u.fail(op, "%v", err)
	}
	d, ok := v.(*dict)
	if !ok {
		return u.fail(op, "setting items of a %s", typeName(v))
	}
	for i := 0; i < len(items); i += 2 {
		k, ok := items[i].(string)
		if !ok {
			return u.fail(op, "dict key is a %s; a state dict has string keys", typeName(items[i]))
		}
		if _, dup := d.vals[k]; dup {
			return u.fail(op, "key %q set twice", truncate(k, 80))
		}
		d.keys = append(d.keys, k)
		d.vals[k] = items[i+1]
	}
	return nil
}

func (u *unpickler) memoize(op byte, idx uint32) error {
	v, err := u.top()
	if err != nil {
		return u.fail(op, "%v", err)
	}
	if idx >= maxMemo {
		return u.fail(op, "memo index %d is too large", idx)
	}
	u.memo[idx] = v
	return nil
}

func (u *unpickler) pushGlobal(op byte, module, name string) error {
	if !allowedGlobal(module, name) {
		return u.fail(op, "refusing global %s.%s: a state dict holds only tensors", truncate(module, 64), truncate(name, 64))
	}
	u.push(&global{module, name})
	return nil
}

// persistent resolves a persistent id: ('storage', storage class, key,
// location, numel).
func (u *unpickler) persistent(pid any) (*storage, error) {
	t, ok := pid.(tuple)
	if !ok || len(t) != 5 {
		return nil, fmt.Errorf("persistent id is a %s of %d, want a 5-tuple ('storage', class, key, location, numel)", typeName(pid), len(t))
	}
	kind, _ := t[0].(string)
	cls, ok1 := t[1].(*global)
	key, ok2 := t[2].(string)
	_, ok3 := t[3].(string)
	numel, ok4 := t[4].(int64)
	if kind != "storage" || !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, errors.New("persistent id is not ('storage', class, key, location, numel)")
	}
	dt, ok := storageTypes[cls.name]
	if cls.module != "torch" || !ok {
		return nil, fmt.Errorf("unknown storage class %s.%s", cls.module, cls.name)
	}
	size, _ := safetensors.DTypeSize(dt)
	if numel < 0 || numel > u.fileSize/int64(size) {
		return nil, fmt.Errorf("storage %q claims %d elements of %s in a %d-byte file", truncate(key, 32), numel, dt, u.fileSize)
	}
	if s, ok := u.storages[key]; ok {
		if s.dtype != dt || s.numel != int(numel) {
			return nil, fmt.Errorf("storage %q is named twice with different types or sizes", truncate(key, 32))
		}
		return s, nil
	}
	s := &storage{dtype: dt, key: key, numel: int(numel)}
	u.storages[key] = s
	return s, nil
}

func (u *unpickler) reduce(fn, args any) (any, error) {
	g, ok := fn.(*global)
	if !ok {
		return nil, fmt.Errorf("calling a %s", typeName(fn))
	}
	a, ok := args.(tuple)
	if !ok {
		return nil, fmt.Errorf("%s.%s called with a %s, want a tuple", g.module, g.name, typeName(args))
	}
	switch g.module + "." + g.name {
	case "collections.OrderedDict":
		if len(a) != 0 {
			return nil, errors.New("OrderedDict called with arguments")
		}
		return &dict{vals: map[string]any{}}, nil
	case "torch._utils._rebuild_tensor_v2":
		// (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
		if len(a) != 6 && len(a) != 7 {
			return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments, want 6 or 7", len(a))
		}
		st, ok := a[0].(*storage)
		if !ok {
			return nil, fmt.Errorf("_rebuild_tensor_v2: first argument is a %s, want a storage", typeName(a[0]))
		}
		off, ok := a[1].(int64)
		if !ok {
			return nil, errors.New("_rebuild_tensor_v2: storage offset is not an int")
		}
		shape, err := ints(a[2], "size")
		if err != nil {
			return nil, err
		}
		stride, err := ints(a[3], "stride")
		if err != nil {
			return nil, err
		}
		if len(shape) != len(stride) {
			return nil, fmt.Errorf("_rebuild_tensor_v2: size %v and stride %v differ in rank", shape, stride)
		}
		if h, ok := a[5].(*dict); a[5] != nil && (!ok || len(h.keys) > 0) {
			return nil, errors.New("_rebuild_tensor_v2: a tensor with backward hooks")
		}
		if off < 0 || off > int64(st.numel) {
			return nil, fmt.Errorf("_rebuild_tensor_v2: storage offset %d outside a storage of %d", off, st.numel)
		}
		t := &tensor{st: st, offset: int(off), shape: shape, stride: stride}
		if err := t.check(); err != nil {
			return nil, err
		}
		return t, nil
	case "torch._utils._rebuild_parameter":
		if len(a) != 3 {
			return nil, fmt.Errorf("_rebuild_parameter with %d arguments, want 3", len(a))
		}
		t, ok := a[0].(*tensor)
		if !ok {
			return nil, fmt.Errorf("_rebuild_parameter of a %s", typeName(a[0]))
		}
		return t, nil
	}
	return nil, fmt.Errorf("%s.%s cannot be called", g.module, g.name)
}

// ints reads a tuple of non-negative ints.
func ints(v any, what string) ([]int, error) {
	t, ok := v.(tuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %s is a %s, want a tuple", what, typeName(v))
	}
	out := make([]int, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 || n > math.MaxInt32 {
			return nil, fmt.Errorf("_rebuild_tensor_v2: %s %v holds a value that is not a non-negative int", what, t)
		}
		out[i] = int(n)
	}
	return out, nil
}

// check verifies that every element of the view lies inside its storage
// and that the view has no more elements than the storage (so gathering
// allocates at most the storage's size).
func (t *tensor) check() error {
	n := 1
	last := t.offset
	for i, s := range t.shape {
		if s == 0 {
			n = 0
			break
		}
		if n > t.st.numel/s+1 {
			return fmt.Errorf("tensor of shape %v is larger than its storage of %d", t.shape, t.st.numel)
		}
		n *= s
		last += (s - 1) * t.stride[i]
		if last > t.st.numel+1 {
			break
		}
	}
	if n == 0 {
		return nil
	}
	if n > t.st.numel || last >= t.st.numel {
		return fmt.Errorf("tensor of shape %v, strides %v, offset %d reaches beyond its storage of %d elements", t.shape, t.stride, t.offset, t.st.numel)
	}
	return nil
}

// load reads a storage's record.
func (u *unpickler) load(s *storage) error {
	if s.data != nil {
		return nil
	}
	name := u.prefix + "data/" + s.key
	f, ok := u.records[name]
	if !ok {
		return fmt.Errorf("storage %q has no record %s", truncate(s.key, 32), name)
	}
	size, _ := safetensors.DTypeSize(s.dtype)
	if want := uint64(s.numel) * uint64(size); f.UncompressedSize64 != want {
		return fmt.Errorf("record %s holds %d bytes, its storage of %d %s needs %d", name, f.UncompressedSize64, s.numel, s.dtype, want)
	}
	b, err := readRecord(f, u.fileSize)
	if err != nil {
		return err
	}
	s.data = b
	return nil
}

// materialize gathers a view into a contiguous tensor.
func (u *unpickler) materialize(name string, t *tensor) (safetensors.Tensor, error) {
	if err := u.load(t.st); err != nil {
		return safetensors.Tensor{}, fmt.Errorf("tensor %s: %w", truncate(name, 80), err)
	}
	size, _ := safetensors.DTypeSize(t.st.dtype)
	n := 1
	for _, s := range t.shape {
		n *= s
	}
	out := safetensors.Tensor{Name: name, DType: t.st.dtype, Shape: append([]int{}, t.shape...), Data: make([]byte, n*size)}
	if n == 0 {
		return out, nil
	}
	if contiguous(t.shape, t.stride) {
		copy(out.Data, t.st.data[t.offset*size:(t.offset+n)*size])
		return out, nil
	}
	idx := make([]int, len(t.shape))
	for i := 0; i < n; i++ {
		src := t.offset
		for d, k := range idx {
			src += k * t.stride[d]
		}
		copy(out.Data[i*size:(i+1)*size], t.st.data[src*size:(src+1)*size])
		for d := len(idx) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < t.shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out, nil
}

// contiguous reports whether strides are row-major for shape (dimensions
// of size 1 may have any stride).
func contiguous(shape, stride []int) bool {
	want := 1
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] != 1 && stride[i] != want {
			return false
		}
		want *= shape[i]
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
