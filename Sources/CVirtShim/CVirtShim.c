#include "CVirtShim.h"

#include <dlfcn.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each libvirt function the shim calls, with its own type from the headers. */
#define CVIRT_FUNCTIONS(X)                                                                         \
    X(virInitialize)                                                                               \
    X(virSetErrorFunc)                                                                             \
    X(virGetLastError)                                                                             \
    X(virResetLastError)                                                                           \
    X(virConnectOpenAuth)                                                                          \
    X(virConnectClose)                                                                             \
    X(virConnectGetType)                                                                           \
    X(virConnectGetHostname)                                                                       \
    X(virConnectGetLibVersion)                                                                     \
    X(virNodeGetInfo)                                                                              \
    X(virConnectListAllDomains)                                                                    \
    X(virDomainFree)                                                                               \
    X(virDomainLookupByName)                                                                       \
    X(virDomainCreateXML)                                                                          \
    X(virDomainGetName)                                                                            \
    X(virDomainGetID)                                                                              \
    X(virDomainGetUUIDString)                                                                      \
    X(virDomainGetInfo)                                                                            \
    X(virDomainGetXMLDesc)                                                                         \
    X(virDomainGetMetadata)                                                                        \
    X(virDomainDestroy)                                                                            \
    X(virDomainResume)                                                                             \
    X(virDomainAttachDeviceFlags)                                                                  \
    X(virDomainDetachDeviceFlags)                                                                  \
    X(virDomainPinVcpuFlags)                                                                       \
    X(virDomainGetVcpuPinInfo)                                                                     \
    X(virDomainGetSchedulerParameters)                                                             \
    X(virDomainGetSchedulerType)                                                                   \
    X(virDomainSetSchedulerParametersFlags)                                                        \
    X(virNodeDeviceLookupByName)                                                                   \
    X(virNodeDeviceFree)                                                                           \
    X(virNodeDeviceGetXMLDesc)                                                                     \
    X(virNodeDeviceDetachFlags)                                                                    \
    X(virNodeDeviceReAttach)

static struct {
#define CVIRT_POINTER(name) __typeof__(name) *name;
    CVIRT_FUNCTIONS(CVIRT_POINTER)
#undef CVIRT_POINTER
} api;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[512];
static int loaded;

/* libvirt prints every error to stderr unless a handler is set; iovm reports them itself. */
static void quiet(void *data, virErrorPtr error) {
    (void)data;
    (void)error;
}

/* A libvirt that cannot serve is closed again, and no pointer into it is kept (nothing calls them: `loaded` is 0). */
static void unload(void *handle) {
    memset(&api, 0, sizeof api);
    dlclose(handle);
}

static void load(void) {
    void *handle = dlopen("libvirt.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        snprintf(load_error, sizeof load_error, "cannot load libvirt.so.0 (install libvirt0): %s", dlerror());
        return;
    }
#define CVIRT_RESOLVE(name)                                                                        \
    api.name = (__typeof__(name) *)dlsym(handle, #name);                                           \
    if (!api.name) {                                                                               \
        snprintf(load_error, sizeof load_error, "libvirt.so.0 has no %s (libvirt 9.0 or later is needed)", #name); \
        unload(handle);                                                                            \
        return;                                                                                    \
    }
    CVIRT_FUNCTIONS(CVIRT_RESOLVE)
#undef CVIRT_RESOLVE
    if (api.virInitialize() < 0) {
        snprintf(load_error, sizeof load_error, "virInitialize failed");
        unload(handle);
        return;
    }
    api.virSetErrorFunc(NULL, quiet);
    /* libvirt's remote driver writes to its transport (the ssh child's pipe of a xen+ssh:// URI) and leaves SIGPIPE
     * to the application: unignored, a host that dies under an open connection kills this process with SIGPIPE
     * before any error is returned (seen in the lab: exit 141 mid-apply, the other host never rolled back). */
    signal(SIGPIPE, SIG_IGN);
    loaded = 1;
}

int cvirt_load(char *error, size_t size) {
    pthread_once(&once, load);
    if (loaded) return 0;
    if (error && size) snprintf(error, size, "%s", load_error);
    return -1;
}

int cvirt_last_error(int *code, int *domain, char *message, size_t size) {
    if (!loaded) return 0;
    virErrorPtr error = api.virGetLastError();
    if (!error || error->code == VIR_ERR_OK) return 0;
    *code = error->code;
    *domain = error->domain;
    if (message && size) snprintf(message, size, "%s", error->message ? error->message : "");
    api.virResetLastError();
    return 1;
}

/* A call before cvirt_load succeeded fails like libvirt does, with no error recorded. */
#define CVIRT_NEEDS(fail) \
    if (!loaded) return fail;

virConnectPtr cvirt_connect_open(const char *uri, int readonly) {
    CVIRT_NEEDS(NULL)
    return api.virConnectOpenAuth(uri, NULL, readonly ? VIR_CONNECT_RO : 0);
}
int cvirt_connect_close(virConnectPtr conn) { CVIRT_NEEDS(-1) return api.virConnectClose(conn); }
const char *cvirt_connect_get_type(virConnectPtr conn) { CVIRT_NEEDS(NULL) return api.virConnectGetType(conn); }
char *cvirt_connect_get_hostname(virConnectPtr conn) { CVIRT_NEEDS(NULL) return api.virConnectGetHostname(conn); }
int cvirt_connect_get_lib_version(virConnectPtr conn, unsigned long *version) {
    CVIRT_NEEDS(-1)
    return api.virConnectGetLibVersion(conn, version);
}
int cvirt_node_cpus(virConnectPtr conn) {
    CVIRT_NEEDS(-1)
    virNodeInfo info;
    if (api.virNodeGetInfo(conn, &info) < 0) return -1;
    return (int)info.cpus;
}

int cvirt_node_mhz(virConnectPtr conn) {
    CVIRT_NEEDS(-1)
    virNodeInfo info;
    if (api.virNodeGetInfo(conn, &info) < 0) return -1;
    return (int)info.mhz;
}

int cvirt_list_domains(virConnectPtr conn, virDomainPtr **domains) {
    CVIRT_NEEDS(-1)
    return api.virConnectListAllDomains(conn, domains, 0);
}
void cvirt_free_domains(virDomainPtr *domains, int count) {
    if (!domains) return;
    for (int i = 0; i < count; i++)
        if (domains[i] && loaded) api.virDomainFree(domains[i]);
    free(domains);
}
int cvirt_domain_free(virDomainPtr domain) { CVIRT_NEEDS(-1) return api.virDomainFree(domain); }
virDomainPtr cvirt_domain_lookup_name(virConnectPtr conn, const char *name) {
    CVIRT_NEEDS(NULL)
    return api.virDomainLookupByName(conn, name);
}
virDomainPtr cvirt_domain_create_xml(virConnectPtr conn, const char *xml, unsigned int flags) {
    CVIRT_NEEDS(NULL)
    return api.virDomainCreateXML(conn, xml, flags);
}
const char *cvirt_domain_name(virDomainPtr domain) { CVIRT_NEEDS(NULL) return api.virDomainGetName(domain); }
long cvirt_domain_id(virDomainPtr domain) {
    CVIRT_NEEDS(-1)
    unsigned int id = api.virDomainGetID(domain);
    return id == (unsigned int)-1 ? -1 : (long)id;
}
int cvirt_domain_uuid(virDomainPtr domain, char *uuid) { CVIRT_NEEDS(-1) return api.virDomainGetUUIDString(domain, uuid); }
int cvirt_domain_info(virDomainPtr domain, int *state, unsigned int *vcpus, unsigned long *max_memory_kib, unsigned long long *cpu_time_ns) {
    CVIRT_NEEDS(-1)
    virDomainInfo info;
    if (api.virDomainGetInfo(domain, &info) < 0) return -1;
    *state = info.state;
    *vcpus = info.nrVirtCpu;
    *max_memory_kib = info.maxMem;
    *cpu_time_ns = info.cpuTime;
    return 0;
}
char *cvirt_domain_xml(virDomainPtr domain, unsigned int flags) { CVIRT_NEEDS(NULL) return api.virDomainGetXMLDesc(domain, flags); }
char *cvirt_domain_metadata(virDomainPtr domain, const char *uri) {
    CVIRT_NEEDS(NULL)
    return api.virDomainGetMetadata(domain, VIR_DOMAIN_METADATA_ELEMENT, uri, VIR_DOMAIN_AFFECT_CURRENT);
}
int cvirt_domain_destroy(virDomainPtr domain) { CVIRT_NEEDS(-1) return api.virDomainDestroy(domain); }
int cvirt_domain_resume(virDomainPtr domain) { CVIRT_NEEDS(-1) return api.virDomainResume(domain); }
int cvirt_domain_attach_device(virDomainPtr domain, const char *xml, unsigned int flags) {
    CVIRT_NEEDS(-1)
    return api.virDomainAttachDeviceFlags(domain, xml, flags);
}
int cvirt_domain_detach_device(virDomainPtr domain, const char *xml, unsigned int flags) {
    CVIRT_NEEDS(-1)
    return api.virDomainDetachDeviceFlags(domain, xml, flags);
}
int cvirt_domain_pin_vcpu(virDomainPtr domain, unsigned int vcpu, unsigned char *map, int maplen, unsigned int flags) {
    CVIRT_NEEDS(-1)
    return api.virDomainPinVcpuFlags(domain, vcpu, map, maplen, flags);
}
int cvirt_domain_vcpu_pin_info(virDomainPtr domain, int vcpus, unsigned char *maps, int maplen, unsigned int flags) {
    CVIRT_NEEDS(-1)
    return api.virDomainGetVcpuPinInfo(domain, vcpus, maps, maplen, flags);
}

int cvirt_domain_get_credit(virDomainPtr domain, int *weight, int *cap, unsigned int flags) {
    CVIRT_NEEDS(-1)
    virTypedParameter params[8];
    int count = 8;
    memset(params, 0, sizeof params);
    (void)flags; /* virDomainGetSchedulerParameters: the Flags variant adds VIR_TYPED_PARAM_STRING_OKAY, which the test driver refuses */
    if (api.virDomainGetSchedulerParameters(domain, params, &count) < 0) return -1;
    *weight = -1;
    *cap = -1;
    for (int i = 0; i < count; i++) {
        int value = params[i].type == VIR_TYPED_PARAM_UINT ? (int)params[i].value.ui
                    : params[i].type == VIR_TYPED_PARAM_INT ? params[i].value.i
                                                            : -1;
        if (strcmp(params[i].field, VIR_DOMAIN_SCHEDULER_WEIGHT) == 0) *weight = value;
        if (strcmp(params[i].field, VIR_DOMAIN_SCHEDULER_CAP) == 0) *cap = value;
    }
    return 0;
}

char *cvirt_domain_scheduler_type(virDomainPtr domain) {
    CVIRT_NEEDS(NULL)
    int count = 0;
    return api.virDomainGetSchedulerType(domain, &count);
}

int cvirt_domain_set_credit(virDomainPtr domain, int weight, int cap, unsigned int flags) {
    CVIRT_NEEDS(-1)
    virTypedParameter params[2];
    int count = 0;
    memset(params, 0, sizeof params);
    if (weight >= 0) {
        snprintf(params[count].field, VIR_TYPED_PARAM_FIELD_LENGTH, "%s", VIR_DOMAIN_SCHEDULER_WEIGHT);
        params[count].type = VIR_TYPED_PARAM_UINT;
        params[count].value.ui = (unsigned int)weight;
        count++;
    }
    if (cap >= 0) {
        snprintf(params[count].field, VIR_TYPED_PARAM_FIELD_LENGTH, "%s", VIR_DOMAIN_SCHEDULER_CAP);
        params[count].type = VIR_TYPED_PARAM_UINT;
        params[count].value.ui = (unsigned int)cap;
        count++;
    }
    if (count == 0) return 0;
    return api.virDomainSetSchedulerParametersFlags(domain, params, count, flags);
}

virNodeDevicePtr cvirt_nodedev_lookup(virConnectPtr conn, const char *name) {
    CVIRT_NEEDS(NULL)
    return api.virNodeDeviceLookupByName(conn, name);
}
int cvirt_nodedev_free(virNodeDevicePtr device) { CVIRT_NEEDS(-1) return api.virNodeDeviceFree(device); }
char *cvirt_nodedev_xml(virNodeDevicePtr device) { CVIRT_NEEDS(NULL) return api.virNodeDeviceGetXMLDesc(device, 0); }
int cvirt_nodedev_detach(virNodeDevicePtr device, const char *driver) {
    CVIRT_NEEDS(-1)
    return api.virNodeDeviceDetachFlags(device, driver, 0);
}
int cvirt_nodedev_reattach(virNodeDevicePtr device) { CVIRT_NEEDS(-1) return api.virNodeDeviceReAttach(device); }
