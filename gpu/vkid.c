// vkid.c: see vkid.h.
#include "vkid.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Structure types and the version, from the Vulkan specification.
enum {
	VK_STYPE_APPLICATION_INFO = 0,
	VK_STYPE_INSTANCE_CREATE_INFO = 1,
	VK_STYPE_PHYSICAL_DEVICE_PROPERTIES_2 = 1000059001,
	VK_STYPE_PHYSICAL_DEVICE_ID_PROPERTIES = 1000071004,
	VK_STYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT = 1000212000,
};
#define VK_API_1_1 ((1u << 22) | (1u << 12))

typedef struct {
	int32_t stype; const void *next; const char *app; uint32_t app_version;
	const char *engine; uint32_t engine_version; uint32_t api_version;
} vk_app_info;

typedef struct {
	int32_t stype; const void *next; uint32_t flags; const vk_app_info *app;
	uint32_t n_layers; const char *const *layers; uint32_t n_exts; const char *const *exts;
} vk_instance_info;

// VkPhysicalDeviceProperties: the fields read here, then room for the
// limits and sparse properties that follow (about 520 bytes in Vulkan 1.3).
typedef struct {
	uint32_t api_version, driver_version, vendor_id, device_id;
	int32_t device_type;
	char name[256];
	uint8_t cache_uuid[16];
	uint64_t rest[512];
} vk_props;

typedef struct { int32_t stype; void *next; vk_props props; } vk_props2;

typedef struct {
	int32_t stype; void *next; uint8_t device_uuid[16]; uint8_t driver_uuid[16];
	uint8_t luid[8]; uint32_t node_mask; uint32_t luid_valid;
} vk_id_props;

typedef struct {
	int32_t stype; void *next; uint32_t domain, bus, device, function;
} vk_pci_props;

typedef struct { char name[256]; uint32_t spec_version; } vk_ext_props;

typedef void *(*get_proc_fn)(void *instance, const char *name);
typedef int32_t (*create_instance_fn)(const vk_instance_info *, const void *, void **);
typedef void (*destroy_instance_fn)(void *, const void *);
typedef int32_t (*enum_devices_fn)(void *, uint32_t *, void **);
typedef void (*get_props2_fn)(void *, vk_props2 *);
typedef int32_t (*enum_ext_fn)(void *, const char *, uint32_t *, vk_ext_props *);

static int has_ext(enum_ext_fn enum_ext, void *pd, const char *name) {
	uint32_t n = 0;
	if (enum_ext(pd, NULL, &n, NULL) != 0 || n == 0) return 0;
	vk_ext_props *e = calloc(n, sizeof *e);
	if (!e) return 0;
	int found = 0;
	if (enum_ext(pd, NULL, &n, e) == 0) {
		for (uint32_t i = 0; i < n && !found; i++) found = strcmp(e[i].name, name) == 0;
	}
	free(e);
	return found;
}

int mg_vk_devices(mg_vk_device *out, int cap, char *err, int errlen) {
	void *dl = dlopen("libvulkan.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		snprintf(err, (size_t)errlen, "no Vulkan loader: %s", dlerror());
		return -1;
	}
	get_proc_fn get_proc = (get_proc_fn)dlsym(dl, "vkGetInstanceProcAddr");
	if (!get_proc) {
		snprintf(err, (size_t)errlen, "the Vulkan loader has no vkGetInstanceProcAddr");
		dlclose(dl);
		return -1;
	}
	create_instance_fn create = (create_instance_fn)get_proc(NULL, "vkCreateInstance");
	if (!create) {
		snprintf(err, (size_t)errlen, "vkCreateInstance not found");
		dlclose(dl);
		return -1;
	}
	vk_app_info app = {VK_STYPE_APPLICATION_INFO, NULL, "mom", 1, "mom", 1, VK_API_1_1};
	vk_instance_info ii = {VK_STYPE_INSTANCE_CREATE_INFO, NULL, 0, &app, 0, NULL, 0, NULL};
	void *inst = NULL;
	int32_t rc = create(&ii, NULL, &inst);
	if (rc != 0 || !inst) {
		snprintf(err, (size_t)errlen, "vkCreateInstance failed (%d)", rc);
		return -1;
	}
	destroy_instance_fn destroy = (destroy_instance_fn)get_proc(inst, "vkDestroyInstance");
	enum_devices_fn enum_devices = (enum_devices_fn)get_proc(inst, "vkEnumeratePhysicalDevices");
	get_props2_fn props2 = (get_props2_fn)get_proc(inst, "vkGetPhysicalDeviceProperties2");
	enum_ext_fn enum_ext = (enum_ext_fn)get_proc(inst, "vkEnumerateDeviceExtensionProperties");
	int n_out = -1;
	uint32_t n = 0;
	if (!destroy || !enum_devices || !props2 || !enum_ext) {
		snprintf(err, (size_t)errlen, "Vulkan 1.1 entry points not found");
	} else if (enum_devices(inst, &n, NULL) != 0) {
		snprintf(err, (size_t)errlen, "vkEnumeratePhysicalDevices failed");
	} else {
		void **pds = calloc(n ? n : 1, sizeof *pds);
		if (pds && enum_devices(inst, &n, pds) == 0) {
			n_out = (int)n;
			for (uint32_t i = 0; i < n && (int)i < cap; i++) {
				vk_pci_props pci = {VK_STYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT, NULL, 0, 0, 0, 0};
				vk_id_props id = {VK_STYPE_PHYSICAL_DEVICE_ID_PROPERTIES, NULL, {0}, {0}, {0}, 0, 0};
				int pci_ok = has_ext(enum_ext, pds[i], "VK_EXT_pci_bus_info");
				if (pci_ok) id.next = &pci;
				vk_props2 *p = calloc(1, sizeof *p);
				if (!p) continue;
				p->stype = VK_STYPE_PHYSICAL_DEVICE_PROPERTIES_2;
				p->next = &id;
				props2(pds[i], p);
				mg_vk_device *d = &out[i];
				memset(d, 0, sizeof *d);
				d->vendor_id = p->props.vendor_id;
				d->device_id = p->props.device_id;
				d->device_type = p->props.device_type;
				memcpy(d->name, p->props.name, sizeof d->name);
				d->name[sizeof d->name - 1] = 0;
				memcpy(d->uuid, id.device_uuid, 16);
				d->has_pci = pci_ok;
				d->pci_domain = pci.domain;
				d->pci_bus = pci.bus;
				d->pci_device = pci.device;
				d->pci_function = pci.function;
				free(p);
			}
		} else {
			snprintf(err, (size_t)errlen, "vkEnumeratePhysicalDevices failed");
		}
		free(pds);
	}
	if (destroy) destroy(inst, NULL);
	// The loader stays loaded: some drivers do not like being unloaded and
	// loaded again when the WebGPU implementation opens Vulkan next.
	return n_out;
}
