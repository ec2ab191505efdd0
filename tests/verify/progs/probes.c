// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* The loader of probes.bpf.c, as an application would write it. secl's static analysis
 * reads it for evidence; the runtime verifier replays that evidence. It is never built. */
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "probes.skel.h"

static int check_perf_link(struct bpf_link *link)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_link_get_info_by_fd(bpf_link__fd(link), &info, &len))
		return -1;
	return info.type == BPF_LINK_TYPE_PERF_EVENT ? 0 : -1;
}

int open_probe_event(const char *where); /* perf_event_open() of a kprobe/uprobe PMU event */
unsigned long kernel_address(const char *name); /* from /proc/kallsyms */

int main(void)
{
	struct probes *skel = probes__open_and_load();
	LIBBPF_OPTS(bpf_kprobe_opts, link_mode, .attach_mode = PROBE_ATTACH_MODE_LINK);
	LIBBPF_OPTS(bpf_kprobe_opts, body, .offset = 5);
	LIBBPF_OPTS(bpf_uprobe_opts, ulink, .func_name = "main", .attach_mode = PROBE_ATTACH_MODE_LINK);
	LIBBPF_OPTS(bpf_uprobe_opts, uperf, .func_name = "main", .attach_mode = PROBE_ATTACH_MODE_PERF);
	LIBBPF_OPTS(bpf_uprobe_opts, ulegacy, .func_name = "main", .attach_mode = PROBE_ATTACH_MODE_LEGACY);
	LIBBPF_OPTS(bpf_uprobe_opts, plain, .func_name = "main");
	LIBBPF_OPTS(bpf_kprobe_opts, by_address);
	struct bpf_link *k_perf, *k_addr, *u_perf_fd;
	struct bpf_link *k_mode, *k_body, *k_single, *u_clean, *u_ret, *u_info, *u_link, *u_perf,
		*u_legacy, *u_single;

	if (!skel)
		return 1;
	skel->links.kp_clean = bpf_program__attach(skel->progs.kp_clean);
	skel->links.krp_clean = bpf_program__attach(skel->progs.krp_clean);
	skel->links.kp_link_info = bpf_program__attach(skel->progs.kp_link_info);
	if (check_perf_link(skel->links.kp_link_info))
		return 1;
	k_mode = bpf_program__attach_kprobe_opts(skel->progs.kp_link_mode, "do_nanosleep", &link_mode);
	k_body = bpf_program__attach_kprobe_opts(skel->progs.kp_offset, "do_nanosleep", &body);
	k_perf = bpf_program__attach_perf_event(skel->progs.kp_perf_fd,
						open_probe_event("do_nanosleep"));
	by_address.offset = kernel_address("do_nanosleep");
	k_addr = bpf_program__attach_kprobe_opts(skel->progs.kp_by_address, NULL, &by_address);
	k_single = bpf_program__attach_kprobe_opts(skel->progs.kp_single, "do_nanosleep", &link_mode);

	u_clean = bpf_program__attach_uprobe_opts(skel->progs.up_clean, 0, "/proc/self/exe", 0, &plain);
	u_ret = bpf_program__attach_uprobe_opts(skel->progs.urp_clean, 0, "/proc/self/exe", 0, &plain);
	u_info = bpf_program__attach_uprobe_opts(skel->progs.up_link_info, 0, "/proc/self/exe", 0, &plain);
	if (check_perf_link(u_info))
		return 1;
	u_link = bpf_program__attach_uprobe_opts(skel->progs.up_link_mode, 0, "/proc/self/exe", 0, &ulink);
	u_perf = bpf_program__attach_uprobe_opts(skel->progs.up_perf_mode, 0, "/proc/self/exe", 0, &uperf);
	u_legacy = bpf_program__attach_uprobe_opts(skel->progs.up_legacy_mode, 0, "/proc/self/exe", 0, &ulegacy);
	u_perf_fd = bpf_program__attach_perf_event(skel->progs.up_perf_fd,
						   open_probe_event("/proc/self/exe:main"));
	u_single = bpf_program__attach_uprobe_opts(skel->progs.up_single, 0, "/proc/self/exe", 0, &ulink);
	return !k_perf || !k_addr || !u_perf_fd || !k_mode || !k_body || !k_single || !u_clean ||
	       !u_ret || !u_link || !u_perf || !u_legacy || !u_single;
}
