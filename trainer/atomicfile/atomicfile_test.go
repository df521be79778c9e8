package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mom/trainer/internal/fstest"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.txt")
	if err := WriteFile(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "two" {
		t.Fatalf("read %q, %v; want two", b, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	fstest.AssertOnlyFiles(t, dir, "f.txt")
}

func TestWriteAtomicFillFails(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.txt")
	if err := WriteFile(p, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		// Write more than the buffer holds so that part of it reaches the
		// temporary file before the failure.
		if _, err := w.Write([]byte(strings.Repeat("x", 3<<20))); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if !strings.Contains(err.Error(), p) {
		t.Errorf("error %q does not name the file", err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "precious" {
		t.Fatalf("old file damaged: %q, %v", b, err)
	}
	fstest.AssertOnlyFiles(t, dir, "f.txt")
}

func TestWriteAtomicFillPanics(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.txt")
	if err := WriteFile(p, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		Write(p, 0o644, func(w io.Writer) error {
			w.Write([]byte("partial"))
			panic("fill panicked")
		})
	}()
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "precious" {
		t.Fatalf("old file damaged: %q, %v", b, err)
	}
	fstest.AssertOnlyFiles(t, dir, "f.txt")
}

func TestWriteAtomicMissingFolder(t *testing.T) {
	err := WriteFile(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), "no/such/f") {
		t.Fatalf("err = %v, want an error naming the path", err)
	}
}
