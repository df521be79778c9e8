// Package mpitest starts programs under Open MPI's mpirun for tests: N
// processes on this machine, more than it has cores if need be, unbound
// (several test jobs share the cores), allowed to run as root (CI runs as
// root).
package mpitest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// Available reports why mpirun cannot be used here (nil: it can).
func Available() error {
	if _, err := exec.LookPath("mpirun"); err != nil {
		return fmt.Errorf("mpirun not found (install openmpi-bin): %w", err)
	}
	return nil
}

// Args are mpirun's arguments for np processes on this host.
func Args(np int) []string {
	a := []string{"-np", strconv.Itoa(np), "--oversubscribe", "--bind-to", "none"}
	if os.Geteuid() == 0 {
		a = append(a, "--allow-run-as-root")
	}
	return a
}

// Command is `mpirun Args(np) prog args...`.
func Command(np int, prog string, args ...string) *exec.Cmd {
	return exec.Command("mpirun", append(append(Args(np), prog), args...)...)
}
