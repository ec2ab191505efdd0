// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Programs for the runtime verifier's tests: each one only returns; secl counts their runs
 * with the kernel's run_cnt. probes.c is the loader whose code gives the predictions. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* kprobes (the guest): a clean upgrade, K1 link info, K2 LINK mode, K4 offset and address,
 * K20 a perf event opened by hand */
SEC("kprobe/do_nanosleep")
int kp_clean(void *ctx) { return 0; }

SEC("kretprobe/do_nanosleep")
int krp_clean(void *ctx) { return 0; }

SEC("kprobe/do_nanosleep")
int kp_link_info(void *ctx) { return 0; }

SEC("kprobe/do_nanosleep")
int kp_link_mode(void *ctx) { return 0; }

SEC("kprobe/do_nanosleep")
int kp_offset(void *ctx) { return 0; }

SEC("kprobe/do_nanosleep")
int kp_perf_fd(void *ctx) { return 0; }

SEC("kprobe/do_nanosleep")
int kp_by_address(void *ctx) { return 0; }

SEC("kprobe.single/do_nanosleep")
int kp_single(void *ctx) { return 0; }

/* uprobes (the host): the same evidence, and the attach modes whose routing is unknown */
SEC("uprobe")
int up_clean(void *ctx) { return 0; }

SEC("uretprobe")
int urp_clean(void *ctx) { return 0; }

SEC("uprobe")
int up_link_info(void *ctx) { return 0; }

SEC("uprobe")
int up_link_mode(void *ctx) { return 0; }

SEC("uprobe")
int up_perf_mode(void *ctx) { return 0; }

SEC("uprobe")
int up_legacy_mode(void *ctx) { return 0; }

SEC("uprobe")
int up_perf_fd(void *ctx) { return 0; }

SEC("uprobe.single")
int up_single(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
