# shellcheck shell=bash
# Shared by every verb in scripts/.  Sourced, never run.
#
# Everything big lives outside the repo, under $MM_SEQID_CACHE:
#   apt/      the private apt state and the downloaded .deb
#   linux/    the kernel git tree: branch "base" is the pinned base,
#             branch "mm-seqid" is the base with patches/ applied
#             (only scripts/apply moves it)
#   base-worktree/  a worktree of branch base
#   wt/NAME/  worktrees that one verb owns (check-series, mutants)
#   build/NAME/  out-of-tree build directories, one per kernel NAME of
#             kconfig/kernels
#   ccache/   the compiler cache
#   tools/, bin/  sparse, liburing; the compiled C programs
#   negative/, bad-input/  nested caches of their own for the verbs that
#             need a series tree to break (scripts/negative-checks,
#             scripts/bad-input), so that this one never moves
#   logs/     the console logs of the last boots

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPTS=$REPO/scripts
# shellcheck source=scripts/base.conf
. "$SCRIPTS/base.conf"

MM_SEQID_CACHE=${MM_SEQID_CACHE:-$HOME/.cache/mm-seqid}
TREE=${TREE:-$MM_SEQID_CACHE/linux}
BUILD_ROOT=$MM_SEQID_CACHE/build
# shellcheck disable=SC2034 # used by the verbs
LOGS=$MM_SEQID_CACHE/logs
export CCACHE_DIR=${CCACHE_DIR:-$MM_SEQID_CACHE/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-10G}
# Paths below the cache are hashed relative to the build directory: builds
# whose source and build directories sit at the same relative places share
# hits (build/test and linux/ here, and the same two in a nested cache such
# as negative/).  Worktrees elsewhere (base-worktree, wt/*) do not share
# with linux/: their first build is cold.
export CCACHE_BASEDIR=$MM_SEQID_CACHE
export LIBCLANG_PATH=${LIBCLANG_PATH:-/usr/lib/llvm-19/lib}
PATH=$HOME/.cargo/bin:$PATH
export PATH

# The same CC on every make call, or kbuild rebuilds everything.  HOSTCC stays
# plain gcc: Rust host programs link with -Clinker=$(HOSTCC), one word.
KMAKE_CC="ccache gcc"
JOBS=${JOBS:-$(nproc)}

PROG=$(basename "$0")

log() { printf '[%s] %s\n' "$PROG" "$*" >&2; }
die() { printf '[%s] error: %s%s\n' "$PROG" "$*" "$(space_hint)" >&2; exit 1; }

# space_hint: if the file system of the cache has less than 512 MiB free,
# says so, for the end of an error message.
space_hint() {
	local dir=$MM_SEQID_CACHE avail
	while [ ! -d "$dir" ] && [ "$dir" != / ]; do dir=$(dirname "$dir"); done
	avail=$(df -Pk "$dir" 2>/dev/null | awk 'NR == 2 { print $4 }')
	[ -n "$avail" ] && [ "$avail" -lt $((512 * 1024)) ] || return 0
	printf '\n[%s] %s has only %s KiB free: make room, or set MM_SEQID_CACHE to a larger disk, and rerun' \
		"$PROG" "$dir" "$avail"
}

# Ctrl-C or a kill: say where, and that a rerun resumes.  Every verb leaves
# what it was doing either done or undone (make deletes a half-written
# target; scripts/base unpacks in a temporary directory; scripts/apply
# aborts git am on its next run).
KMAKE_PID=
on_interrupt() {
	# Ignored while make winds down: make passes SIGTERM on to the
	# process group.
	trap '' INT TERM
	if [ -n "$KMAKE_PID" ]; then
		# make deletes what it was writing, as on Ctrl-C in a terminal.
		kill -TERM "$KMAKE_PID" 2>/dev/null || true
		wait "$KMAKE_PID" 2>/dev/null || true
	fi
	printf '\n[%s] interrupted%s; rerun the same command to resume\n' "$PROG" \
		"${STAGE:+ during \"$STAGE\"}" >&2
	exit 130
}
trap on_interrupt INT TERM

# banner STAGE: print a stage header and remember when it started.
STAGE=
STAGE_T0=0
banner() {
	stage_end
	STAGE=$1
	STAGE_T0=$(date +%s)
	printf '\n==== %s: %s ====\n' "$PROG" "$STAGE" >&2
}
stage_end() {
	if [ -n "$STAGE" ]; then
		printf '==== %s: %s done in %ss ====\n' "$PROG" "$STAGE" \
			"$(($(date +%s) - STAGE_T0))" >&2
		STAGE=
	fi
}

need_cmd() {
	local cmd=$1 hint=$2
	command -v "$cmd" >/dev/null 2>&1 ||
		die "'$cmd' not found. $hint"
}

# A build directory of a kernel whose cc column in kconfig/kernels is llvm
# or llvm-N holds this file, which names the LLVM bin directory its clang
# and lld come from on every make call (empty: LLVM_DIR).  The debug kernel
# needs clang: the kernel only allows Rust with KASAN under clang.
LLVM_DIR=${LLVM_DIR:-/usr/lib/llvm-19/bin/}
LLVM_MARK=.mm-seqid-llvm
# A build directory of a kernel for another architecture than x86_64 holds
# this file, which names it (kconfig/kernels' arch column); kmake passes
# ARCH, and for arm64 with gcc the cross compiler, on every make call.
ARCH_MARK=.mm-seqid-arch
# The cross compilers' prefixes (Debian's gcc-aarch64-linux-gnu and
# gcc-i686-linux-gnu; the i386 kernel is built by the host's gcc with -m32,
# the i386 programs by the cross gcc and its libc).
ARM64_CROSS=aarch64-linux-gnu-
I386_CROSS=i686-linux-gnu-
# cross_cc ARCH: the gcc that builds programs for ARCH (i386 or arm64).
cross_cc() {
	case "$1" in
	i386) echo "${I386_CROSS}gcc" ;;
	arm64) echo "${ARM64_CROSS}gcc" ;;
	*) die "cross_cc: no cross compiler for '$1'" ;;
	esac
}

# kernel_image NAME: the path of the bootable image of build NAME.
kernel_image() {
	case "$(cat "$BUILD_ROOT/$1/$ARCH_MARK" 2>/dev/null)" in
	arm64) echo "$BUILD_ROOT/$1/arch/arm64/boot/Image" ;;
	*) echo "$BUILD_ROOT/$1/arch/x86/boot/bzImage" ;;
	esac
}

# kmake NAME ARGS...: make in the tree with the build dir of config NAME.
# make runs in the background and is waited for, so that Ctrl-C reaches
# on_interrupt at once (bash runs no trap while a foreground child that
# handles SIGINT itself, as make does, is running).
kmake() {
	local name=$1 rc=0 llvm arch=() cc=$KMAKE_CC
	shift
	case "$(cat "$BUILD_ROOT/$name/$ARCH_MARK" 2>/dev/null)" in
	i386) arch=(ARCH=i386) ;;
	arm64)
		arch=(ARCH=arm64)
		[ -f "$BUILD_ROOT/$name/$LLVM_MARK" ] ||
			{ arch+=("CROSS_COMPILE=$ARM64_CROSS"); cc="ccache ${ARM64_CROSS}gcc"; }
		;;
	esac
	if [ -f "$BUILD_ROOT/$name/$LLVM_MARK" ]; then
		llvm=$(cat "$BUILD_ROOT/$name/$LLVM_MARK")
		llvm=${llvm:-$LLVM_DIR}
		# bindgen parses with the libclang of the same LLVM: the flags
		# kbuild gives clang are those that clang knows.
		LIBCLANG_PATH=${llvm%/bin/}/lib make -C "$TREE" O="$BUILD_ROOT/$name" "${arch[@]}" \
			LLVM="$llvm" CC="ccache ${llvm}clang" -j"$JOBS" "$@" &
	else
		make -C "$TREE" O="$BUILD_ROOT/$name" "${arch[@]}" CC="$cc" \
			-j"$JOBS" "$@" &
	fi
	KMAKE_PID=$!
	wait "$KMAKE_PID" || rc=$?
	KMAKE_PID=
	return "$rc"
}

# private_apt DIR TYPES SUITE: an apt configuration of our own under DIR, so
# that the machine's sources are never touched.  Sets PRIVATE_APT to the
# apt-get options that use it, and updates its lists.
private_apt() {
	local dir=$1 types=$2 suite=$3
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
	cat >"$dir/$suite-$types.sources" <<SRC
Types: $types
URIs: $BASE_MIRROR
Suites: $suite
Components: main
Signed-By: $BASE_KEYRING
SRC
	PRIVATE_APT=(-q -o "Dir::Etc::sourcelist=$dir/$suite-$types.sources"
		-o Dir::Etc::sourceparts=/dev/null -o "Dir::State::Lists=$dir/lists"
		-o "Dir::Cache=$dir/cache" -o APT::Sandbox::User=root)
	apt-get "${PRIVATE_APT[@]}" update >/dev/null
}

# fetch_deb DIR SUITE PKG VERSION SHA256 HINT: sets FETCHED_DEB to the .deb
# of PKG=VERSION in DIR, downloaded from SUITE through private_apt unless a
# copy with that sha256 is already there.  A copy that does not match is
# removed and fetched again; a download that does not match is removed and
# the run stops.  HINT ends the message when the download fails.
FETCHED_DEB=
# shellcheck disable=SC2034 # FETCHED_DEB is read by the callers
fetch_deb() {
	local dir=$1 suite=$2 pkg=$3 version=$4 sha=$5 hint=$6 f got
	local glob="${pkg}_${version//:/%3a}_*.deb"
	mkdir -p "$dir"
	for f in "$dir"/$glob; do
		[ -f "$f" ] || continue
		if echo "$sha  $f" | sha256sum -c --status; then
			FETCHED_DEB=$f
			return 0
		fi
		log "cached $f has sha256 $(sha256sum "$f" | cut -d' ' -f1), want $sha: removed, downloading again"
		rm -f "$f"
	done
	banner "download $pkg $version"
	private_apt "$dir" deb "$suite" ||
		die "apt-get update of $suite from $BASE_MIRROR failed (needed for $pkg)"
	(cd "$dir" && apt-get "${PRIVATE_APT[@]}" download "$pkg=$version") ||
		die "could not download $pkg=$version from $suite; $hint"
	for f in "$dir"/$glob; do [ -f "$f" ] && break; done
	[ -f "$f" ] || die "apt-get download left no $glob in $dir"
	if ! echo "$sha  $f" | sha256sum -c --status; then
		got=$(sha256sum "$f" | cut -d' ' -f1)
		rm -f "$f"
		die "sha256 mismatch for the download of $f: expected $sha, got $got (removed)"
	fi
	FETCHED_DEB=$f
}

# base_worktree: prints the path of a detached worktree of branch base, made
# on first use, for builds of the kernel without the series.
base_worktree() {
	local wt=$MM_SEQID_CACHE/base-worktree
	[ -d "$wt" ] || git -C "$TREE" worktree add -q --detach "$wt" base >&2 ||
		die "could not add a worktree of branch base at $wt"
	echo "$wt"
}

# The kernel table: every kernel the project builds, one row each (see the
# file's head).  Only scripts/build turns a row into a .config.
KERNELS=$REPO/kconfig/kernels

# kernel_names: the names of the table, in order.
kernel_names() { awk '!/^#/ && NF { print $1 }' "$KERNELS"; }

# kernel_row NAME: reads NAME's row into ROW_TREE (the tree's path),
# ROW_ARCH (x86_64, i386 or arm64), ROW_CC (gcc or llvm), ROW_LLVM (for
# llvm: the LLVM bin directory), ROW_START (a make target), ROW_FRAGS
# (fragment files, in order) and ROW_NEED (.config lines to verify; empty:
# every line of the fragments).  Dies on an unknown name or a malformed row.
kernel_row() {
	local row tree arch cc start frags need f list
	row=$(awk -v n="$1" '!/^#/ && $1 == n' "$KERNELS")
	[ -n "$row" ] || die "no kernel '$1' in kconfig/kernels; it has: $(kernel_names | tr '\n' ' ')"
	[ "$(wc -w <<<"$row")" = 7 ] || die "kconfig/kernels: row '$1' does not have 7 columns"
	read -r _ tree arch cc start frags need <<<"$row"
	case "$tree" in
	series) ROW_TREE=$TREE ;;
	base) ROW_TREE=$(base_worktree) ;;
	wt/*) ROW_TREE=$MM_SEQID_CACHE/$tree ;;
	*) die "kconfig/kernels: $1: tree is series, base or wt/NAME, not '$tree'" ;;
	esac
	# shellcheck disable=SC2034 # ROW_ARCH: for scripts/build
	case "$arch" in
	x86_64 | i386 | arm64) ROW_ARCH=$arch ;;
	*) die "kconfig/kernels: $1: arch is x86_64, i386 or arm64, not '$arch'" ;;
	esac
	# shellcheck disable=SC2034
	case "$cc" in
	gcc) ROW_CC=gcc ROW_LLVM= ;;
	llvm) ROW_CC=llvm ROW_LLVM=$LLVM_DIR ;;
	llvm-[1-9]*) ROW_CC=llvm ROW_LLVM=/usr/lib/$cc/bin/ ;;
	*) die "kconfig/kernels: $1: cc is gcc, llvm or llvm-N, not '$cc'" ;;
	esac
	# shellcheck disable=SC2034 # ROW_CC, ROW_LLVM and ROW_START: for scripts/build
	ROW_START=$start
	ROW_FRAGS=()
	ROW_NEED=()
	# "=NAME": the fragments of kernel NAME, so that kernels meant to be
	# the same cannot drift apart.
	if [[ "$frags" == =* ]]; then
		frags=$(awk -v n="${frags#=}" '!/^#/ && $1 == n { print $6 }' "$KERNELS")
		if [ -z "$frags" ] || [[ "$frags" == =* ]]; then
			die "kconfig/kernels: $1: '=NAME' must name a row with fragments of its own"
		fi
	fi
	if [ "$frags" != - ]; then
		IFS=, read -r -a list <<<"$frags"
		for f in "${list[@]}"; do
			[ -f "$REPO/kconfig/$f.config" ] ||
				die "kconfig/kernels: $1: no fragment kconfig/$f.config"
			ROW_FRAGS+=("$REPO/kconfig/$f.config")
		done
	fi
	if [ "$need" != - ]; then
		IFS=, read -r -a list <<<"$need"
		for f in "${list[@]}"; do
			case "$f" in
			'!CONFIG_'*) ROW_NEED+=("# ${f#!} is not set") ;;
			CONFIG_*=*) ROW_NEED+=("$f") ;;
			*) die "kconfig/kernels: $1: '$f' is neither CONFIG_X=V nor !CONFIG_X" ;;
			esac
		done
	fi
}

# own_worktree NAME [REV]: the worktree kernel NAME builds from (a wt/ row
# of kconfig/kernels), added at REV (default: the series branch) if
# missing, and locked for the calling verb until it exits (fd 9): one verb
# owns and moves it.  Sets WT to its path.
own_worktree() {
	local rev=${2:-mm-seqid}
	kernel_row "$1"
	WT=$ROW_TREE
	[[ "$WT" == "$MM_SEQID_CACHE"/wt/* ]] ||
		die "kernel $1 does not build from a worktree of its own (kconfig/kernels: wt/NAME)"
	mkdir -p "$(dirname "$WT")"
	exec 9>"$WT.lock"
	flock -n 9 || die "another run owns $WT (lock $WT.lock)"
	if [ ! -d "$WT" ]; then
		git -C "$TREE" worktree prune
		git -C "$TREE" worktree add -q --detach "$WT" "$rev" || die "could not add a worktree at $WT"
	fi
	rm -f "$(git -C "$WT" rev-parse --git-dir)/index.lock"
}

# kernel_exists NAME [REV]: true if the Kconfig files of NAME's tree, as it
# is now (or at commit REV), define every symbol NAME's row needs (a row for
# a feature symbol exists only in a series that has one).
kernel_exists() {
	local line sym at=(${2:+"$2"})
	kernel_row "$1"
	for line in "${ROW_NEED[@]}"; do
		sym=${line#\# }
		sym=${sym#CONFIG_}
		sym=${sym%%[= ]*}
		git -C "$ROW_TREE" grep -qE "^(menu)?config ${sym}[[:space:]]*\$" "${at[@]}" -- '*Kconfig*' || return 1
	done
}

# nested_cache DIR: makes DIR a cache of its own for a throw-away series
# tree (the verbs that must break one: scripts/negative-checks,
# scripts/bad-input).  Its kernel repository is a local clone of ours
# whose branch base follows ours, with no mm-seqid branch, so that the
# nested scripts/base and scripts/apply work there as on a new machine.
# Only the compiler cache is shared (same relative layout: ccache hits).
# Sets NESTED_ENV to the environment to run a verb with there:
# env "${NESTED_ENV[@]}" VERB.  Call it in the verb's own shell, so that
# its die stops the verb.
NESTED_ENV=()
nested_cache() {
	local dir=$1 src=$1/linux-src want have
	mkdir -p "$dir"
	want=$(git -C "$TREE" rev-parse base)
	if [ ! -d "$src" ]; then
		git clone -q --no-checkout "$TREE" "$src" ||
			die "could not clone $TREE into $src"
	fi
	git -C "$src" fetch -q origin '+refs/heads/base:refs/remotes/origin/base'
	git -C "$src" update-ref --no-deref HEAD refs/remotes/origin/base
	git -C "$src" branch -q -D mm-seqid >/dev/null 2>&1 || true
	have=$(git -C "$src" rev-parse -q --verify refs/heads/base || true)
	if [ -n "$have" ] && [ "$have" != "$want" ]; then
		# Our base moved (scripts/base.conf): start the nested trees over.
		git -C "$src" worktree remove -f "$dir/base-worktree" >/dev/null 2>&1 || true
		git -C "$src" worktree remove -f "$dir/linux" >/dev/null 2>&1 || true
		rm -rf "$dir/linux" "$dir/base-worktree" "$dir/build"
		git -C "$src" worktree prune
		git -C "$src" branch -q -D base mm-seqid >/dev/null 2>&1 || true
	fi
	# shellcheck disable=SC2034 # for the caller
	NESTED_ENV=(MM_SEQID_CACHE="$dir" TREE="$dir/linux" KERNEL_SRC="$src"
		KERNEL_BASE=origin/base CCACHE_DIR="$CCACHE_DIR")
}

# rust_tests_bin NAME: builds the rust-tests workspace (release, locked)
# and prints the path of its binary NAME (mm-seqid-harness,
# mm-seqid-ublk-aba, mm-seqid-bench).  Cargo's output goes to stderr.
rust_tests_bin() {
	(cd "$REPO/rust-tests" && cargo build --locked --release --quiet >&2) ||
		die "cargo build in rust-tests failed (see above)"
	[ -x "$REPO/rust-tests/target/release/$1" ] || die "rust-tests has no binary $1"
	echo "$REPO/rust-tests/target/release/$1"
}

# git_am DIR PATCH...: git am PATCH... in the worktree DIR, with one fixed
# identity and the author dates, so that the same patches make the same
# commits.  On failure: prints git's output, aborts the am, and sets
# AM_ERROR to a message that names the patch and the file that failed.
git_am() {
	local dir=$1 amlog cur file num pfile=
	shift
	amlog=$(mktemp)
	if git -C "$dir" -c user.name=mm-seqid -c user.email=mm-seqid@localhost \
		am -q --committer-date-is-author-date "$@" >"$amlog" 2>&1; then
		rm -f "$amlog"
		return 0
	fi
	cur=$(git -C "$dir" am --show-current-patch=raw 2>/dev/null | sed -n 's/^Subject: //p' | head -1)
	file=$(grep -m1 -oE '(error: patch failed: [^ ]+|error: [^ ]+: (does not exist in index|already exists in index|patch does not apply))' "$amlog" || true)
	num=$(sed -n 's/^Patch failed at \([0-9]*\).*/\1/p' "$amlog" | head -1)
	[ -z "$num" ] || pfile=$(printf '%s\n' "$@" | sed -n "$((10#$num))p")
	cat "$amlog" >&2
	rm -f "$amlog"
	git -C "$dir" am --abort >/dev/null 2>&1 || true
	# shellcheck disable=SC2034 # for the caller
	AM_ERROR="patch ${pfile:+$(basename "$pfile") }('${cur:-?}') does not apply: ${file:-see above}"
	return 1
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

# series_patches_in DIR: the patches of DIR in order, without the cover letter.
series_patches_in() {
	find "$1" -maxdepth 1 -regextype posix-extended \
		-regex '.*/(v[0-9]+-)?[0-9]{4}-.*\.patch' ! -name '*0000-cover-letter.patch' | sort
}
series_patches() { series_patches_in "$REPO/patches"; }

# checkpatch_strict PATCH: checkpatch.pl --strict on PATCH (an absolute
# path: given one that starts with patches/, checkpatch takes every line
# for a file's).  Prints the findings and fails on any.  UNKNOWN_COMMIT_ID
# is off, and only it: the base is one imported commit with no history, so
# every Fixes: id is unknown here (ublk's was checked against the mailing
# list archives, where mainline fixes cite the same line).
checkpatch_strict() {
	local out
	out=$("$TREE/scripts/checkpatch.pl" --strict --quiet --ignore UNKNOWN_COMMIT_ID "$1" 2>&1)
	[ -n "$out" ] || return 0
	printf '%s\n' "$out"
	return 1
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

# Results: every checking verb writes KTAP version 1
# (Documentation/dev-tools/ktap.rst): one line per check as it runs, on
# stdout, and the whole document, plan first, to $LOGS/VERB.ktap (or to
# $MM_SEQID_KTAP: scripts/test gives each verb it runs a file of its own and
# nests it as a subtest).  Nested results (the guest's tests, KUnit, a verb
# run by another) are subtests.  Everything is counted by one parser,
# kunit.py's (KUNIT_PY below); "N passed, N failed" comes last.
#   result ok|fail|skip NAME [DETAIL]; check NAME CMD...;
#   subtest NAME FILE [DETAIL]; finish; fatal NAME DETAIL.
KTAP_FILE=${MM_SEQID_KTAP:-$LOGS/$PROG.ktap}
unset MM_SEQID_KTAP
T0=$(date +%s)
ktap_n=0
ktap_lines=()
# What the results recorded so far add up to; finish checks the parser's
# count of the whole document against it.
passed=0
failed=0
skipped=0
failures=()
skips=()
ktap_emit() {
	printf '%s\n' "$@"
	ktap_lines+=("$@")
}
result() {
	local verdict=$1 name=${2//#/} detail=${3:-}
	name=${name//$'\n'/ }
	detail=${detail//$'\n'/ }
	ktap_n=$((ktap_n + 1))
	case "$verdict" in
	ok)
		passed=$((passed + 1))
		ktap_emit "ok $ktap_n $name"
		;;
	skip)
		skipped=$((skipped + 1))
		skips+=("$name${detail:+: $detail}")
		ktap_emit "ok $ktap_n $name # SKIP${detail:+ ${detail//#/}}"
		;;
	*)
		failed=$((failed + 1))
		failures+=("$name${detail:+: $detail}")
		[ -z "$detail" ] || ktap_emit "# $name: $detail"
		ktap_emit "not ok $ktap_n $name"
		;;
	esac
}
# check NAME CMD...: run CMD, record the result under NAME.
check() {
	local name=$1
	shift
	if "$@"; then
		result ok "$name"
	else
		result fail "$name"
	fi
}

# kunit.py of the kernel tree in the cache (the series tree; the parser is
# the base's, the series does not touch it).
KUNIT_PY=$TREE/tools/testing/kunit/kunit.py
[ -f "$KUNIT_PY" ] || KUNIT_PY=$MM_SEQID_CACHE/linux/tools/testing/kunit/kunit.py
# ktap_parse FILE JSON: kunit.py's parser, FILE's KTAP (or a kernel log
# holding KTAP) to JSON.  Its summary goes to stdout.  Its exit status says
# whether a test failed, not whether it could parse: check that JSON was
# written.
ktap_parse() {
	[ -f "$KUNIT_PY" ] || { log "$KUNIT_PY missing: run scripts/base"; return 1; }
	rm -f "$2"
	python3 "$KUNIT_PY" parse --json="$(realpath "$2")" "$(realpath "$1")" || true
	[ -s "$2" ]
}
# ktap_counts FILE [NAME]: "fail NAME" and "skip NAME" lines for FILE's
# failed and skipped tests, then "PASSED FAILED SKIPPED BROKEN"
# (scripts/ktap counts; BROKEN is 1 if a result is missing or the plan does
# not match).  NAME names FILE in a message.
ktap_counts() {
	local json out
	json=$(mktemp)
	if ktap_parse "$1" "$json" >/dev/null 2>&1 &&
		out=$("$SCRIPTS/ktap" counts "$json") &&
		[[ $(tail -1 <<<"$out") =~ ^[0-9]+\ [0-9]+\ [0-9]+\ [01]$ ]]; then
		printf '%s\n' "$out"
	else
		echo "fail kunit.py's parser could not read ${2:-$1}"
		echo "0 1 0 1"
	fi
	rm -f "$json"
}

# subtest NAME FILE [DETAIL]: the KTAP document in FILE (from its first
# version line; lines before it are not KTAP) as one nested result.  It
# passes if the parser finds no failed test, no missing result and no plan
# mismatch in it, and DETAIL (a reason it failed all the same: an exit
# status) is empty.  A document that is cut off (a guest that died
# mid-test) or malformed is not nested: the parser would read the lines
# after it as its own.  It is one failure, its results listed.
subtest() {
	local name=${1//#/} file=$2 detail=${3:-} sub tmp counts p f s broken line
	sub=$(sed -n '/^\(KTAP version 1\|TAP version 13\)$/,$p' "$file" 2>/dev/null) || true
	if [ -z "$sub" ]; then
		result fail "$name" "no KTAP in $file${detail:+; $detail}"
		return
	fi
	tmp=$(mktemp)
	printf '%s\n' "$sub" >"$tmp"
	counts=$(ktap_counts "$tmp" "$file")
	rm -f "$tmp"
	read -r p f s broken < <(tail -1 <<<"$counts")
	if [ "$broken" = 1 ]; then
		sed '$d; s/^/# '"${name//\//\\/}"': /' <<<"$counts"
		result fail "$name" "the KTAP in $file is cut off or malformed ($p passed, $f failed, $s skipped as far as it goes)${detail:+; $detail}"
		return
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	while IFS= read -r line; do
		case "$line" in
		"fail "*) failures+=("$name / ${line#fail }") ;;
		"skip "*) skips+=("$name / ${line#skip }") ;;
		esac
	done < <(sed '$d' <<<"$counts")
	ktap_n=$((ktap_n + 1))
	ktap_lines+=("    ${sub%%$'\n'*}" "    # Subtest: $name")
	mapfile -t -O "${#ktap_lines[@]}" ktap_lines < <(sed '1d; s/^/    /' <<<"$sub")
	printf '# %s: %s passed, %s failed, %s skipped (in %s)\n' "$name" "$p" "$f" "$s" "$file"
	if [ "$f" = 0 ] && [ -z "$detail" ]; then
		ktap_emit "ok $ktap_n $name"
		return
	fi
	# A failed subtest none of whose tests failed counts as one failure.
	if [ "$f" = 0 ]; then
		failed=$((failed + 1))
		failures+=("$name: $detail")
	fi
	[ -z "$detail" ] || ktap_emit "# $name: $detail"
	ktap_emit "not ok $ktap_n $name"
}

finish() {
	stage_end
	local p=$passed f=$failed s=$skipped counts
	mkdir -p "$(dirname "$KTAP_FILE")"
	{
		echo "KTAP version 1"
		echo "1..$ktap_n"
		[ ${#ktap_lines[@]} = 0 ] || printf '%s\n' "${ktap_lines[@]}"
	} >"$KTAP_FILE"
	# The count is the parser's.  Before scripts/base has imported the
	# kernel (and its kunit.py) nothing is nested, and the results are
	# counted as they were recorded.
	if [ -f "$KUNIT_PY" ]; then
		counts=$(ktap_counts "$KTAP_FILE")
		read -r p f s _ < <(tail -1 <<<"$counts")
		if [ "$p $f $s" != "$passed $failed $skipped" ]; then
			printf '# kunit.py counts %s passed, %s failed, %s skipped in %s; the results recorded %s, %s, %s\n' \
				"$p" "$f" "$s" "$KTAP_FILE" "$passed" "$failed" "$skipped"
			failures+=("KTAP: the parser's count differs from the results recorded")
			f=$((f + 1))
		fi
	fi
	printf '\n%s: %ss in all; KTAP in %s\n' "$PROG" "$(($(date +%s) - T0))" "$KTAP_FILE"
	if [ ${#skips[@]} -gt 0 ]; then
		printf 'skipped:\n'
		printf '  %s\n' "${skips[@]}"
	fi
	if [ ${#failures[@]} -gt 0 ]; then
		printf 'failed:\n'
		printf '  %s\n' "${failures[@]}"
	fi
	[ "$s" = 0 ] || printf '%d skipped\n' "$s"
	printf '%d passed, %d failed\n' "$p" "$f"
	[ "$f" = 0 ]
}
# fatal NAME DETAIL: a setup problem is a failure too, in the same closing line.
fatal() {
	result fail "$1" "$2"
	finish
	exit 1
}

# The KUnit suites (SUITE or SUITE:CASE-REGEX) that must have run at boot
# and passed, on every kernel that runs the series' tests.
# shellcheck disable=SC2034 # used by the verbs
KUNIT_SUITES="mm_seqid rust_doctests_kernel:_mm_rs_ ne_misc_dev_test"

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
	local logf=$LOGS/$tag-boot.log out=$LOGS/$tag-guest.out boot_rc s0=$skipped
	mkdir -p "$LOGS"
	set +e
	"$SCRIPTS/boot" --config="$name" --log="$logf" -- \
		"$SCRIPTS/guest/tests" "$@" | tee "$out"
	boot_rc=${PIPESTATUS[0]}
	set -e
	subtest "$prefix: in the guest ($name)" "$out"
	if [ "$boot_rc" = 0 ]; then
		result ok "$prefix: boot ($name): tests passed, no kernel splat"
	else
		result fail "$prefix: boot ($name): tests or kernel log" "see $logf and $out"
	fi

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
