# shellcheck shell=bash
# Part of scripts/lib.sh (which sources it): downloads, the private apt state
# and the base tree.

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

# debian_kernel: prints the path of Debian's binary kernel of the base
# (scripts/base.conf: DEBIAN_KERNEL_*), unpacked from its packages, each
# checked against its sha256, into $MM_SEQID_CACHE/debian-kernel/root.
# vng finds the modules beside the image (usr/lib/modules/RELEASE) and
# writes their modules.dep there on its first boot.  Call it as
# img=\$(debian_kernel) || die ...: its die ends only the subshell.
debian_kernel() {
	local dir=$MM_SEQID_CACHE/debian-kernel d root img
	need_cmd dpkg-deb "apt-get install dpkg"
	root=$dir/root
	img=$root/usr/lib/modules/$DEBIAN_KERNEL_RELEASE/vmlinuz
	if [ "$(cat "$dir/unpacked" 2>/dev/null)" != "$DEBIAN_KERNEL_DEBS" ] || [ ! -f "$img" ]; then
		rm -rf "$root" "$root.new" "$dir/unpacked"
		for d in $DEBIAN_KERNEL_DEBS; do
			fetch_deb "$dir" "$BASE_SUITE" "${d%%:*}" "$BASE_VERSION" "${d#*:}" \
				"if the version left the archive, bump scripts/base.conf" >&2
			dpkg-deb -x "$FETCHED_DEB" "$root.new" || die "could not unpack $FETCHED_DEB"
		done
		mv "$root.new" "$root"
		[ -f "$img" ] || die "Debian's packages have no $img (scripts/base.conf: DEBIAN_KERNEL_*)"
		echo "$DEBIAN_KERNEL_DEBS" >"$dir/unpacked"
	fi
	echo "$img"
}

# debian_config: prints the path of the .config that Debian's kernel of the
# base was built with, from its headers package (scripts/base.conf:
# DEBIAN_HEADERS_DEB, checked against its sha256).
debian_config() {
	local dir=$MM_SEQID_CACHE/debian-kernel cfg
	cfg=$dir/config-$DEBIAN_KERNEL_RELEASE
	if [ ! -s "$cfg" ]; then
		fetch_deb "$dir" "$BASE_SUITE" "${DEBIAN_HEADERS_DEB%%:*}" "$BASE_VERSION" "${DEBIAN_HEADERS_DEB#*:}" \
			"if the version left the archive, bump scripts/base.conf" >&2
		dpkg-deb --fsys-tarfile "$FETCHED_DEB" |
			tar -xO "./usr/src/linux-headers-$DEBIAN_KERNEL_RELEASE/.config" >"$cfg.new"
		[ -s "$cfg.new" ] || die "$FETCHED_DEB has no usr/src/linux-headers-$DEBIAN_KERNEL_RELEASE/.config"
		mv "$cfg.new" "$cfg"
	fi
	echo "$cfg"
}

# base_worktree: prints the path of a detached worktree of branch base, made
# on first use, for builds of the kernel without the series.
base_worktree() {
	local wt=$MM_SEQID_CACHE/base-worktree
	[ -d "$wt" ] || git -C "$TREE" worktree add -q --detach "$wt" base >&2 ||
		die "could not add a worktree of branch base at $wt"
	echo "$wt"
}
