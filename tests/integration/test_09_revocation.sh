#!/usr/bin/env bash
# Revocation: the broker loads the partnership CA's CRL (crl = in its
# config) at start and again on SIGHUP. A request signed with a revoked
# certificate is refused revoked_certificate, audited, and changes nothing;
# other agencies carry on. A CRL that does not load (not a CRL, or issued
# by another CA) stops the broker at start, and on SIGHUP leaves the one in
# force. Every CRL here is made by certs/ehx-pki, i.e. the openssl command.
. "$(dirname "$0")/lib.sh"
sandbox_up
CONF="$SB/broker/broker.conf"
hup() {
	local seen i=0
	seen=$(grep -c "$2" "$SB/broker/broker.log" || true)
	kill -HUP "$(cat "$SB/broker/pid")"
	while [ "$(grep -c "$2" "$SB/broker/broker.log" || true)" -le "$seen" ]; do
		i=$((i + 1)); [ $i -lt 100 ] || fail "$1: the broker did not log /$2/ after SIGHUP"
		sleep 0.1
	done
	ok "$1"
}
refused_revoked() {
	local before audit
	before=$(snapshot)
	audit=$(entries audit)
	expect_status 1 probe police --publish "$CHILD_A" --ref "$1"
	assert_match "$OUT" "^error revoked_certificate: " "police's publish ($1) is refused revoked_certificate"
	assert_eq "$(snapshot)" "$before" "$1: flags and consent unchanged"
	assert_eq "$(entries audit)" "$((audit + 1))" "$1: the refusal is audited"
}

# An empty CRL, configured: everyone is served.
"$top/certs/ehx-pki" crl "$SB" >/dev/null
printf 'crl = ../ca/crl.pem\n' >>"$CONF"
"$top/tests/sandbox" stop broker "$SB"
"$top/tests/sandbox" start broker "$SB" >/dev/null
assert_match "$(cat "$SB/broker/broker.log")" "CRL .*crl.pem: 0 revoked certificates; next update 20" \
	"the broker logs the CRL it loaded"
expect_status 0 probe police --publish "$CHILD_A" --ref before-revoke
assert_match "$OUT" "^ok ack before-revoke$" "police publish while their certificate stands"

# The police certificate revoked, the CRL reissued, the broker told. (The
# police agent is stopped first: its own requests under the revoked
# certificate would be refused and audited too, and the counts below are
# of the probe's alone.)
"$top/tests/sandbox" stop police "$SB"
expect_status 0 "$top/certs/ehx-pki" revoke "$SB" "$SB/agencies/police/police.crt" --reason keyCompromise
assert_match "$OUT" "1 revoked" "ehx-pki revoke reissues the CRL"
hup "SIGHUP reloads the CRL" "1 revoked certificate;"
refused_revoked after-revoke
audit_last=$("$BIN/ehx-broker" audit -c "$CONF" --tail 1 --json)
assert_match "$audit_last" '"agency":"police"' "the audit record names the police"
assert_match "$audit_last" '"decision":"deny"' "as a denial"
assert_match "$audit_last" 'revoked_certificate' "for revoked_certificate"
expect_status 0 probe health --publish "$CHILD_A" --ref health-1 --category physical_health
assert_match "$OUT" "^ok ack health-1$" "health, not revoked, is still served"

# A file that is not a CRL, on SIGHUP: logged, and the old CRL stays.
cp "$SB/ca/crl.pem" "$SB/crl.good"
printf 'not a CRL\n' >"$SB/ca/crl.pem"
hup "a bad CRL on SIGHUP is reported" "the CRL loaded before stays in force"
assert_match "$(grep 'stays in force' "$SB/broker/broker.log" | tail -1)" "not a certificate revocation list" \
	"with the reason"
refused_revoked after-bad-reload

# A CRL issued by another CA: refused at start, the broker does not run.
"$top/certs/ehx-pki" ca "$SB/other" >/dev/null
"$top/certs/ehx-pki" crl "$SB/other" >/dev/null
cp "$SB/other/ca/crl.pem" "$SB/ca/crl.pem"
"$top/tests/sandbox" stop broker "$SB"
expect_status 1 "$BIN/ehx-broker" --check -c "$CONF"
assert_match "$OUT" "cannot load the CRL: its signature is not the partnership CA.s" \
	"a CRL from another CA (of the same name) stops the broker with a sentence"
cp "$SB/crl.good" "$SB/ca/crl.pem"
"$top/tests/sandbox" start broker "$SB" >/dev/null
refused_revoked after-restart
