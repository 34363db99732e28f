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

# boot_report KERNEL LOG OUT IN_GUEST BOOT -- COMMAND...: boot KERNEL (a
# kernel of kconfig/kernels, or a path: an image as scripts/boot --kernel
# takes it) running COMMAND, whose KTAP (copied to OUT) is nested as
# subtest IN_GUEST; result BOOT passes if COMMAND passed and the kernel
# log has no splat (scripts/boot's exit status).
boot_report() {
	local name=$1 logf=$2 out=$3 in_guest=$4 boot=$5 rc sel
	[ "${6-}" = -- ] || die "boot_report KERNEL LOG OUT IN_GUEST BOOT -- COMMAND...: no --"
	shift 6
	mkdir -p "$LOGS"
	sel=--config=$name
	[[ "$name" != /* ]] || sel=--kernel=$name
	set +e
	"$SCRIPTS/boot" "$sel" --log="$logf" -- "$@" | tee "$out"
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

# ublk_prepare NAME TREE SET: a kselftest install of ublk's selftests for
# the kernel NAME in $MM_SEQID_CACHE/ublk/NAME, as "make -C
# tools/testing/selftests install" lays it out: the kernel's runner,
# kselftest-list.txt naming the tests of SET and the ublk collection of
# tree TREE, with kublk built against TREE's uapi headers and liburing 2.9
# (scripts/deps).  SET: quick (the groups UBLK_QUICK_SET without
# UBLK_TCG_SLOW), all (every TEST_PROGS of the Makefile) or none.  Sets
# UBLK_KSFT to the install, and UBLK_LEFT_OUT (ublk_left_out records it).
UBLK_QUICK_SET="generic null loop"
# Left out of the quick set because they fail under TCG on the base kernel
# as well (measured, see Documentation/testing.md): generic_06 wants dd to
# see an error within 5 s of the daemon's death, recover_03 outruns the
# 150 s kselftest timeout.  SET all runs them.
UBLK_TCG_SLOW="test_generic_06.sh test_recover_03.sh"
UBLK_KSFT=
UBLK_LEFT_OUT=()
# left_out_skips WHAT ENTRY...: a skip result "WHAT selftest TEST" for
# each ENTRY "TEST: why" that a *_prepare left out.
left_out_skips() {
	local what=$1 t
	shift
	for t in "$@"; do
		result skip "$what selftest ${t%%: *}" "${t#*: }"
	done
}
# ublk_left_out: a skip result for each test ublk_prepare left out.
ublk_left_out() { left_out_skips ublk "${UBLK_LEFT_OUT[@]}"; }
ublk_prepare() {
	local name=$1 tree=$2 set=$3 work ksft liburing c srcs=() tests=() re
	liburing=$MM_SEQID_CACHE/tools/liburing/usr
	[ -f "$liburing/lib/x86_64-linux-gnu/liburing.a" ] ||
		fatal "ublk: liburing" "liburing 2.9 missing in $liburing: run scripts/deps"
	command -v fio >/dev/null || fatal "ublk: fio" "fio not found: run scripts/deps (apt-get install fio): most ublk selftests need it"
	banner "kublk for $name"
	work=$MM_SEQID_CACHE/ublk/$name
	ksft=$work/kselftest
	rm -rf "$work"
	kselftest_install "$ksft" "$tree" ublk
	# headers_install needs no .config: a build directory of its own.
	make -s -C "$tree" O="$work/obj" headers_install INSTALL_HDR_PATH="$work/hdr" >/dev/null ||
		fatal "ublk: headers" "make headers_install of $tree failed"
	cp -r "$tree/tools/testing/selftests/ublk/." "$ksft/ublk/"
	for c in "$ksft"/ublk/*.c; do
		[ "${c##*/}" = metadata_size.c ] || srcs+=("$c")
	done
	(cd "$ksft/ublk" &&
		gcc -O2 -Wall -D_GNU_SOURCE -I "$work/hdr/include" -I "$liburing/include" \
			-o kublk "${srcs[@]}" \
			"$liburing/lib/x86_64-linux-gnu/liburing.a" -lpthread -lm &&
		gcc -O2 -Wall -D_GNU_SOURCE -I "$work/hdr/include" -o metadata_size metadata_size.c) ||
		fatal "ublk: kublk" "kublk does not build against $tree's headers and liburing"
	# The tests of the Makefile, in its order.
	mapfile -t tests < <(sed -n 's/^TEST_PROGS *+\?= *\(test_.*\.sh\)$/\1/p' "$ksft/ublk/Makefile")
	[ ${#tests[@]} -gt 0 ] || fatal "ublk: selftests" "no TEST_PROGS in $ksft/ublk/Makefile"
	case "$set" in
	none) tests=() ;;
	all) ;;
	quick)
		re="^test_($(tr ' ' '|' <<<"$UBLK_QUICK_SET"))_"
		mapfile -t tests < <(printf '%s\n' "${tests[@]}" | grep -E "$re" |
			grep -vxF -f <(tr ' ' '\n' <<<"$UBLK_TCG_SLOW"))
		;;
	*) die "ublk_prepare: SET is quick, all or none, not '$set'" ;;
	esac
	# A test that needs a tool this machine lacks (the guest runs the
	# host's programs) would skip inside the guest, where the test
	# kernel allows no skip: it is left out here, and the caller records
	# it as a skip of its own (UBLK_LEFT_OUT, "TEST: why").
	UBLK_LEFT_OUT=()
	local t keep=()
	for t in "${tests[@]}"; do
		if grep -q bpftrace "$ksft/ublk/$t" && ! command -v bpftrace >/dev/null; then
			UBLK_LEFT_OUT+=("$t: needs bpftrace, which is not installed")
		else
			keep+=("$t")
		fi
	done
	tests=("${keep[@]}")
	log "${#tests[@]} ublk selftests for $name: ${tests[*]}"
	kselftest_list "$ksft" ublk "${tests[@]}"
	stage_end
	# shellcheck disable=SC2034 # for the caller
	UBLK_KSFT=$ksft
}

# futex_prepare NAME [REV]: the kernel's futex selftests
# (tools/testing/selftests/futex/functional) of the series, compiled as
# their Makefile compiles them, into $MM_SEQID_CACHE/futex/NAME, with
# futex-list.txt naming the programs to run: those functional/run.sh runs,
# in its order, and robust_list, which run.sh leaves out (its death wake
# uses shared anonymous keys).  Sources come from commit REV (default:
# branch mm-seqid, the series) by git archive, not from the series tree's checkout, which
# scripts/check-series may be moving; the uapi headers from the base
# worktree (the series changes none).  The same programs run on the base
# (Debian's kernel) and on the series, and every one must pass on both.
# Sets FUTEX_KSFT to the directory and FUTEX_LEFT_OUT ("PROGRAM: why", for
# futex_left_out).
FUTEX_KSFT=
FUTEX_LEFT_OUT=()
futex_left_out() { left_out_skips futex "${FUTEX_LEFT_OUT[@]}"; }
futex_prepare() {
	local name=$1 rev=${2:-mm-seqid} work src basewt hdr p progs=() built=() broken=()
	work=$MM_SEQID_CACHE/futex/$name
	banner "futex selftests for $name"
	rm -rf "$work"
	mkdir -p "$work/src" "$work/bin"
	# shellcheck disable=SC2153 # TREE: the series tree (lib.sh)
	git -C "$TREE" archive "$rev" tools/testing/selftests/futex \
		tools/testing/selftests/kselftest.h tools/testing/selftests/kselftest_harness.h |
		tar -x -C "$work/src" ||
		fatal "futex: sources" "git archive of mm-seqid's futex selftests failed"
	# The base's uapi headers, once per base commit.
	basewt=$(base_worktree)
	hdr=$MM_SEQID_CACHE/futex/hdr-$(git -C "$basewt" rev-parse HEAD)
	if [ ! -f "$hdr/include/linux/futex.h" ]; then
		# Made aside and renamed: two jobs may make it at once.
		rm -rf "$hdr.$$" "$hdr.obj.$$"
		make -s -C "$basewt" O="$hdr.obj.$$" headers_install INSTALL_HDR_PATH="$hdr.$$" >/dev/null ||
			fatal "futex: headers" "make headers_install of $basewt failed"
		rm -rf "$hdr.obj.$$"
		mv -T "$hdr.$$" "$hdr" 2>/dev/null || rm -rf "$hdr.$$"
	fi
	src=$work/src/tools/testing/selftests/futex/functional
	mapfile -t progs < <(sed -n 's|^\./\([a-z_0-9]*\).*|\1|p' "$src/run.sh")
	[ ${#progs[@]} -gt 5 ] || fatal "futex: selftests" "no programs found in $src/run.sh"
	progs+=(robust_list)
	# Left out, each with the reason, and recorded as a skip (the test
	# kernel's guest allows none): what would skip inside both guests,
	# whatever the kernel.
	FUTEX_LEFT_OUT=()
	local keep=()
	for p in "${progs[@]}"; do
		case "$p" in
		futex_priv_hash) FUTEX_LEFT_OUT+=("$p: its one case ends in a skip on fewer than 17 CPUs; the guests have 2") ;;
		futex_numa_mpol) FUTEX_LEFT_OUT+=("$p: built without libnuma 2.0.18 or later (as here) it skips, and built with it it needs NUMA, which the test kernel has not") ;;
		*) keep+=("$p") ;;
		esac
	done
	progs=("${keep[@]}")
	# Cases that race under TCG, left out by name (kselftest_harness's
	# -T): robust_list's own comment says that its parent must be in
	# futex() before the dying child's wake, which a sleep only makes
	# likely; under TCG both fail on Debian's kernel of the base too.
	# futex_requeue's requeue_multiple: its ten waiters time out after
	# 11 s, and futex_wait_for_thread() waits for each in turn until
	# /proc/TID/wchan starts with "futex"; the test kernel inlines
	# futex_do_wait() into __futex_wait, where a waiter then sleeps, so
	# each wait takes its full second and, under TCG, the last waiters
	# time out first (ETIMEDOUT, then EIO).  requeue_single, one waiter,
	# still runs.
	local -A futex_args=([robust_list]="-T test_robustness -T test_robust_list_multiple_elements"
		[futex_requeue]="-T requeue_multiple")
	FUTEX_LEFT_OUT+=("robust_list test_robustness, test_robust_list_multiple_elements: they race the owner's death (robust_list.c says so) and fail under TCG on the base as well"
		"futex_requeue requeue_multiple: its helper waits a full second per waiter (it looks for \"futex\" in wchan; the test kernel inlines futex_do_wait() into __futex_wait(), where waiters sleep), so under TCG its ten waiters' 11 s timeout runs out")
	# What the Makefile builds and neither run.sh nor this list runs.
	mapfile -t built < <(sed -n '/^TEST_GEN_PROGS/,/^$/p' "$src/Makefile" | grep -oE '\b[a-z][a-z_0-9]+\b')
	for p in "${built[@]}"; do
		[[ " ${progs[*]} " == *" $p "* ]] || [[ "${FUTEX_LEFT_OUT[*]}" == *"$p: "* ]] ||
			FUTEX_LEFT_OUT+=("$p: functional/run.sh does not run it")
	done
	for p in "${progs[@]}"; do
		# As functional/Makefile and lib.mk compile them.
		(cd "$src" && gcc -g -O2 -Wall -pthread -D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64 \
			-D_GNU_SOURCE= -I../include -I../../ -I"$hdr/include" \
			-o "$work/bin/$p" "$p.c" -lpthread -lrt) ||
			broken+=("$p")
	done
	[ ${#broken[@]} = 0 ] || fatal "futex: selftests" "do not compile: ${broken[*]}"
	for p in "${progs[@]}"; do
		echo "$p${futex_args[$p]:+ ${futex_args[$p]}}"
	done >"$work/bin/futex-list.txt"
	log "${#progs[@]} futex selftests for $name: ${progs[*]}"
	stage_end
	# shellcheck disable=SC2034 # for the caller
	FUTEX_KSFT=$work/bin
}
