package gpu

/*
#include "vkid.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// VulkanDevice is a GPU as the Vulkan loader lists it, with what tells
// identical GPUs apart.
type VulkanDevice struct {
	VendorID, DeviceID uint32
	Name               string
	UUID               string // the device UUID, 8-4-4-4-12 hex
	PCI                string // the PCI address, domain:bus:device.function ("" without VK_EXT_pci_bus_info)
}

// ID is the most specific identifier: "pci 0000:17:00.0", else "uuid ...".
func (v VulkanDevice) ID() string {
	if v.PCI != "" {
		return "pci " + v.PCI
	}
	return "uuid " + v.UUID
}

var (
	vkOnce sync.Once
	vkDevs []VulkanDevice
	vkErr  error
)

// VulkanDevices lists the GPUs through the Vulkan loader (libvulkan.so.1,
// opened at run time), in the loader's order, once per process. Neither
// WebGPU implementation exposes a GPU's UUID or PCI address; this is where
// they come from.
func VulkanDevices() ([]VulkanDevice, error) {
	vkOnce.Do(func() {
		var buf [64]C.mg_vk_device
		var msg [512]C.char
		n := int(C.mg_vk_devices(&buf[0], C.int(len(buf)), &msg[0], C.int(len(msg))))
		if n < 0 {
			vkErr = fmt.Errorf("gpu: listing Vulkan devices: %s", C.GoString(&msg[0]))
			return
		}
		for i := 0; i < min(n, len(buf)); i++ {
			d := &buf[i]
			u := C.GoBytes(unsafe.Pointer(&d.uuid[0]), 16)
			v := VulkanDevice{VendorID: uint32(d.vendor_id), DeviceID: uint32(d.device_id), Name: C.GoString(&d.name[0]),
				UUID: fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])}
			if d.has_pci != 0 {
				v.PCI = fmt.Sprintf("%04x:%02x:%02x.%x", uint32(d.pci_domain), uint32(d.pci_bus), uint32(d.pci_device), uint32(d.pci_function))
			}
			vkDevs = append(vkDevs, v)
		}
	})
	return vkDevs, vkErr
}

// UniqueIDs names the GPU behind each adapter of infos (one runtime's list)
// as uniquely as can be known: a Vulkan adapter's PCI address or device
// UUID, matched by order: the k-th adapter with a given vendor and device
// id is the k-th Vulkan device with them (both lists follow the loader's
// order). Where no match exists, the id is "<runtime> adapter <index>:
// <name>", unique within this process's view only.
func UniqueIDs(infos []AdapterInfo) []string {
	out := make([]string, len(infos))
	vk, err := VulkanDevices()
	seen := map[[2]uint32]int{}
	for i, a := range infos {
		out[i] = fmt.Sprintf("%s adapter %d: %s", a.Runtime, a.Index, a.Name)
		if err != nil || !strings.EqualFold(a.Backend, "Vulkan") {
			continue
		}
		key := [2]uint32{a.VendorID, a.DeviceID}
		k := seen[key]
		seen[key]++
		for _, v := range vk {
			if v.VendorID != a.VendorID || v.DeviceID != a.DeviceID {
				continue
			}
			if k == 0 {
				out[i] = v.ID()
				break
			}
			k--
		}
	}
	return out
}
