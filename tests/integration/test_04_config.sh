#!/usr/bin/env bash
# Configuration, registry and key files: bad ones stop the daemons with the
# file, the line and a reason; private keys others can read are refused.
. "$(dirname "$0")/lib.sh"
sandbox_up
"$top/tests/sandbox" down "$SB" >/dev/null
conf=$SB/broker/broker.conf
aconf=$SB/agencies/police/agent.conf

expect_status 0 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "is valid; 4 agencies registered" "ehx-broker --check on a good configuration"
expect_status 0 "$BIN/ehx-agent" --check -c "$aconf"
assert_match "$OUT" "is valid; agency police, 1 users" "ehx-agent --check on a good configuration"

cp "$conf" "$SB/bad.conf"
echo "colour = blue" >>"$SB/bad.conf"
sed -i 's|= \.\./|= broker/../|; s|^\(certificate\|key\|curve_key\|pseudonym_key\|matching_key\) = |\1 = broker/|; s|^endpoint_file = .*|endpoint_file = broker/endpoint|; s|^data_dir = .*|data_dir = broker/data|' "$SB/bad.conf"
line=$(grep -n '^colour' "$SB/bad.conf" | cut -d: -f1)
expect_status 1 "$BIN/ehx-broker" --check -c "$SB/bad.conf"
assert_match "$OUT" "bad.conf:$line: unknown key \"colour\"" "unknown key: file, line and reason"

sed -i '/^colour/d; s/^skew_seconds = .*/skew_seconds = 2/' "$SB/bad.conf"
expect_status 1 "$BIN/ehx-broker" --check -c "$SB/bad.conf"
assert_match "$OUT" "\"2\" is not a whole number in 5..3600" "out-of-range value"
sed -i 's/^skew_seconds = .*/skew_seconds = 300/; /^listen/d' "$SB/bad.conf"
expect_status 1 "$BIN/ehx-broker" --check -c "$SB/bad.conf"
assert_match "$OUT" "\\[broker\\] listen is required" "missing required key"

# A sharing policy that names an unknown type or category, or does not
# parse, stops the broker at start-up with the file, the line and why.
cp "$SB/broker/policy.ini" "$SB/policy.good"
printf '[view wizard]\ncategories = all\n' >>"$SB/broker/policy.ini"
line=$(grep -n '^\[view wizard\]' "$SB/broker/policy.ini" | cut -d: -f1)
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "policy.ini:$((line + 1)): unknown agency type \"wizard\"" "policy: unknown agency type named with file and line"
cp "$SB/policy.good" "$SB/broker/policy.ini"
sed -i 's/^details.mental_health = contact/details.mental_health = contact, gossip/' "$SB/broker/policy.ini"
line=$(grep -n 'gossip' "$SB/broker/policy.ini" | cut -d: -f1)
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "policy.ini:$line: unknown detail \"gossip\"" "policy: unknown detail named with file and line"
cp "$SB/policy.good" "$SB/broker/policy.ini"
printf '[notify spells]\nschool = consent\n' >>"$SB/broker/policy.ini"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "policy.ini:[0-9]+: unknown category \"spells\"" "policy: unknown category named with file and line"
cp "$SB/policy.good" "$SB/broker/policy.ini"
printf 'this is not ini\n' >>"$SB/broker/policy.ini"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "policy.ini:[0-9]+: " "policy: a line that does not parse is named"
cp "$SB/policy.good" "$SB/broker/policy.ini"
expect_status 0 "$BIN/ehx-broker" --check -c "$conf"
ok "the good policy loads again"
# The agent's state file must be private like its keys.
touch "$SB/agencies/police/agent.state" && chmod 644 "$SB/agencies/police/agent.state"
expect_status 1 "$BIN/ehx-agent" --check -c "$aconf"
assert_match "$OUT" "agent.state" "a readable agent state file is refused"
rm -f "$SB/agencies/police/agent.state"

chmod 644 "$SB/broker/broker.key"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "broker.key.*readable by group or others" "a readable broker key is refused"
chmod 600 "$SB/broker/broker.key"
chmod 640 "$SB/agencies/police/curve.key"
expect_status 1 "$BIN/ehx-agent" --check -c "$aconf"
assert_match "$OUT" "curve.key: cannot load the CURVE key: a key file is readable by group or others" "a readable agent key is refused"
chmod 600 "$SB/agencies/police/curve.key"
chmod 604 "$SB/broker/pseudonym.key"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "pseudonym.key.*readable by group or others" "a readable pseudonym key is refused"
chmod 600 "$SB/broker/pseudonym.key"
chmod 640 "$SB/broker/matching.key"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "matching.key: cannot load the matching key: a key file is readable by group or others" "a readable matching key is refused"
chmod 600 "$SB/broker/matching.key"
echo "not hex" >"$SB/broker/matching.key"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "matching.key: cannot load the matching key: it must hold 64 hex digits" "a matching key that is not one is refused"
openssl rand -hex 32 >"$SB/broker/matching.key"

# Registry: a certificate from another CA, a CN that is not the section,
# a type that is not the certificate's, a duplicated CURVE key.
"$top/certs/ehx-pki" ca "$SB/other" >/dev/null
"$top/certs/ehx-pki" agency "$SB/other" rogue police >/dev/null
reg=$SB/registry.ini
cp "$reg" "$SB/registry.good"
printf '[rogue]\ntype = police\ncertificate = other/agencies/rogue/rogue.crt\ncurve_public = other/agencies/rogue/curve.pub\n' >>"$reg"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "registry.ini:[0-9]+: .*rogue.crt: not issued by the partnership CA" "registry: foreign certificate"
cp "$SB/registry.good" "$reg"
printf '[impostor]\ntype = police\ncertificate = agencies/police/police.crt\n' >>"$reg"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "names agency \"police\", not \"impostor\"" "registry: certificate of another agency"
cp "$SB/registry.good" "$reg"
sed -i '0,/^type = police/s//type = housing/' "$reg"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "\\[police\\] is type housing but its certificate says police" "registry: type differs from the certificate"
cp "$SB/registry.good" "$reg"
sed -i 's|agencies/health/curve.pub|agencies/police/curve.pub|' "$reg"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "share a CURVE key" "registry: a CURVE key used twice"
cp "$SB/registry.good" "$reg"
printf '[Bad Id]\ntype = police\n' >>"$reg"
expect_status 1 "$BIN/ehx-broker" --check -c "$conf"
assert_match "$OUT" "is not a valid agency id" "registry: a bad agency id"
cp "$SB/registry.good" "$reg"

# An agent whose certificate is another agency's.
sed 's|^certificate = .*|certificate = ../health/health.crt|' "$aconf" >"$SB/agencies/police/bad.conf"
expect_status 1 "$BIN/ehx-agent" --check -c "$SB/agencies/police/bad.conf"
assert_match "$OUT" "not an Ed25519 key matching the certificate" "agent: key and certificate must match"

# The outbox and inbox: a data_dir is required, a hook must be a program.
grep -v '^data_dir' "$aconf" >"$SB/agencies/police/bad.conf"
expect_status 1 "$BIN/ehx-agent" --check -c "$SB/agencies/police/bad.conf"
assert_match "$OUT" "data_dir" "agent: data_dir is required"
{ cat "$aconf"; echo "hook = intake.sh"; } >"$SB/agencies/police/bad.conf"
line=$(grep -n '^hook' "$SB/agencies/police/bad.conf" | cut -d: -f1)
expect_status 1 "$BIN/ehx-agent" --check -c "$SB/agencies/police/bad.conf"
assert_match "$OUT" "bad.conf:$line: hook must be an absolute path" "agent: a relative hook is refused with its line"
{ cat "$aconf"; echo "hook = $SB/no-such-hook --flag"; } >"$SB/agencies/police/bad.conf"
expect_status 1 "$BIN/ehx-agent" --check -c "$SB/agencies/police/bad.conf"
assert_match "$OUT" "no-such-hook is not an executable program" "agent: a hook that is not a program is refused"
{ cat "$aconf"; echo "notify_poll_seconds = 0"; } >"$SB/agencies/police/bad.conf"
line=$(grep -n '^notify_poll' "$SB/agencies/police/bad.conf" | cut -d: -f1)
expect_status 1 "$BIN/ehx-agent" --check -c "$SB/agencies/police/bad.conf"
assert_match "$OUT" "bad.conf:$line: \"0\" is not a whole number in 1..3600" \
	"agent: notify_poll_seconds out of bounds, with its line"
# A spool others could write to (or plant links in) is refused.
mkdir -p "$SB/open-spool/tmp" "$SB/open-spool/new" "$SB/open-spool/cur"
chmod 0700 "$SB/open-spool" "$SB/open-spool/tmp" "$SB/open-spool/cur"
# (the agent's user's, as an operator would make it; root's agents drop to nobody)
[ "$(id -u)" != 0 ] || chown -R nobody "$SB/open-spool"
chmod 0777 "$SB/open-spool/new"
{ cat "$aconf"; echo "spool_dir = $SB/open-spool"; } >"$SB/agencies/police/bad.conf"
expect_status 1 "$BIN/ehx-agent" --check -c "$SB/agencies/police/bad.conf"
assert_match "$OUT" "open-spool/new: must belong to this user and be open to no one outside its group" \
	"agent: a world-writable spool directory is refused"
chmod 0770 "$SB/open-spool/new"
chmod 0750 "$SB/open-spool/tmp"
expect_status 1 "$BIN/ehx-agent" --check -c "$SB/agencies/police/bad.conf"
assert_match "$OUT" "open-spool/tmp: must belong to this user and be open to no one else" \
	"agent: a spool tmp/ open to the group is refused (only the agent writes there)"
chmod 0700 "$SB/open-spool/tmp"
expect_status 0 "$BIN/ehx-agent" --check -c "$SB/agencies/police/bad.conf"
ok "agent: a spool new/ shared with the case system's group is accepted"
# Root: the daemons read their keys as root and drop to the named user, or
# refuse to run. (CI runs as root; elsewhere this part cannot be shown.)
if [ "$(id -u)" = 0 ]; then
	BCONF="$SB/broker/broker.conf"
	grep -v '^user =' "$BCONF" >"$SB/broker/bad.conf"
	expect_status 1 "$BIN/ehx-broker" --check -c "$SB/broker/bad.conf"
	assert_match "$OUT" "running as root: name the user to run as" "broker: as root without user = , refused"
	{ grep -v '^user =' "$BCONF"; echo "user = root"; } >"$SB/broker/bad.conf"
	expect_status 1 "$BIN/ehx-broker" --check -c "$SB/broker/bad.conf"
	assert_match "$OUT" "user = root is root" "broker: user = root is refused"
	{ grep -v '^user =' "$BCONF"; echo "user = no-such-user-ehx"; } >"$SB/broker/bad.conf"
	expect_status 1 "$BIN/ehx-broker" --check -c "$SB/broker/bad.conf"
	assert_match "$OUT" "user = no-such-user-ehx: no such user" "broker: an unknown user is refused"
	grep -v '^user =' "$aconf" >"$SB/agencies/police/bad.conf"
	expect_status 1 "$BIN/ehx-agent" --check -c "$SB/agencies/police/bad.conf"
	assert_match "$OUT" "running as root: name the user to run as" "agent: as root without user = , refused"
	grep -v '^user =' "$BCONF" >"$SB/broker/bad.conf"
	expect_status 1 "$BIN/ehx-broker" --purge -c "$SB/broker/bad.conf"
	assert_match "$OUT" "running as root" "broker --purge (it writes the store) refuses root too"
	nobody=$(id -u nobody)
	"$top/tests/sandbox" start broker "$SB" >/dev/null
	"$top/tests/sandbox" start health "$SB" >/dev/null
	bpid=$(cat "$SB/broker/pid")
	assert_eq "$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$bpid/status")" "$nobody$nobody$nobody$nobody" \
		"the running broker's real, effective, saved and file uids are all nobody's"
	apid=$(cat "$SB/agencies/health/pid")
	assert_eq "$(awk '/^Uid:/ { print $3 }' "/proc/$apid/status")" "$nobody" "the running agent is nobody"
	assert_eq "$(stat -c %U "$SB/broker/data/data.mdb")" nobody "the store's files are the broker user's"
	"$top/tests/sandbox" stop health "$SB"
	"$top/tests/sandbox" stop broker "$SB"
else
	ok "not root: dropping privileges is shown when the tests run as root (CI)"
fi

# Two agents on one store would both deliver its outbox.
"$BIN/ehx-agent" -c "$aconf" >"$SB/first-agent.log" 2>&1 &
first=$!
i=0; while [ ! -S "$SB/agencies/police/agent.sock" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
sed 's|^socket = .*|socket = second.sock|' "$aconf" >"$SB/agencies/police/second.conf"
expect_status 1 "$BIN/ehx-agent" -c "$SB/agencies/police/second.conf"
assert_match "$OUT" "another ehx-agent is using this data_dir" "a second agent on the same data_dir is refused"
expect_status 0 "$BIN/ehx-agent" --check -c "$aconf"
ok "--check works beside the running agent"
kill "$first"; wait "$first" 2>/dev/null || true

expect_status 0 "$BIN/ehx-broker" --help
assert_match "$OUT" "usage: ehx-broker" "ehx-broker --help"
expect_status 0 "$BIN/ehx-agent" --help
assert_match "$OUT" "usage: ehx-agent" "ehx-agent --help"
expect_status 2 "$BIN/ehx-broker" --frobnicate
expect_status 2 "$BIN/ehx-agent" --frobnicate
ok "unknown options: exit 2"
expect_status 2 "$BIN/ehx-broker" audit --tail -3 -c "$conf"
ok "audit --tail needs a number"
