# shellcheck shell=bash
# Part of scripts/lib.sh (which sources it): results, as KTAP, counted by one
# parser.

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

# kunit.py of the base worktree, which nothing moves (check-series walks
# the series tree while jobs beside it parse); else of the series tree,
# whose parser is the base's: the series does not touch it.
KUNIT_PY=$MM_SEQID_CACHE/base-worktree/tools/testing/kunit/kunit.py
[ -f "$KUNIT_PY" ] || KUNIT_PY=$TREE/tools/testing/kunit/kunit.py
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

# skip_after_expect FILE...: prints FILE:LINE for each skip that follows an
# expectation in the same KUnit case or kselftest test (scripts/lib/skip_lint.py).
skip_after_expect() {
	PYTHONDONTWRITEBYTECODE=1 python3 "$SCRIPTS/lib/skip_lint.py" "$@"
}
