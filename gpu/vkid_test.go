package gpu

import (
	"strings"
	"testing"
)

// TestUniqueIDs: every adapter of both runtimes gets an id, a Vulkan one
// its GPU's UUID or PCI address from the Vulkan loader; the CPU Vulkan
// adapter of Dawn and of wgpu-native is the same device.
func TestUniqueIDs(t *testing.T) {
	vk, err := VulkanDevices()
	if err != nil {
		t.Fatalf("the Vulkan loader (libvulkan1) is part of the set-up: %v", err)
	}
	if len(vk) == 0 {
		t.Fatal("no Vulkan devices (lavapipe is part of the set-up)")
	}
	for _, v := range vk {
		if len(v.UUID) != 36 || !strings.HasPrefix(v.ID(), "pci ") && !strings.HasPrefix(v.ID(), "uuid ") {
			t.Errorf("Vulkan device %+v: id %q", v, v.ID())
		}
	}
	ids := map[Runtime]string{}
	for _, rt := range runtimes() {
		lib, err := Load(rt)
		if err != nil {
			t.Fatal(err)
		}
		infos, err := lib.Adapters()
		if err != nil {
			t.Fatal(err)
		}
		got := UniqueIDs(infos)
		for i, a := range infos {
			if got[i] == "" {
				t.Errorf("%s adapter %d has no id", rt, i)
			}
			if a.Backend == "Vulkan" && !strings.HasPrefix(got[i], "uuid ") && !strings.HasPrefix(got[i], "pci ") {
				t.Errorf("%s Vulkan adapter %d (%s): id %q, want the Vulkan device's", rt, i, a.Name, got[i])
			}
		}
		if best := BestKind(infos); len(best) > 0 {
			ids[rt] = got[best[0]]
		}
	}
	if len(ids) == 2 && ids[Dawn] != ids[WGPU] {
		t.Errorf("the best adapter is %q through Dawn and %q through wgpu-native; want one device", ids[Dawn], ids[WGPU])
	}
}

func TestBestKind(t *testing.T) {
	a := func(typ AdapterType, be Backend) AdapterInfo { return AdapterInfo{adapterType: typ, backend: be} }
	cases := []struct {
		infos []AdapterInfo
		want  []int
	}{
		{nil, nil},
		{[]AdapterInfo{a(3, BackendVulkan), a(3, BackendOpenGL)}, []int{0}},
		{[]AdapterInfo{a(1, BackendVulkan), a(3, BackendVulkan), a(1, BackendVulkan)}, []int{0, 2}},
		{[]AdapterInfo{a(2, BackendVulkan), a(1, BackendOpenGL)}, []int{1}},
	}
	for _, c := range cases {
		got := BestKind(c.infos)
		if len(got) != len(c.want) {
			t.Errorf("BestKind(%v) = %v, want %v", c.infos, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("BestKind(%v) = %v, want %v", c.infos, got, c.want)
			}
		}
	}
}
