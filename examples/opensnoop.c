// SPDX-License-Identifier: GPL-2.0
/* Loader of opensnoop.bpf.c through its generated skeleton. */
#include <stdio.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "opensnoop.skel.h"

#define VFS_OPEN_BODY_OFFSET 0x1c

static int check_perf_link(struct bpf_link *link)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_link_get_info_by_fd(bpf_link__fd(link), &info, &len))
		return -1;
	if (info.type != BPF_LINK_TYPE_PERF_EVENT) {
		fprintf(stderr, "unexpected link type %u\n", info.type);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opensnoop_bpf *skel;
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .offset = VFS_OPEN_BODY_OFFSET);
	struct bpf_link *link;
	int err;

	skel = opensnoop_bpf__open_and_load();
	if (!skel)
		return 1;

	err = opensnoop_bpf__attach(skel);
	if (err)
		goto out;

	link = bpf_program__attach_kprobe_opts(skel->progs.trace_vfs_open_body, "vfs_open", &opts);
	if (!link) {
		err = -1;
		goto out;
	}

	err = check_perf_link(skel->links.trace_open_ret);
	sleep(1);
out:
	opensnoop_bpf__destroy(skel);
	return err ? 1 : 0;
}
