# shellcheck shell=bash
# Shared by every verb in scripts/.  Sourced, never run.  This file holds
# the environment (paths, compiler cache, messages, Ctrl-C, make); the rest
# is in scripts/lib/, by job, sourced at the end: fetch.sh (downloads, the
# base tree), kernels.sh (the kernel table, worktrees, git am, checkpatch),
# results.sh (KTAP results and their one parser), guest.sh (the programs a
# guest runs, boots, splats, KUnit).
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

# The rest, by job.
# shellcheck source=scripts/lib/fetch.sh
. "$SCRIPTS/lib/fetch.sh"
# shellcheck source=scripts/lib/kernels.sh
. "$SCRIPTS/lib/kernels.sh"
# shellcheck source=scripts/lib/results.sh
. "$SCRIPTS/lib/results.sh"
# shellcheck source=scripts/lib/guest.sh
. "$SCRIPTS/lib/guest.sh"
