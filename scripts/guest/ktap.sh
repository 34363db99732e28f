# shellcheck shell=bash
# guest/ktap.sh: what the guest scripts (guest/tests, guest/ublk) print
# their one KTAP document with.  Sourced; nothing here parses results: each
# result line comes from an exit status, and the host reads the document
# with kunit.py's parser.
#
# KTAP_N counts the results printed, KTAP_RC is 1 once one failed.
KTAP_N=0
# shellcheck disable=SC2034 # read by the scripts that source this
KTAP_RC=0
# verdict NAME STATUS: the result line of NAME from an exit status
# (kselftest's: 4 is a skip).
verdict() {
	KTAP_N=$((KTAP_N + 1))
	case "$2" in
	0) echo "ok $KTAP_N $1" ;;
	4) echo "ok $KTAP_N $1 # SKIP exit status 4" ;;
	*)
		echo "not ok $KTAP_N $1"
		# shellcheck disable=SC2034 # read by the scripts that source this
		KTAP_RC=1
		;;
	esac
}
# diag CMD...: CMD's output as KTAP diagnostic lines; its exit status.
diag() {
	"$@" 2>&1 | sed -u 's/^/# /'
	return "${PIPESTATUS[0]}"
}
# run_kselftest NAME DIR: the kselftest install DIR's run_kselftest.sh,
# nested as the subtest NAME.  The runner writes part of its output to
# /dev/stdout, which virtme-ng links to its console port instead of to
# fd 1: those lines would miss the nesting (and, on the console itself,
# the open fails with EBUSY).  Linked back to fd 1 here.
run_kselftest() {
	ln -sfn /proc/self/fd/1 /dev/stdout
	nested "$1" "$2/run_kselftest.sh"
}
# nested NAME CMD...: CMD's output, KTAP itself, indented as the subtest
# NAME: "# Subtest: NAME" goes after its version line, as KUnit prints it.
# Its exit status; 99 if it printed no version line and plan, whatever
# its status: a test program that reports nothing has not passed.
nested() {
	local name=$1 seen rc
	shift
	seen=$(mktemp)
	"$@" 2>&1 | tee "$seen" | sed -u -e 's/^/    /' \
		-e "0,/^    \(KTAP version 1\|TAP version 13\)\$/{/^    \(KTAP version 1\|TAP version 13\)\$/a\\
    # Subtest: $name
}"
	rc=${PIPESTATUS[0]}
	if ! grep -qE '^(KTAP version 1|TAP version 13)$' "$seen" || ! grep -qE '^1\.\.[0-9]+$' "$seen"; then
		echo "# $name: printed no KTAP (no version line or no plan); exit status $rc"
		rc=99
	fi
	rm -f "$seen"
	return "$rc"
}
