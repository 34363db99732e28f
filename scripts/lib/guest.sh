# shellcheck shell=bash
# Part of scripts/lib.sh (which sources it): what runs in a guest, and reading
# what it reports.

# rust_tests_bin NAME: builds the rust-tests workspace (release, locked)
# and prints the path of its binary NAME (mm-seqid-harness,
# mm-seqid-ublk-aba, mm-seqid-bench).  Cargo's output goes to stderr.
rust_tests_bin() {
	(cd "$REPO/rust-tests" && cargo build --locked --release --quiet >&2) ||
		die "cargo build in rust-tests failed (see above)"
	[ -x "$REPO/rust-tests/target/release/$1" ] || die "rust-tests has no binary $1"
	echo "$REPO/rust-tests/target/release/$1"
}

# kselftest_install DIR SRC COLLECTION TEST...: a kselftest install in DIR
# as "make -C tools/testing/selftests install" lays it out, from the
# selftests of tree SRC: the kernel's runner (run_kselftest.sh,
# kselftest/), and kselftest-list.txt naming TEST... of COLLECTION (see
# kselftest_list).  The caller puts the collection's files in DIR/COLLECTION.
kselftest_install() {
	local dir=$1 src=$2/tools/testing/selftests coll=$3
	shift 3
	rm -rf "$dir"
	mkdir -p "$dir/$coll"
	cp "$src/run_kselftest.sh" "$dir/"
	cp -r "$src/kselftest" "$dir/"
	[ -f "$src/$coll/settings" ] && cp "$src/$coll/settings" "$dir/$coll/"
	kselftest_list "$dir" "$coll" "$@"
}
# kselftest_list DIR COLLECTION TEST...: the tests run_kselftest.sh in DIR
# runs (none if no TEST).
kselftest_list() {
	local dir=$1 coll=$2
	shift 2
	if [ $# -gt 0 ]; then
		printf '%s\n' "${@/#/$coll:}" >"$dir/kselftest-list.txt"
	else
		: >"$dir/kselftest-list.txt"
	fi
}

# SPLAT_RE: a kernel report in a guest's log.  The report headers of the
# kernel's checkers (KASAN, KFENCE and lockdep print BUG: or WARNING:
# lines; ODEBUG and UBSAN their own), and any trace.
# shellcheck disable=SC2034 # used by scripts/boot and scripts/boot-count
SPLAT_RE='Oops|BUG:|WARNING:|KASAN|KFENCE|UBSAN|ODEBUG|Kernel panic|general protection fault|rcu: INFO|soft lockup|hung_task|refcount_t:|list_(add|del) corruption|Call Trace:|DEBUG_LOCKS_WARN_ON|new suspected memory leaks'

# splat_when DMESG SPLAT: says whether the first splat line (SPLAT holds
# "LINE:text" lines of DMESG) came before init started.  A report from
# before init came from the kernel's own boot, before any test ran: the
# reader knows at once where to look.
splat_when() {
	local first init
	first=$(head -1 "$2" | cut -d: -f1)
	init=$(grep -n -m1 -E 'Run /.* as init process|Freeing unused kernel image' "$1" |
		cut -d: -f1 || true)
	if [ -z "$init" ] || [ "$first" -lt "$init" ]; then
		echo "the first came before init started (line $first of the kernel log${init:+, init at line $init}): early boot, before any test ran"
	else
		echo "the first came after init started (line $first, init at line $init): while the tests ran"
	fi
}

# The KUnit suites (SUITE or SUITE:CASE-REGEX) that must have run at boot
# and passed, on every kernel that runs the series' tests.
# shellcheck disable=SC2034 # used by the verbs
KUNIT_SUITES="mm_seqid rust_doctests_kernel:_mm_rs_ ne_misc_dev_test"

# boot_report CONFIG LOG OUT IN_GUEST BOOT -- COMMAND...: boot CONFIG
# running COMMAND, whose KTAP (copied to OUT) is nested as subtest IN_GUEST;
# result BOOT passes if COMMAND passed and the kernel log has no splat
# (scripts/boot's exit status).
boot_report() {
	local name=$1 logf=$2 out=$3 in_guest=$4 boot=$5 rc
	[ "${6-}" = -- ] || die "boot_report CONFIG LOG OUT IN_GUEST BOOT -- COMMAND...: no --"
	shift 6
	mkdir -p "$LOGS"
	set +e
	"$SCRIPTS/boot" --config="$name" --log="$logf" -- "$@" | tee "$out"
	rc=${PIPESTATUS[0]}
	set -e
	subtest "$in_guest" "$out"
	if [ "$rc" = 0 ]; then
		result ok "$boot: tests passed, no kernel splat"
	else
		result fail "$boot" "tests failed or the kernel log has a splat (see $logf and $out)"
	fi
}

# guest_pass CONFIG TAG NAME SUITES -- GUEST-TESTS ARGS: boots kernel
# CONFIG, runs scripts/guest/tests ARGS in it, and records the KTAP it
# prints (the sample's C program, the kselftest, the harness, kmemleak) as
# the subtest NAME, then the boot and its kernel log as one result, and the
# KUnit cases of the space-separated SUITES (scripts/ktap kunit) from the
# boot log as the subtest "NAME: KUnit".  Logs go to $LOGS/TAG-*.  These
# kernels are built for every test: a skipped test is a failure here.
guest_pass() {
	local name=$1 tag=$2 prefix=$3 suites=$4
	shift 5
	# shellcheck disable=SC2154 # skipped: counted by lib/results.sh
	local logf=$LOGS/$tag-boot.log s0=$skipped
	boot_report "$name" "$logf" "$LOGS/$tag-guest.out" \
		"$prefix: in the guest ($name)" "$prefix: boot ($name)" -- \
		"$SCRIPTS/guest/tests" "$@"

	if [ -n "$suites" ]; then
		banner "KUnit ($name)"
		# scripts/boot removed the last boot's kernel log first: a guest
		# that never ran leaves none.
		local json=$LOGS/$tag-kunit.json sel
		read -r -a sel <<<"$suites"
		if [ -f "$logf.dmesg" ] && ktap_parse "$logf.dmesg" "$json" >"$LOGS/$tag-kunit.txt" 2>&1 &&
			"$SCRIPTS/ktap" kunit "$json" "${sel[@]}" >"$LOGS/$tag-kunit.ktap"; then
			subtest "$prefix: KUnit ($name)" "$LOGS/$tag-kunit.ktap"
		else
			result fail "$prefix: KUnit ($name)" "no KUnit results from this boot's log (see $LOGS/$tag-kunit.txt)"
		fi
		stage_end
	fi
	[ "$skipped" = "$s0" ] ||
		result fail "$prefix: no test skips" "$((skipped - s0)) skipped on $name, a kernel built for them"
}
