// vkid.h: a few Vulkan calls, made through the Vulkan loader opened with
// dlopen, to tell GPUs apart: each physical device's UUID and, where the
// driver offers VK_EXT_pci_bus_info, its PCI address. Neither WebGPU
// implementation exposes these. The declarations are mom's own, from the
// Vulkan specification.
#ifndef MOM_VKID_H
#define MOM_VKID_H

#include <stdint.h>

typedef struct {
	uint32_t vendor_id, device_id;
	int32_t device_type;
	char name[256];
	uint8_t uuid[16];
	int has_pci;
	uint32_t pci_domain, pci_bus, pci_device, pci_function;
} mg_vk_device;

// mg_vk_devices fills up to cap devices in the loader's order and returns
// how many there are, or a negative number with a message in err when the
// loader is missing or fails.
int mg_vk_devices(mg_vk_device *out, int cap, char *err, int errlen);

#endif
