// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Section forms for the runtime verifier's tests: how secl picks the target and the
 * expectation of each. No loader uses them, so the predictions come from the names alone. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* uprobes (the host) */
SEC("uprobe//proc/self/exe:secl_verify_target") /* the loader's own function: auto-attach */
int up_auto_self(void *ctx) { return 0; }

SEC("uprobe/libc.so.6:malloc") /* any other target is replaced by the loader's function */
int up_libc_malloc(void *ctx) { return 0; }

SEC("uprobe.multi") /* already multi: not upgraded */
int up_native_multi(void *ctx) { return 0; }

SEC("uprobe.s") /* sleepable: not upgraded */
int up_sleepable(void *ctx) { return 0; }

/* kprobes (the guest) */
SEC("kprobe") /* bare: attached to a function secl can trigger */
int kp_bare(void *ctx) { return 0; }

SEC("ksyscall/nanosleep") /* not upgraded */
int ks_nanosleep(void *ctx) { return 0; }

SEC("kprobe.multi/do_nanosleep") /* already multi: not upgraded */
int kp_native_multi(void *ctx) { return 0; }

SEC("kprobe/secl_no_such_function") /* cannot attach on any kernel: inconclusive */
int kp_missing(void *ctx) { return 0; }

SEC("tracepoint/syscalls/sys_enter_getpid") /* not a probe: no cases */
int tp_getpid(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
