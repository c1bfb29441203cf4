/* CVirtShim: libvirt for XenKit, loaded only when a command connects.
 *
 * iovm does not link libvirt: every command would pay for loading it and its dependencies at
 * start-up (issue 16), and a dom0 without libvirt0 could not run iovm at all. cvirt_load()
 * dlopens libvirt.so.0 once and resolves each function below; every cvirt_* call goes through
 * those pointers. The types come from libvirt-dev's headers (compile time only).
 *
 * Calls return what the libvirt function returns (-1 or NULL on failure, the error in
 * cvirt_last_error()). Strings returned as char * are the caller's to free(); const char * are not.
 * A typed parameter list (virTypedParameter, a union) never crosses into Swift: the credit
 * helpers read and write the scheduler's "weight" and "cap" fields here.
 */
#ifndef IOVM_CVIRTSHIM_H
#define IOVM_CVIRTSHIM_H

#include <stddef.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Loads libvirt.so.0 (once per process). 0, or -1 with the reason in `error`. */
int cvirt_load(char *error, size_t size);

/** The last libvirt error of this thread: its code (virErrorNumber), domain (virErrorDomain) and
 *  message copied into `message`. 0 when there is none. Resets it. */
int cvirt_last_error(int *code, int *domain, char *message, size_t size);

/* MARK: connections */
virConnectPtr cvirt_connect_open(const char *uri, int readonly);
int cvirt_connect_close(virConnectPtr conn);
const char *cvirt_connect_get_type(virConnectPtr conn);
char *cvirt_connect_get_hostname(virConnectPtr conn);
int cvirt_connect_get_lib_version(virConnectPtr conn, unsigned long *version);
/** Number of host CPUs (virNodeGetInfo's cpus), -1 on failure. */
int cvirt_node_cpus(virConnectPtr conn);
/** The host CPUs' nominal frequency in MHz (virNodeGetInfo's mhz; Xen's cpu_khz / 1000), -1 on failure. */
int cvirt_node_mhz(virConnectPtr conn);

/* MARK: domains */
int cvirt_list_domains(virConnectPtr conn, virDomainPtr **domains);
/** Frees `count` domains and the array virConnectListAllDomains returned. */
void cvirt_free_domains(virDomainPtr *domains, int count);
int cvirt_domain_free(virDomainPtr domain);
virDomainPtr cvirt_domain_lookup_name(virConnectPtr conn, const char *name);
virDomainPtr cvirt_domain_create_xml(virConnectPtr conn, const char *xml, unsigned int flags);
const char *cvirt_domain_name(virDomainPtr domain);
/** The domain's id, or -1 when it is not running. */
long cvirt_domain_id(virDomainPtr domain);
/** The UUID as text into `uuid` (at least VIR_UUID_STRING_BUFLEN bytes). */
int cvirt_domain_uuid(virDomainPtr domain, char *uuid);
/** State, vCPUs, maximum memory and the CPU time the domain has used (ns, as Xen counts it). */
int cvirt_domain_info(virDomainPtr domain, int *state, unsigned int *vcpus, unsigned long *max_memory_kib, unsigned long long *cpu_time_ns);
char *cvirt_domain_xml(virDomainPtr domain, unsigned int flags);
char *cvirt_domain_metadata(virDomainPtr domain, const char *uri);
int cvirt_domain_destroy(virDomainPtr domain);
int cvirt_domain_resume(virDomainPtr domain);
int cvirt_domain_attach_device(virDomainPtr domain, const char *xml, unsigned int flags);
int cvirt_domain_detach_device(virDomainPtr domain, const char *xml, unsigned int flags);
int cvirt_domain_pin_vcpu(virDomainPtr domain, unsigned int vcpu, unsigned char *map, int maplen, unsigned int flags);
int cvirt_domain_vcpu_pin_info(virDomainPtr domain, int vcpus, unsigned char *maps, int maplen, unsigned int flags);
/** The credit weight and cap (-1 for a field the scheduler does not report). */
int cvirt_domain_get_credit(virDomainPtr domain, int *weight, int *cap, unsigned int flags);
/** The scheduler the domain runs under (`credit`, `credit2`, …). */
char *cvirt_domain_scheduler_type(virDomainPtr domain);
/** Sets the credit weight and/or cap (a negative value leaves the field alone). */
int cvirt_domain_set_credit(virDomainPtr domain, int weight, int cap, unsigned int flags);

/* MARK: node devices (PCI NICs) */
virNodeDevicePtr cvirt_nodedev_lookup(virConnectPtr conn, const char *name);
int cvirt_nodedev_free(virNodeDevicePtr device);
char *cvirt_nodedev_xml(virNodeDevicePtr device);
int cvirt_nodedev_detach(virNodeDevicePtr device, const char *driver);
int cvirt_nodedev_reattach(virNodeDevicePtr device);

#ifdef __cplusplus
}
#endif

#endif
