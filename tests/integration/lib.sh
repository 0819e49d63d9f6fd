# Shared by the integration tests: a sandbox per test, the ehx and probe
# commands bound to an agency, and assertions that print "ok: ..." or fail.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${EHX_BIN:-$top/build/bin}
export EHX_BIN=$BIN
SB=$(mktemp -d "${TMPDIR:-/tmp}/ehx-it.XXXXXX")
# Valid NHS numbers (modulus 11) used as synthetic children.
CHILD_A=9434765919
CHILD_B=9992914173
CHILD_C=9997763173
CHILD_D=9990669074
CHILD_E=9990080631
BAD_NHS=9434765918

cleanup() {
	local st=$?
	"$top/tests/sandbox" down "$SB" >/dev/null 2>&1 || true
	# A sanitizer report from any daemon fails the test, even one that
	# only showed at exit (leaks).
	if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" \
		"$SB"/broker/*.log "$SB"/agencies/*/*.log 2>/dev/null; then
		grep -hE -A12 "ERROR: (Address|Leak)Sanitizer|runtime error:" \
			"$SB"/broker/*.log "$SB"/agencies/*/*.log | head -60
		echo "FAILED: a sanitizer reported an error in a daemon" >&2
		st=1
	fi
	if [ "${KEEP_SANDBOX:-}" = 1 ]; then
		echo "sandbox kept in $SB"
	else
		rm -rf "$SB"
	fi
	exit $st
}
trap cleanup EXIT

fail() {
	echo "FAILED: $*" >&2
	for f in "$SB"/broker/broker.log "$SB"/agencies/*/agent.log; do
		[ -f "$f" ] && { echo "--- $f" >&2; tail -8 "$f" >&2; }
	done
	exit 1
}
ok() { echo "ok: $*"; }

sandbox_up() {
	"$top/tests/sandbox" up "$SB" >"$SB.env" || fail "sandbox did not start"
	# shellcheck disable=SC1090
	source "$SB.env"
	rm -f "$SB.env"
	ENDPOINT=$(cat "$SB/broker/endpoint")
}

# open_policy: restart the broker under a sharing policy that shows every
# agency type every category with every detail, for tests of the exchange
# itself (test_07 tests the default policy's cuts).
open_policy() {
	local t
	{
		printf '[agreement]\nid = open-test\n'
		for t in police health school housing local_authority voluntary; do
			printf '[view %s]\ncategories = all\ndetails = level, contact, note\n' "$t"
		done
	} >"$SB/broker/policy.ini"
	"$top/tests/sandbox" stop broker "$SB" >/dev/null
	"$top/tests/sandbox" start broker "$SB" >/dev/null
}

# ehx_as AGENCY ARGS...: the ehx command against that agency's agent.
ehx_as() {
	local id=$1; shift
	"$BIN/ehx" --agent "$SB/agencies/$id/agent.sock" "$@"
}

# probe AGENCY ARGS...: the raw protocol client with that agency's keys.
# KEY_OF / CERT_OF / CURVE_OF override whose key, certificate or CURVE key;
# KEYDIR / CURVEDIR where those are found (default: the sandbox's agencies).
probe() {
	local id=$1; shift
	local k=${KEY_OF:-$id} c=${CERT_OF:-$id} v=${CURVE_OF:-$id}
	local kd=${KEYDIR:-$SB/agencies} cd=${CURVEDIR:-$SB/agencies}
	"$BIN/ehx-probe" --broker "$ENDPOINT" \
		--server-curve "$SB/broker/curve.pub" \
		--broker-cert "$SB/broker/broker.crt" \
		--curve "$cd/$v/curve.key" --key "$kd/$k/$k.key" \
		--cert "$kd/$c/$c.crt" --agency "$id" "$@"
}

# entries DB: the number of records in one of the broker's databases.
entries() {
	mdb_stat -s "$1" "$SB/broker/data" | awk '/Entries:/ { print $2 }'
}

# snapshot: the counts of flags and consent (the stores bad input must not
# change) and of audit records.
snapshot() { echo "$(entries flags) $(entries consent)"; }

assert_eq() {
	[ "$1" = "$2" ] || fail "$3: expected [$2], got [$1]"
	ok "$3"
}

assert_match() {
	printf '%s' "$1" | grep -Eq -- "$2" || fail "$3: [$1] does not match /$2/"
	ok "$3"
}

assert_no_match() {
	printf '%s' "$1" | grep -Eq -- "$2" && fail "$3: [$1] matches /$2/"
	ok "$3"
}

# expect_status N CMD...: run CMD, require exit status N, keep its output
# in $OUT.
expect_status() {
	local want=$1; shift
	set +e
	OUT=$("$@" 2>&1)
	local got=$?
	set -e
	[ "$got" = "$want" ] || fail "exit $got (wanted $want) from: $* :: $OUT"
}
