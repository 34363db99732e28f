// SPDX-License-Identifier: GPL-2.0
/*
 * arch-init: /init of the initramfs that scripts/arch-test boots on i386
 * and arm64, where there is no virtme-ng guest and no shell.
 *
 * Mounts /proc, /sys and /dev, runs each line of /tests ("NAME MODE PATH
 * [ARGS...]"; MODE is "nested" for a program that prints KTAP or TAP itself,
 * "diag" for one that does not; PATH "@efivars" is built in: EFI runtime
 * calls through efivarfs), and prints one KTAP version 1 document with
 * a result per program from its exit status, as scripts/guest/tests does.
 * A nested program's lines are indented as a subtest; a diag program's are
 * diagnostic lines.  Nothing is parsed here: the host reads the document
 * with kunit.py's parser.
 *
 * Every line goes to the kernel log (/dev/kmsg; the kernel runs with
 * printk.devkmsg=on so that none is dropped) behind LINE_PREFIX, where the
 * host finds it in the console log.  Then the machine restarts: qemu runs
 * with -no-reboot and exits.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define LINE_PREFIX "mm-seqid-init: "
#define MAX_TESTS 16
#define MAX_ARGS 16

static FILE *kmsg;

/* One line of the document, as one kernel log record. */
static void emit(const char *fmt, ...)
{
	char line[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(kmsg, LINE_PREFIX "%s\n", line);
	fflush(kmsg);
}

static void mount_or_say(const char *src, const char *dir, const char *type)
{
	mkdir(dir, 0755);
	if (mount(src, dir, type, 0, NULL) && errno != EBUSY)
		emit("# mount %s on %s: %s", type, dir, strerror(errno));
}

/*
 * @efivars: lists the EFI variables and reads each through efivarfs, so
 * that the kernel makes EFI runtime calls (GetNextVariableName,
 * GetVariable). arm64 makes each from a kernel thread that borrows
 * efi_mm with kthread_use_mm().
 */
static int efivars(void)
{
	const char *dir = "/sys/firmware/efi/efivars";
	char path[512], buf[4096];
	struct dirent *d;
	long bytes = 0;
	int n = 0, fd;
	ssize_t r;
	DIR *dp;

	if (mount("efivarfs", dir, "efivarfs", 0, NULL)) {
		printf("mount efivarfs on %s: %s\n", dir, strerror(errno));
		return 1;
	}
	dp = opendir(dir);
	while (dp && (d = readdir(dp))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0) {
			printf("open %s: %s\n", path, strerror(errno));
			return 1;
		}
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			bytes += r;
		close(fd);
		n++;
	}
	if (dp)
		closedir(dp);
	printf("%d EFI variables listed and read (%ld bytes) through runtime calls\n",
	       n, bytes);
	return n > 0 ? 0 : 1;
}

static int is_version_line(const char *s)
{
	return !strcmp(s, "KTAP version 1") || !strcmp(s, "TAP version 13");
}

/*
 * Runs argv with its output on a pipe and passes each line on; returns its
 * exit status, 99 for a nested program that printed no version line or
 * no plan, 128 + N for one killed by signal N.
 */
static int run(const char *name, int nested, char **argv)
{
	int pipefd[2], status, seen_version = 0, seen_plan = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	pid_t pid;
	FILE *out;

	if (pipe(pipefd)) {
		emit("# %s: pipe: %s", name, strerror(errno));
		return 98;
	}
	pid = fork();
	if (pid < 0) {
		emit("# %s: fork: %s", name, strerror(errno));
		return 98;
	}
	if (pid == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		close(pipefd[1]);
		if (!strcmp(argv[0], "@efivars"))
			exit(efivars());
		execv(argv[0], argv);
		printf("exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	out = fdopen(pipefd[0], "r");
	while (out && (len = getline(&line, &cap, out)) >= 0) {
		if (len && line[len - 1] == '\n')
			line[len - 1] = '\0';
		if (!nested) {
			emit("# %s", line);
			continue;
		}
		emit("    %s", line);
		/* As KUnit prints it: the subtest's name after its version line. */
		if (!seen_version && is_version_line(line)) {
			seen_version = 1;
			emit("    # Subtest: %s", name);
		} else if (!strncmp(line, "1..", 3)) {
			seen_plan = 1;
		}
	}
	free(line);
	if (out)
		fclose(out);
	if (waitpid(pid, &status, 0) != pid)
		return 98;
	if (WIFSIGNALED(status))
		status = 128 + WTERMSIG(status);
	else
		status = WEXITSTATUS(status);
	if (nested && (!seen_version || !seen_plan)) {
		emit("# %s: printed no KTAP (no version line or no plan); exit status %d",
		     name, status);
		return 99;
	}
	return status;
}

int main(void)
{
	char *tests[MAX_TESTS][MAX_ARGS + 3];
	int ntests = 0, i, rc, bad[MAX_TESTS] = { 0 };
	struct utsname u;
	char buf[512];
	FILE *list;

	mount_or_say("proc", "/proc", "proc");
	mount_or_say("sysfs", "/sys", "sysfs");
	mount_or_say("devtmpfs", "/dev", "devtmpfs");
	kmsg = fopen("/dev/kmsg", "w");
	if (!kmsg)
		kmsg = stdout;

	/* A line that cannot be run is a failed test, not a silent one. */
	list = fopen("/tests", "r");
	while (list && ntests < MAX_TESTS && fgets(buf, sizeof(buf), list)) {
		char *save = NULL, *tok = strtok_r(buf, " \t\n", &save);
		int n = 0;

		while (tok && n < MAX_ARGS + 2) {
			tests[ntests][n++] = strdup(tok);
			tok = strtok_r(NULL, " \t\n", &save);
		}
		tests[ntests][n] = NULL;
		if (!n)
			continue;
		bad[ntests] = n < 3 || tok ||
			(strcmp(tests[ntests][1], "nested") && strcmp(tests[ntests][1], "diag"));
		ntests++;
	}
	if (list && ntests == MAX_TESTS && fgetc(list) != EOF)
		bad[ntests - 1] = 1;	/* more than MAX_TESTS lines */

	emit("KTAP version 1");
	/* An empty /tests is a plan of none: KUnit alone runs there. */
	emit("1..%d", list ? ntests : 1);
	if (!uname(&u))
		emit("# guest: %s %s %s", u.sysname, u.release, u.machine);
	if (!list) {
		emit("# /tests: %s", strerror(errno));
		emit("not ok 1 tests");
	}
	for (i = 0; i < ntests; i++) {
		const char *name = tests[i][0];
		int nested = !strcmp(tests[i][1], "nested");

		if (bad[i]) {
			emit("# %s: bad line in /tests: want NAME nested|diag PATH [ARGS...], at most %d tests of %d arguments",
			     name, MAX_TESTS, MAX_ARGS);
			emit("not ok %d %s", i + 1, name);
			continue;
		}
		rc = run(name, nested, &tests[i][2]);
		if (rc == 0)
			emit("ok %d %s", i + 1, name);
		else if (rc == 4)
			emit("ok %d %s # SKIP exit status 4", i + 1, name);
		else {
			emit("# %s: exit status %d", name, rc);
			emit("not ok %d %s", i + 1, name);
		}
	}
	emit("# arch-init: done");
	sync();
	reboot(RB_AUTOBOOT);
	return 1;
}
