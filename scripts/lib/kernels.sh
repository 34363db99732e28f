# shellcheck shell=bash
# shellcheck disable=SC2153 # TREE and the like are set by lib.sh
# Part of scripts/lib.sh (which sources it): the kernel table, the trees and
# build directories it names, and the series applied to them.

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

# tree_lock exclusive|shared: fd 8 holds $TREE.lock until the calling
# verb exits.  exclusive: the verb moves $TREE (scripts/apply,
# scripts/check-series's walk); shared: it builds from it (scripts/build).
# A verb that the exclusive holder starts (MM_SEQID_TREE_LOCKED=1) takes
# none.  Neither waits: the other run is named.
tree_lock() {
	[ -z "${MM_SEQID_TREE_LOCKED-}" ] || return 0
	mkdir -p "$(dirname "$TREE")"
	exec 8>"$TREE.lock"
	if [ "$1" = exclusive ]; then
		flock -n -x 8 || die "another run builds from or moves $TREE (lock $TREE.lock): wait for it"
		export MM_SEQID_TREE_LOCKED=1
	else
		flock -n -s 8 ||
			die "scripts/apply or scripts/check-series is moving $TREE (lock $TREE.lock): wait for it"
	fi
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

# git_am DIR PATCH...: git am PATCH... in the worktree DIR, with one fixed
# identity and the author dates, so that the same patches make the same
# commits.  On failure: prints git's output, aborts the am, and sets
# AM_ERROR to a message that names the patch and the file that failed.
git_am() {
	local dir=$1 amlog cur file num pfile=
	shift
	amlog=$(mktemp)
	# No automatic gc: a detached gc would keep the tree lock's fd open.
	if git -C "$dir" -c user.name=mm-seqid -c user.email=mm-seqid@localhost \
		-c gc.auto=0 -c maintenance.auto=false am -q --committer-date-is-author-date "$@" >"$amlog" 2>&1; then
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
