package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"mom/gpu"
)

func init() {
	register(command{"devices", "list the WebGPU adapters of a runtime, with limits and features", cmdDevices})
	register(command{"check", "run a small WGSL compute check on a device", cmdCheck})
}

func cmdDevices(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devices", "devices [--runtime dawn|wgpu] [--json]", stderr)
	rtName := fs.String("runtime", "dawn", "WebGPU implementation: dawn or wgpu")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	rt, err := gpu.ParseRuntime(*rtName)
	if err != nil {
		return usagef("%v", err)
	}
	lib, err := gpu.Load(rt)
	if err != nil {
		return err
	}
	ads, err := lib.Adapters()
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Runtime  gpu.Runtime       `json:"runtime"`
			Library  string            `json:"library"`
			Adapters []gpu.AdapterInfo `json:"adapters"`
		}{lib.Runtime, lib.Path, ads})
	}
	fmt.Fprintf(stdout, "runtime %s (%s): %d adapter(s)\n", lib.Runtime, lib.Path, len(ads))
	for _, a := range ads {
		fmt.Fprintf(stdout, "\n[%d] %s\n", a.Index, a.Name)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  vendor\t%s (0x%04x), device 0x%04x\n", a.Vendor, a.VendorID, a.DeviceID)
		fmt.Fprintf(tw, "  backend\t%s\n", a.Backend)
		fmt.Fprintf(tw, "  type\t%s\n", a.Type)
		fmt.Fprintf(tw, "  driver\t%s\n", a.Driver)
		if a.Architecture != "" {
			fmt.Fprintf(tw, "  architecture\t%s\n", a.Architecture)
		}
		if a.SubgroupMax > 0 {
			fmt.Fprintf(tw, "  subgroup size\t%d..%d\n", a.SubgroupMin, a.SubgroupMax)
		}
		l := a.Limits
		fmt.Fprintf(tw, "  max buffer\t%s\n", bytesStr(l.MaxBufferSize))
		fmt.Fprintf(tw, "  max storage binding\t%s\n", bytesStr(l.MaxStorageBufferBindingSize))
		fmt.Fprintf(tw, "  workgroup storage\t%s\n", bytesStr(uint64(l.MaxComputeWorkgroupStorageSize)))
		fmt.Fprintf(tw, "  invocations/workgroup\t%d (x %d, y %d, z %d)\n", l.MaxComputeInvocationsPerWorkgroup,
			l.MaxComputeWorkgroupSizeX, l.MaxComputeWorkgroupSizeY, l.MaxComputeWorkgroupSizeZ)
		fmt.Fprintf(tw, "  workgroups/dimension\t%d\n", l.MaxComputeWorkgroupsPerDimension)
		fmt.Fprintf(tw, "  storage buffers/stage\t%d\n", l.MaxStorageBuffersPerShaderStage)
		fmt.Fprintf(tw, "  storage offset align\t%d\n", l.MinStorageBufferOffsetAlignment)
		fs := make([]string, len(a.Features))
		for i, f := range a.Features {
			fs[i] = string(f)
		}
		fmt.Fprintf(tw, "  features\t%s\n", strings.Join(fs, ", "))
		tw.Flush()
	}
	return nil
}

func bytesStr(n uint64) string {
	switch {
	case n >= 1<<40 && n%(1<<40) == 0:
		return fmt.Sprintf("%d TiB", n>>40)
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB (%d)", float64(n)/(1<<30), n)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "check [--runtime dawn|wgpu] [--adapter N] [--n N]", stderr)
	rtName := fs.String("runtime", "dawn", "WebGPU implementation: dawn or wgpu")
	adapter := fs.Int("adapter", -1, "adapter index, as mom devices lists them (-1: the best)")
	n := fs.Int("n", 1<<20, "number of floats")
	if err := parse(fs, args); err != nil {
		return err
	}
	rt, err := gpu.ParseRuntime(*rtName)
	if err != nil {
		return usagef("%v", err)
	}
	if *n <= 0 {
		return usagef("--n must be positive")
	}
	d, err := gpu.Open(gpu.Options{Runtime: rt, Adapter: *adapter})
	if err != nil {
		return err
	}
	defer d.Close()
	res, err := gpu.SelfTest(d, *n)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "WGSL compute check on %s: c = fma(a, b, c) over %d floats, every value exact (%.0f ms)\n",
		d, res.N, res.Elapsed.Seconds()*1e3)
	return nil
}

// deviceFlags choose the WebGPU runtime, the adapter and the transfer path.
type deviceFlags struct {
	runtime  *string
	adapter  *string
	transfer *string
	robust   *bool
}

func addDeviceFlags(fs interface {
	String(string, string, string) *string
	Bool(string, bool, string) *bool
}) deviceFlags {
	return deviceFlags{
		runtime: fs.String("runtime", "dawn", "WebGPU implementation: dawn or wgpu"),
		adapter: fs.String("adapter", "-1", "adapter index, as mom devices lists them (-1: the best); "+
			"train under mpirun: a comma-separated list, one per rank on a host"),
		transfer: fs.String("transfer", "auto", "host-device transfer path for parameters, checkpoints and batches: "+
			"auto (the fastest offered), host-mapped (Dawn's host-mapped-pointer buffers), mapped (mapped staging buffers) or queue (writeBuffer)"),
		robust: fs.Bool("robust", false, "keep Dawn's bounds checks on every shader access (by default they are off: mom's kernels check their own bounds, "+
			"and Dawn's cost about 20% of the GEMMs' time on an H200); with wgpu-native, keep its bounds checks and loop bounding "+
			"(by default its shaders are created as trusted modules without them)"),
	}
}

// options are the device options the flags give (adapter left to the caller).
func (f deviceFlags) options() gpu.Options {
	rt, _ := gpu.ParseRuntime(*f.runtime)
	tp, _ := gpu.ParseTransferPath(*f.transfer)
	return gpu.Options{Runtime: rt, Adapter: -1, Transfer: tp, Robust: *f.robust}
}

// check validates the flags before anything opens.
func (f deviceFlags) check() error {
	if _, err := gpu.ParseRuntime(*f.runtime); err != nil {
		return usagef("%v", err)
	}
	if _, err := gpu.ParseTransferPath(*f.transfer); err != nil {
		return usagef("--transfer: %v", err)
	}
	return nil
}

func (f deviceFlags) open() (*gpu.Device, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	list, err := parseAdapters(*f.adapter, false)
	if err != nil {
		return nil, err
	}
	o := f.options()
	if len(list) == 1 {
		o.Adapter = list[0]
	}
	return gpu.Open(o)
}

// openDryRun opens a dry-run device of the named profile (gpu.Profiles).
func openDryRun(profile string) (*gpu.Device, error) {
	p, err := gpu.LookupProfile(profile)
	if err != nil {
		return nil, usagef("--dry-run: %v", err)
	}
	return gpu.OpenDryRun(p)
}
