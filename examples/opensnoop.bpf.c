// SPDX-License-Identifier: GPL-2.0
/* A small tracer, written to show what secl finds. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

const volatile pid_t target_pid = 0;

/* Auto-attached by the skeleton; upgrades to kprobe_multi cleanly. */
SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(trace_open, int dfd, const char *filename)
{
	u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (target_pid && pid != target_pid)
		return 0;
	bpf_ringbuf_output(&events, &pid, sizeof(pid), 0);
	return 0;
}

/* The loader attaches this one 0x1c bytes into the function body. */
SEC("kprobe/vfs_open")
int BPF_KPROBE(trace_vfs_open_body)
{
	return 0;
}

/* The loader reads its link info and expects a perf-event link. */
SEC("kretprobe/do_sys_openat2")
int BPF_KRETPROBE(trace_open_ret, long ret)
{
	return 0;
}

/* Typo: libbpf has no "kprobes" section; the program would fail to load. */
SEC("kprobes/do_unlinkat")
int BPF_KPROBE(trace_unlink)
{
	return 0;
}

/* libbpf's kprobe parser stops at ':' and attaches to "nf_conntrack". */
SEC("kprobe/nf_conntrack:nf_ct_delete")
int BPF_KPROBE(trace_ct_delete)
{
	return 0;
}

/* One slash: a relative path "usr/lib/..." that libbpf looks up from the cwd. */
SEC("uprobe/usr/lib/x86_64-linux-gnu/libc.so.6:malloc")
int BPF_UPROBE(trace_malloc, size_t size)
{
	return 0;
}
