// SPDX-License-Identifier: GPL-2.0
/*
 * arch-init: /init of the initramfs that scripts/arch-test boots on i386
 * and arm64, where there is no virtme-ng guest and no shell.
 *
 * Mounts /proc, /sys and /dev, runs each line of /tests ("NAME MODE PATH
 * [ARGS...]"; MODE is "nested" for a program that prints KTAP or TAP itself,
 * "diag" for one that does not), and prints one KTAP version 1 document with
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
	int ntests = 0, i, rc;
	struct utsname u;
	char buf[512];
	FILE *list;

	mount_or_say("proc", "/proc", "proc");
	mount_or_say("sysfs", "/sys", "sysfs");
	mount_or_say("devtmpfs", "/dev", "devtmpfs");
	kmsg = fopen("/dev/kmsg", "w");
	if (!kmsg)
		kmsg = stdout;

	list = fopen("/tests", "r");
	while (list && ntests < MAX_TESTS && fgets(buf, sizeof(buf), list)) {
		char *save = NULL, *tok = strtok_r(buf, " \t\n", &save);
		int n = 0;

		while (tok && n < MAX_ARGS + 2) {
			tests[ntests][n++] = strdup(tok);
			tok = strtok_r(NULL, " \t\n", &save);
		}
		tests[ntests][n] = NULL;
		if (n >= 3)
			ntests++;
	}

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
