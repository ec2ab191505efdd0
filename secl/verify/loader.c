/* secl-loader: runs secl verify's attach cases, on the host and inside the guest.
 *
 *   secl-loader CASES        run every case of the file, one JSON line each on stdout
 *   secl-loader --version    {"libbpf":"1.4"} (the libbpf it was linked with)
 *   secl-loader --links      every BPF link of the system: {"id","type","prog"}
 *
 * A case is one line of TAB-separated key=value fields (see secl/verify/cases.py, which
 * writes them): the object and the program under test, how to load it (as written, as
 * the proposed auto-upgrade would, or as a .single program) and how to attach it (the
 * section's own auto-attach, the single-probe API with an offset/mode/cookie, the multi API
 * with one symbol and the cookie, or a perf event opened by hand). The loader reports what
 * libbpf and the kernel did: errno of each step, the link type from
 * bpf_link_get_info_by_fd(), and how often the program ran while the target was triggered
 * (run_cnt from bpf_prog_get_info_by_fd(), counted while a BPF_ENABLE_STATS fd is held).
 *
 * Linked statically against libbpf >= 1.4 so that one binary runs on the host and inside a
 * busybox initramfs.  Everything a case creates is released before the next case; what a
 * killed loader leaves behind (legacy tracefs probes named libbpf_<pid>_...) is removed by
 * the Python side, which knows the pid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/perf_event.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* The uprobe target of the "self" trigger: eight one-byte NOPs before the body, so that
 * offsets 0..8 are all instruction boundaries (a uprobe must sit on one:
 * arch/x86/kernel/uprobes.c: arch_uprobe_analyze_insn decodes the instruction there). */
__asm__(".text\n"
	".globl secl_verify_target\n"
	".type secl_verify_target, @function\n"
	"secl_verify_target:\n"
	"  nop; nop; nop; nop; nop; nop; nop; nop\n"
	"  mov %edi, %eax\n"
	"  ret\n"
	".size secl_verify_target, .-secl_verify_target\n");
int secl_verify_target(int x);

#define LOG_LINES 4
#define LOG_LINE 240

struct log_ring {
	char lines[LOG_LINES][LOG_LINE];
	int next;
	int count;
};

static struct log_ring *current_log;

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list args)
{
	char buf[LOG_LINE];
	size_t n;

	if (level == LIBBPF_DEBUG || !current_log)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, args);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	if (!n)
		return 0;
	memcpy(current_log->lines[current_log->next], buf, n + 1);
	current_log->next = (current_log->next + 1) % LOG_LINES;
	if (current_log->count < LOG_LINES)
		current_log->count++;
	return 0;
}

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

struct test_case {
	int id;
	char obj[PATH_MAX];
	char prog[128];
	char kind[16];      /* kprobe | uprobe */
	int retprobe;
	int upgrade;        /* expected attach type = the multi type before load */
	int single;         /* a .single section: libbpf >= 1.4 does not know it, set the type */
	char api[16];       /* auto | single | multi | perf_event */
	char func[256];     /* kernel function or ELF symbol */
	char binary[PATH_MAX]; /* uprobe: path, or "self" */
	long long offset;
	int mode;           /* enum probe_attach_mode */
	int by_address;     /* kprobe: func_name NULL, offset = kallsyms address + offset */
	unsigned long long cookie;
	char trigger[16];   /* none | self | nanosleep | clock_nanosleep | getpid */
	int count;
	int crash;          /* tests only: die by SIGKILL right after the attach */
	int hold_ms;        /* tests only: stay attached this long before triggering */
};

struct outcome {
	int open_err, load_err, attach_err, info_err;
	int link_type;      /* -1: none */
	long long hits;     /* -1: not measured */
	struct log_ring log;
};

static void parse_case(char *line, struct test_case *c)
{
	char *field, *save = NULL;

	memset(c, 0, sizeof(*c));
	strcpy(c->api, "auto");
	strcpy(c->trigger, "none");
	for (field = strtok_r(line, "\t\n", &save); field; field = strtok_r(NULL, "\t\n", &save)) {
		char *eq = strchr(field, '=');
		const char *k = field, *v;

		if (!eq)
			continue;
		*eq = 0;
		v = eq + 1;
#define STR(name) else if (!strcmp(k, #name)) snprintf(c->name, sizeof(c->name), "%s", v)
#define INT(name) else if (!strcmp(k, #name)) c->name = strtoll(v, NULL, 0)
		if (0) {
		}
		INT(id); STR(obj); STR(prog); STR(kind); INT(retprobe); INT(upgrade); INT(single);
		STR(api); STR(func); STR(binary); INT(offset); INT(mode); INT(by_address);
		else if (!strcmp(k, "cookie")) c->cookie = strtoull(v, NULL, 0);
		STR(trigger); INT(count); INT(crash); INT(hold_ms);
#undef STR
#undef INT
	}
}

/* The file offset of an ELF symbol: what the uprobe_multi link takes (kernel/trace/
 * bpf_trace.c: bpf_uprobe_multi_link_attach wants offsets, not addresses). libbpf refuses
 * syms and offsets together in bpf_program__attach_uprobe_multi, so an upgraded func+off
 * attach must be resolved here, the way libbpf's elf_find_func_offset does for one symbol. */
static long elf_symbol_file_offset(const char *path, const char *name)
{
	Elf *elf;
	Elf_Scn *scn = NULL;
	long result = -ENOENT;
	int fd;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	while (elf && result == -ENOENT && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t i, n;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		data = elf_getdata(scn, NULL);
		n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
		for (i = 0; data && i < n; i++) {
			GElf_Sym sym;
			GElf_Shdr target;
			Elf_Scn *holder;
			const char *sname;

			if (!gelf_getsym(data, i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC)
				continue;
			sname = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (!sname || strcmp(sname, name))
				continue;
			holder = elf_getscn(elf, sym.st_shndx);
			if (holder && gelf_getshdr(holder, &target))
				result = sym.st_value - target.sh_addr + target.sh_offset;
			break;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return result;
}

static unsigned long kallsyms_address(const char *name)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char sym[256], type;
	unsigned long addr, found = 0;

	if (!f)
		return 0;
	while (fscanf(f, "%lx %c %255s%*[^\n]", &addr, &type, sym) == 3) {
		if (!strcmp(sym, name)) {
			found = addr;
			break;
		}
	}
	fclose(f);
	return found;
}

static int pmu_value(const char *pmu, const char *file, int *value)
{
	char path[256], buf[64];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/sys/bus/event_source/devices/%s/%s", pmu, file);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok)
		return -EINVAL;
	/* "type" holds a number, "format/retprobe" holds "config:N" */
	*value = atoi(strchr(buf, ':') ? strchr(buf, ':') + 1 : buf);
	return 0;
}

/* A kprobe/uprobe perf event opened the way the kprobe and uprobe PMUs document it
 * (kernel/trace/trace_event_perf.c: perf_kprobe_init, perf_uprobe_init): config1 points at
 * the function name or the path, config2 is the offset, the retprobe bit is in config. */
static int open_probe_event(const struct test_case *c, const char *binary, long offset)
{
	struct perf_event_attr attr;
	int type, bit, fd;
	const char *pmu = strcmp(c->kind, "kprobe") ? "uprobe" : "kprobe";
	int err = pmu_value(pmu, "type", &type);

	if (err)
		return err;
	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = type;
	if (c->retprobe) {
		err = pmu_value(pmu, "format/retprobe", &bit);
		if (err)
			return err;
		attr.config |= 1ULL << bit;
	}
	if (!strcmp(pmu, "kprobe")) {
		attr.config1 = (unsigned long)c->func;
		attr.config2 = c->offset;
	} else {
		attr.config1 = (unsigned long)binary;
		attr.config2 = offset;
	}
	/* pid -1, cpu 0: every process, as libbpf does for a probe without a pid */
	fd = syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static struct bpf_link *attach(const struct test_case *c, struct bpf_program *prog,
			       const char *binary, int *perf_fd)
{
	int uprobe = strcmp(c->kind, "kprobe") != 0;

	if (!strcmp(c->api, "auto"))
		return bpf_program__attach(prog);
	if (!strcmp(c->api, "multi") && !uprobe) {
		const char *syms[1] = { c->func };
		LIBBPF_OPTS(bpf_kprobe_multi_opts, o, .syms = syms, .cookies = &c->cookie,
			    .cnt = 1, .retprobe = c->retprobe);
		return bpf_program__attach_kprobe_multi_opts(prog, NULL, &o);
	}
	if (!strcmp(c->api, "multi")) {
		const char *syms[1] = { c->func };
		unsigned long offsets[1];
		LIBBPF_OPTS(bpf_uprobe_multi_opts, o, .cookies = &c->cookie, .cnt = 1,
			    .retprobe = c->retprobe);
		if (c->offset) {
			long base = elf_symbol_file_offset(binary, c->func);
			if (base < 0) {
				errno = -base;
				return NULL;
			}
			offsets[0] = base + c->offset;
			o.offsets = offsets;
		} else {
			o.syms = syms;
		}
		return bpf_program__attach_uprobe_multi(prog, -1, binary, NULL, &o);
	}
	if (!strcmp(c->api, "single") && !uprobe) {
		LIBBPF_OPTS(bpf_kprobe_opts, o, .bpf_cookie = c->cookie, .offset = c->offset,
			    .retprobe = c->retprobe, .attach_mode = c->mode);
		if (c->by_address) {
			unsigned long addr = kallsyms_address(c->func);
			if (!addr) {
				errno = ENOENT;
				return NULL;
			}
			o.offset = addr + c->offset;
			return bpf_program__attach_kprobe_opts(prog, NULL, &o);
		}
		return bpf_program__attach_kprobe_opts(prog, c->func, &o);
	}
	if (!strcmp(c->api, "single")) {
		LIBBPF_OPTS(bpf_uprobe_opts, o, .bpf_cookie = c->cookie, .retprobe = c->retprobe,
			    .func_name = c->func, .attach_mode = c->mode);
		return bpf_program__attach_uprobe_opts(prog, -1, binary, c->offset, &o);
	}
	if (!strcmp(c->api, "perf_event")) {
		long offset = 0;
		if (uprobe) {
			offset = elf_symbol_file_offset(binary, c->func);
			if (offset < 0) {
				errno = -offset;
				return NULL;
			}
			offset += c->offset;
		}
		*perf_fd = open_probe_event(c, binary, offset);
		if (*perf_fd < 0) {
			errno = -*perf_fd;
			return NULL;
		}
		return bpf_program__attach_perf_event(prog, *perf_fd);
	}
	errno = EINVAL;
	return NULL;
}

static void trigger(const struct test_case *c)
{
	volatile int sink = 0;
	int i;

	for (i = 0; i < c->count; i++) {
		if (!strcmp(c->trigger, "self")) {
			sink += secl_verify_target(i);
		} else if (!strcmp(c->trigger, "nanosleep")) {
			/* the syscall itself: glibc's nanosleep() is clock_nanosleep */
			struct timespec ts = { 0, 1000 };
			syscall(SYS_nanosleep, &ts, NULL);
		} else if (!strcmp(c->trigger, "clock_nanosleep")) {
			struct timespec ts = { 0, 1000 };
			syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL);
		} else if (!strcmp(c->trigger, "getpid")) {
			syscall(SYS_getpid);
		}
	}
	(void)sink;
}

static long long run_count(int prog_fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_prog_get_info_by_fd(prog_fd, &info, &len))
		return -1;
	return info.run_cnt;
}

static void run_case(const struct test_case *c, int stats_fd, struct outcome *r)
{
	struct bpf_object *obj;
	struct bpf_program *prog, *p;
	struct bpf_link *link;
	const char *binary = c->binary;
	int perf_fd = -1;

	memset(r, 0, sizeof(*r));
	r->link_type = -1;
	r->hits = -1;
	current_log = &r->log;
	/* "self" is the loader: named by /proc/self/exe, which the kernel resolves in the
	 * attaching process, because libbpf builds legacy tracefs event names from the path
	 * (libbpf.c: gen_uprobe_legacy_event_name) and a long cache path overflows the
	 * kernel's 64-byte event name limit (kernel/trace/trace_probe.h: MAX_EVENT_NAME_LEN) */
	if (!strcmp(binary, "self"))
		binary = "/proc/self/exe";

	obj = bpf_object__open_file(c->obj, NULL);
	if (!obj) {
		r->open_err = -errno;
		goto out;
	}
	prog = bpf_object__find_program_by_name(obj, c->prog);
	if (!prog) {
		r->open_err = -ENOENT;
		goto close;
	}
	/* only the program under test is loaded: the others may need what this kernel lacks */
	bpf_object__for_each_program(p, obj)
		bpf_program__set_autoload(p, p == prog);
	if (c->single) {
		/* kprobe.single/uprobe.single exist only with the proposal: load as libbpf's
		 * SEC_DEF("kprobe+"/"uprobe+") would, BPF_PROG_TYPE_KPROBE and attach type 0 */
		bpf_program__set_type(prog, BPF_PROG_TYPE_KPROBE);
		bpf_program__set_expected_attach_type(prog, 0);
	}
	if (c->upgrade)
		/* what the proposal does in bpf_object_prepare_progs() */
		bpf_program__set_expected_attach_type(prog, strcmp(c->kind, "kprobe")
							     ? BPF_TRACE_UPROBE_MULTI
							     : BPF_TRACE_KPROBE_MULTI);
	if (bpf_object__load(obj)) {
		r->load_err = -errno;
		goto close;
	}
	errno = 0;
	link = attach(c, prog, binary, &perf_fd);
	if (!link) {
		r->attach_err = errno ? -errno : -EINVAL;
	} else {
		struct bpf_link_info info;
		__u32 len = sizeof(info);
		long long before;

		if (c->crash)
			raise(SIGKILL);
		if (c->hold_ms)
			usleep(c->hold_ms * 1000);
		memset(&info, 0, sizeof(info));
		if (bpf_link_get_info_by_fd(bpf_link__fd(link), &info, &len))
			r->info_err = -errno;
		else
			r->link_type = info.type;
		before = stats_fd >= 0 ? run_count(bpf_program__fd(prog)) : -1;
		trigger(c);
		if (before >= 0 && strcmp(c->trigger, "none"))
			r->hits = run_count(bpf_program__fd(prog)) - before;
		bpf_link__destroy(link);
	}
	if (perf_fd >= 0)
		close(perf_fd);
close:
	bpf_object__close(obj);
out:
	current_log = NULL;
}

static void print_outcome(const struct test_case *c, const struct outcome *r)
{
	int i;

	printf("{\"id\":%d,\"open\":%d,\"load\":%d,\"attach\":%d,\"link_info\":%d,", c->id,
	       r->open_err, r->load_err, r->attach_err, r->info_err);
	if (r->link_type >= 0)
		printf("\"link_type\":%d,", r->link_type);
	else
		printf("\"link_type\":null,");
	if (r->hits >= 0)
		printf("\"hits\":%lld,", r->hits);
	else
		printf("\"hits\":null,");
	printf("\"log\":[");
	for (i = 0; i < r->log.count; i++) {
		int at = (r->log.next - r->log.count + i + LOG_LINES) % LOG_LINES;
		if (i)
			putchar(',');
		json_string(stdout, r->log.lines[at]);
	}
	printf("]}\n");
	fflush(stdout);
}

static int list_links(void)
{
	__u32 id = 0;

	while (!bpf_link_get_next_id(id, &id)) {
		struct bpf_link_info info;
		struct bpf_prog_info pinfo;
		__u32 len = sizeof(info), plen = sizeof(pinfo);
		int fd = bpf_link_get_fd_by_id(id), pfd;

		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		memset(&pinfo, 0, sizeof(pinfo));
		if (!bpf_link_get_info_by_fd(fd, &info, &len)) {
			pfd = bpf_prog_get_fd_by_id(info.prog_id);
			if (pfd >= 0) {
				bpf_prog_get_info_by_fd(pfd, &pinfo, &plen);
				close(pfd);
			}
			printf("{\"id\":%u,\"type\":%u,\"prog\":", id, info.type);
			json_string(stdout, pinfo.name);
			printf("}\n");
		}
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	char line[8192];
	FILE *in;
	int stats_fd;
	sigset_t none;

	/* secl starts the loader with SIGINT/SIGTERM blocked (secl/verify/process.py) */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	libbpf_set_print(print_fn);
	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("{\"libbpf\":\"%u.%u\"}\n", libbpf_major_version(), libbpf_minor_version());
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "--links"))
		return list_links();
	if (argc != 2) {
		fprintf(stderr, "usage: secl-loader CASES | --version | --links\n");
		return 2;
	}
	in = strcmp(argv[1], "-") ? fopen(argv[1], "r") : stdin;
	if (!in) {
		perror(argv[1]);
		return 2;
	}
	/* run_cnt is only counted while some BPF_ENABLE_STATS fd is open
	 * (kernel/bpf/syscall.c: bpf_enable_runtime_stats) */
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	while (fgets(line, sizeof(line), in)) {
		struct test_case c;
		struct outcome r;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		parse_case(line, &c);
		run_case(&c, stats_fd, &r);
		print_outcome(&c, &r);
	}
	if (stats_fd >= 0)
		close(stats_fd);
	/* in the guest stdout is a serial port: let it drain before init powers off */
	if (isatty(STDOUT_FILENO))
		tcdrain(STDOUT_FILENO);
	return 0;
}
