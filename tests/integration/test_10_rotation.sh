#!/usr/bin/env bash
# Key rotation, as docs/OPERATIONS.md "Rotating an agency's key" has it:
# the police are given a new key and certificate (ehx-pki rotate) while
# their old one still works; the broker reads the registry listing both on
# SIGHUP; the police agent moves to the new key (a restart of that agent:
# its outbox keeps what is queued); the old certificate is then retired
# (taken out of the registry, SIGHUP again, and revoked). The broker runs
# throughout; every change is decided once; and the audit export still
# verifies, envelopes signed under the retired certificate included (the
# broker keeps every certificate it has used).
. "$(dirname "$0")/lib.sh"
sandbox_up
IG="--as ig_officer"
PCONF="$SB/agencies/police/agent.conf"
fpr() { openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f; }
OLD_FPR=$(fpr "$SB/agencies/police/police.crt")

expect_status 0 ehx_as police publish --wait "$CHILD_A" --category offending \
	--level 2 --practitioner "PC Sam Jones" --ref rot-old
ok "published under the old certificate"

BPID=$(cat "$SB/broker/pid")
# hup WHAT: SIGHUP the broker and wait for it to log that it reloaded.
hup() {
	local seen i=0
	seen=$(grep -c 'registry reloaded' "$SB/broker/broker.log" || true)
	kill -HUP "$BPID"
	while [ "$(grep -c 'registry reloaded' "$SB/broker/broker.log" || true)" -le "$seen" ]; do
		i=$((i + 1)); [ $i -lt 100 ] || fail "$1: the broker did not reload its registry"
		sleep 0.1
	done
	ok "$1"
}

# 1. A new key and certificate, listed beside the old one; the broker reads
#    the registry again on SIGHUP, without a restart.
expect_status 0 "$top/certs/ehx-pki" rotate "$SB" police
assert_match "$OUT" "police-2.crt" "ehx-pki rotate issues police-2"
NEW_FPR=$(fpr "$SB/agencies/police/police-2.crt")
assert_eq "$(grep -c '^certificate = agencies/police/' "$SB/registry.ini")" 2 \
	"the registry lists both police certificates"
hup "SIGHUP: the broker reads the registry with both certificates"
expect_status 0 ehx_as police publish --wait "$CHILD_A" --category offending \
	--level 3 --practitioner "PC Sam Jones" --ref rot-during
ok "the police agent carries on under the old certificate"
expect_status 0 probe police --publish "$CHILD_B" --ref rot-probe-old
assert_match "$OUT" "^ok ack rot-probe-old$" "the old certificate is still accepted"

# 2. The police agent moves to the new key (its outbox keeps what is queued).
"$top/tests/sandbox" stop police "$SB"
sed -i 's/^certificate = police.crt$/certificate = police-2.crt/; s/^key = police.key$/key = police-2.key/' "$PCONF"
"$top/tests/sandbox" start police "$SB" >/dev/null
expect_status 0 ehx_as police publish --wait "$CHILD_A" --category offending \
	--level 4 --practitioner "PC Sam Jones" --ref rot-new
ok "published under the new certificate"
expect_status 0 ehx_as police --json status
assert_eq "$(printf '%s' "$OUT" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["outbox"])')" 0 \
	"nothing is left queued at the police agent"

# 3. The old certificate retired: out of the registry, revoked.
sed -i '\|^certificate = agencies/police/police.crt$|d' "$SB/registry.ini"
"$top/certs/ehx-pki" revoke "$SB" "$SB/agencies/police/police.crt" --reason superseded >/dev/null
hup "SIGHUP: the broker reads the registry without the old certificate"
expect_status 1 probe police --publish "$CHILD_B" --ref rot-probe-retired
assert_match "$OUT" "^error unknown_certificate: " "the retired certificate is refused"
expect_status 0 ehx_as police publish --wait "$CHILD_A" --category offending \
	--level 1 --practitioner "PC Sam Jones" --ref rot-after
ok "the new certificate carries on"
assert_eq "$(cat "$SB/broker/pid")" "$BPID" "the broker ran throughout: no restart"

# 4. The audit: every change decided once, under the certificate that
#    signed it, and the export verifies with both certificates in it.
"$BIN/ehx-broker" audit -c "$SB/broker/broker.conf" --tail 0 --json >"$SB/audit.json"
assert_eq "$(/usr/bin/python3 - "$SB/audit.json" <<'EOF'
import json, sys
n = {}
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d.get("agency") == "police" and d.get("action") == "publish_flag" and d.get("decision") == "allow":
        n[d.get("message_id")] = n.get(d.get("message_id"), 0) + 1
print(len(n), max(n.values()))
EOF
)" "5 1" "5 police publishes allowed, each decided once (old, during, probe, new, after)"
expect_status 0 ehx_as health $IG audit export "$SB/audit.export"
expect_status 0 "$BIN/ehx-auditverify" "$SB/audit.export" --ca "$SB/ca/ca.crt"
assert_match "$OUT" "OK: " "the export verifies"
/usr/bin/python3 - "$SB/audit.export" "$OLD_FPR" "$NEW_FPR" <<'EOF' || fail "the export does not hold both police certificates"
import sys
data = open(sys.argv[1], "rb").read()
# The certificates are in the export as PEM; compare fingerprints.
import base64, hashlib, re
fprs = set()
for m in re.finditer(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", data, re.S):
    der = base64.b64decode(b"".join(m.group(1).split()))
    fprs.add(hashlib.sha256(der).hexdigest())
assert sys.argv[2] in fprs, "the retired certificate is missing"
assert sys.argv[3] in fprs, "the new certificate is missing"
EOF
ok "the export holds the retired and the new police certificates"
