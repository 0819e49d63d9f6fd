#!/usr/bin/env bash
# The test vectors of docs/PROTOCOL.md §11, checked with the openssl command
# alone (no EHX code): the documented key signs the documented message into
# the documented signature, the signature verifies, and a tampered message
# does not. Also the layout: signed message = context ‖ body, the envelope
# carries body, signer and signature, and the signer and pseudonym blocks
# are the SHA-256 and HMAC-SHA256 they claim to be.
#
# Reads the hex blocks ("```hex NAME" … "```") from docs/PROTOCOL.md, so the
# document is what is tested. Needs only bash, openssl, od, sed, awk, tr.
# Run from anywhere; prints "ok: ..." per check and exits non-zero on any
# mismatch.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DOC=${EHX_PROTOCOL_MD:-$top/docs/PROTOCOL.md}
[ -f "$DOC" ] || { echo "FAILED: $DOC not found" >&2; exit 1; }
command -v openssl >/dev/null || { echo "FAILED: no openssl command" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/ehx-vector.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() { echo "FAILED: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# block NAME: the hex of the document's block, lower case, one line.
block() {
	local hex
	hex=$(awk -v open="\`\`\`hex $1" '
		$0 == open { inside = 1; found = 1; next }
		inside && /^```/ { inside = 0; exit }
		inside { sub(/#.*/, ""); gsub(/[ \t\r]/, ""); printf "%s", $0 }
		END { if (!found) exit 1 }' "$DOC") ||
		fail "$DOC has no block \"\`\`\`hex $1\""
	[ -n "$hex" ] || fail "block $1 is empty"
	printf '%s' "$hex" | grep -Eq '^([0-9a-fA-F]{2})+$' ||
		fail "block $1 is not whole bytes of hex"
	printf '%s' "$hex" | tr 'A-F' 'a-f'
}

# hex2bin HEX > FILE (printf's \x escapes: no xxd needed).
hex2bin() {
	local hex=$1 i
	for ((i = 0; i < ${#hex}; i += 256)); do
		# shellcheck disable=SC2059
		printf "$(printf '%s' "${hex:i:256}" | sed 's/../\\x&/g')"
	done
}

# bin2hex < FILE: lower-case hex, one line.
bin2hex() { od -An -v -tx1 | tr -d ' \n'; }

same() {  # same WHAT GOT WANT
	[ "$2" = "$3" ] || fail "$1: got $2, the document says $3"
}

seed=$(block seed)
pub=$(block public_key)
body=$(block body)
context=$(block context)
msg=$(block signed_message)
sig=$(block signature)
signer_input=$(block signer_input)
signer=$(block signer)
envelope=$(block envelope)
pkey=$(block pseudonym_key)
pinput=$(block pseudonym_input)
pseudonym=$(block pseudonym)

same "seed length" "${#seed}" 64
same "public key length" "${#pub}" 64
same "signature length" "${#sig}" 128
same "signer length" "${#signer}" 64

# The RFC 8032 §7.1 TEST 1 key, as §11.1 says.
same "seed" "$seed" 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60
same "public key" "$pub" d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a

# ---- layout ---------------------------------------------------------------
same "context" "$(printf 'EHX-ENVELOPE-V1\0' | bin2hex)" "$context"
same "signed message" "$msg" "$context$body"
ok "signed message = \"EHX-ENVELOPE-V1\" 0x00 || body ($(( ${#msg} / 2 )) bytes)"

# Envelope: 08 01 | 12 len body | 1a 20 signer | 22 40 signature (len < 128).
blen=$(printf '%02x' $(( ${#body} / 2 )))
[ $(( ${#body} / 2 )) -lt 128 ] || fail "the vector body needs a one-byte length"
same "envelope" "$envelope" "0801""12$blen$body""1a20$signer""2240$sig"
ok "envelope = version 1, body, signer, signature ($(( ${#envelope} / 2 )) bytes)"

# ---- keys -------------------------------------------------------------------
hex2bin "302e020100300506032b657004220420$seed" >"$T/key.der"
openssl pkey -inform DER -in "$T/key.der" -out "$T/key.pem" 2>"$T/err" ||
	fail "openssl does not read the PKCS#8 key: $(cat "$T/err")"
grep -q 'BEGIN PRIVATE KEY' "$T/key.pem" || fail "no PEM private key written"
openssl pkey -in "$T/key.pem" -pubout -out "$T/pub.pem" 2>"$T/err" ||
	fail "openssl could not derive the public key: $(cat "$T/err")"
same "derived public key" \
	"$(openssl pkey -pubin -in "$T/pub.pem" -outform DER | bin2hex)" \
	"302a300506032b6570032100$pub"
ok "the seed's public key is the documented public key"

# The documented public key on its own, as a verifier would hold it.
hex2bin "302a300506032b6570032100$pub" >"$T/docpub.der"
openssl pkey -pubin -inform DER -in "$T/docpub.der" -out "$T/docpub.pem" 2>"$T/err" ||
	fail "openssl does not read the public key: $(cat "$T/err")"

# ---- signature ----------------------------------------------------------------
hex2bin "$msg" >"$T/msg.bin"
same "signed message bytes" "$(bin2hex <"$T/msg.bin")" "$msg"
openssl pkeyutl -sign -inkey "$T/key.pem" -rawin -in "$T/msg.bin" \
	-out "$T/sig.bin" 2>"$T/err" || fail "openssl pkeyutl -sign: $(cat "$T/err")"
same "signature" "$(bin2hex <"$T/sig.bin")" "$sig"
ok "openssl pkeyutl -sign -rawin gives the documented signature"

hex2bin "$sig" >"$T/docsig.bin"
openssl pkeyutl -verify -pubin -inkey "$T/docpub.pem" -rawin -in "$T/msg.bin" \
	-sigfile "$T/docsig.bin" >"$T/out" 2>&1 ||
	fail "openssl pkeyutl -verify refuses the documented signature: $(cat "$T/out")"
ok "openssl pkeyutl -verify -rawin accepts the documented signature"

# A tampered message: the NHS number's last digit 9 → 8.
tampered="${msg%39}38"
[ "$tampered" != "$msg" ] || fail "could not tamper with the message"
hex2bin "$tampered" >"$T/tampered.bin"
if openssl pkeyutl -verify -pubin -inkey "$T/docpub.pem" -rawin \
	-in "$T/tampered.bin" -sigfile "$T/docsig.bin" >"$T/out" 2>&1; then
	fail "openssl accepts the signature on a tampered message"
fi
ok "openssl pkeyutl -verify refuses a tampered message"

# The body alone (no context) does not verify either.
hex2bin "$body" >"$T/body.bin"
if openssl pkeyutl -verify -pubin -inkey "$T/docpub.pem" -rawin \
	-in "$T/body.bin" -sigfile "$T/docsig.bin" >"$T/out" 2>&1; then
	fail "openssl accepts the signature over the body without the context"
fi
ok "the signature does not verify over the body without the context"

# A tampered signature.
badsig="${sig:0:126}$(printf '%02x' $(( 0x${sig:126:2} ^ 1 )))"
hex2bin "$badsig" >"$T/badsig.bin"
if openssl pkeyutl -verify -pubin -inkey "$T/docpub.pem" -rawin \
	-in "$T/msg.bin" -sigfile "$T/badsig.bin" >"$T/out" 2>&1; then
	fail "openssl accepts a tampered signature"
fi
ok "openssl pkeyutl -verify refuses a tampered signature"

# ---- signer and pseudonym -------------------------------------------------------
same "signer input" "$signer_input" "$(printf 'ehx test vector certificate' | bin2hex)"
hex2bin "$signer_input" >"$T/signer_input.bin"
same "signer" "$(openssl dgst -sha256 -r "$T/signer_input.bin" | cut -c1-64)" "$signer"
ok "signer = SHA-256(\"ehx test vector certificate\")"

same "pseudonym input" "$pinput" "$(printf '9434765919' | bin2hex)"
hex2bin "$pinput" >"$T/nhs.bin"
same "pseudonym" "$(openssl dgst -sha256 -mac HMAC -macopt "hexkey:$pkey" -r \
	"$T/nhs.bin" | cut -c1-64)" "$pseudonym"
ok "pseudonym = HMAC-SHA256(key, \"9434765919\")"
