#!/usr/bin/env bash
# The web console against hostile input, over real HTTP on loopback:
# sign-in and its form token, lock-out, forged and replayed session cookies,
# cross-site forms (no token, another site's Origin), script in every field,
# bad UTF-8, oversized requests, path traversal, roles, idle expiry, the
# trusted front proxy; and that what the console asks takes the audited path.
. "$(dirname "$0")/lib.sh"

export EHX_CONSOLE=1
sandbox_up
PW=$(cat "$SB/console-password")
POLICE=$(cat "$SB/agencies/police/console.url")
J=$SB/jars
mkdir -p "$J"

# req JAR ARGS...: curl with a cookie jar; prints the status, keeps the
# body in $SB/body and the headers in $SB/headers.
req() {
	local jar=$1; shift
	curl -s -o "$SB/body" -D "$SB/headers" -w '%{http_code}' \
		-b "$J/$jar" -c "$J/$jar" "$@"
}

# sign_in JAR URL ACCOUNT PASSWORD: the sign-in form, as a browser sends it.
sign_in() {
	local jar=$1 url=$2 account=$3 password=$4 tok
	shift 4
	rm -f "$J/$jar"
	req "$jar" "$@" "${url}login" >/dev/null
	tok=$(grep -o 'name="csrf" value="[0-9a-f]*"' "$SB/body" | sed 's/.*value="//; s/"$//')
	req "$jar" "$@" --data-urlencode "csrf=$tok" --data-urlencode "account=$account" \
		--data-urlencode "password=$password" "${url}login"
}

# form_token JAR URL: the session's form token from a page.
form_token() {
	req "$1" "${2}" >/dev/null
	grep -o 'name="csrf" value="[0-9a-f]*"' "$SB/body" | head -1 | sed 's/.*value="//; s/"$//'
}

ehx_as police publish "$CHILD_A" --category domestic_abuse --level 3 \
	--practitioner "PC Jones" --wait >/dev/null
ehx_as health publish "$CHILD_A" --category mental_health --level 2 \
	--practitioner "Alex Patel" --wait >/dev/null
before=$(snapshot)

# --- signed out --------------------------------------------------------------
assert_eq "$(req anon "${POLICE}child?nhs=$CHILD_A")" 303 "signed out: a page redirects"
assert_match "$(grep -i '^location:' "$SB/headers")" "/login" "... to the sign-in page"
assert_eq "$(req anon --data "nhs=$CHILD_A&relation=parent" "${POLICE}consent")" 403 \
	"signed out: a form is refused"
assert_eq "$(req anon --data "account=io&password=$PW" "${POLICE}login")" 403 \
	"sign-in without its form token is refused"
assert_match "$(cat "$SB/body")" "expired" "... saying so"

# --- sign-in -----------------------------------------------------------------
assert_eq "$(sign_in io "$POLICE" io wrong-password-1)" 401 "a wrong password is refused"
assert_match "$(cat "$SB/body")" "account name or the password is wrong" "... in a sentence"
assert_eq "$(sign_in io "$POLICE" nobody-here "$PW")" 401 "an unknown account is refused alike"
assert_eq "$(sign_in io "$POLICE" io "$PW")" 303 "the right password signs in"
cookie=$(grep -i '^set-cookie: ehx_session=' "$SB/headers")
assert_match "$cookie" "HttpOnly" "the session cookie is HttpOnly"
assert_match "$cookie" "SameSite=Strict" "... and SameSite=Strict"
assert_eq "$(req io "$POLICE")" 200 "the home page"
assert_match "$(cat "$SB/body")" "Find a child" "... offers the child search"
assert_match "$(grep -i '^content-security-policy:' "$SB/headers")" "default-src 'none'" \
	"pages carry a strict Content-Security-Policy"
CSRF=$(form_token io "$POLICE")
[ ${#CSRF} = 64 ] || fail "no form token on the page"

# --- what the console asks is audited as the person ---------------------------
assert_eq "$(req io "${POLICE}child?nhs=$CHILD_A")" 200 "search a child"
assert_match "$(cat "$SB/body")" "No consent covers this agency" "no consent: refused"
assert_no_match "$(cat "$SB/body")" "PC Jones|Alex Patel|mental" "... and nothing about the child shown"
OUT=$(ehx_as health --as ig_officer audit --child "$CHILD_A" --json)
assert_match "$OUT" '"user_id": *"police-io"' "the broker audited the console's question as police-io"
assert_match "$OUT" '"role": *"information_officer"' "... in the role information_officer"

# --- cross-site forms ----------------------------------------------------------
consent_form="nhs=$CHILD_A&relation=parent&given_name=Kim&agency_type=police&purpose=whole_picture&basis=consent&expires=2030-01-01&evidence_ref=FORM-7"
assert_eq "$(req io --data "$consent_form" "${POLICE}consent")" 403 "a form without the token is refused"
assert_match "$(cat "$SB/body")" "Nothing was done" "... and says nothing was done"
assert_eq "$(req io --data "csrf=$(printf '%064d' 0)&$consent_form" "${POLICE}consent")" 403 \
	"a form with a wrong token is refused"
assert_eq "$(req io -H 'Origin: http://evil.example' --data "csrf=$CSRF&$consent_form" \
	"${POLICE}consent")" 403 "a form from another site's origin is refused"
assert_eq "$(snapshot)" "$before" "no refused form changed the broker's store"

# What browsers send: "Origin: null" is taken only from a same-origin
# fetch; Sec-Fetch-Site cross-site is refused whatever the Origin.
assert_eq "$(req io -H 'Origin: null' --data "csrf=$CSRF&$consent_form" "${POLICE}consent")" 403 \
	"Origin: null without Sec-Fetch-Site is refused"
assert_eq "$(req io -H 'Sec-Fetch-Site: cross-site' --data "csrf=$CSRF&$consent_form" \
	"${POLICE}consent")" 403 "Sec-Fetch-Site: cross-site is refused"
assert_eq "$(snapshot)" "$before" "no refused form changed the broker's store"
assert_eq "$(req io -H 'Origin: null' -H 'Sec-Fetch-Site: same-origin' \
	--data "csrf=$CSRF&nhs=$CHILD_A&reason=too+short" "${POLICE}breakglass")" 400 \
	"Origin: null from a same-origin fetch is answered (here: the reason is too short)"
# The browser's own favicon fetch must not void the sign-in form on screen.
rm -f "$J/fav"
req fav "${POLICE}login" >/dev/null
tok1=$(grep -o 'name="csrf" value="[0-9a-f]*"' "$SB/body" | sed 's/.*value="//; s/"$//')
assert_eq "$(req fav "${POLICE}favicon.ico")" 404 "/favicon.ico is 404, not a redirect to the sign-in"
req fav "${POLICE}login" >/dev/null
tok2=$(grep -o 'name="csrf" value="[0-9a-f]*"' "$SB/body" | sed 's/.*value="//; s/"$//')
assert_eq "$tok2" "$tok1" "loading the sign-in page again keeps its token"

# --- forged and replayed sessions ----------------------------------------------
forged="ehx_session=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -b "$forged" "${POLICE}child")" 303 \
	"a forged session cookie signs nobody in"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -b 'ehx_session=../../x' "${POLICE}child")" 303 \
	"a malformed session cookie signs nobody in"
sign_in old "$POLICE" io "$PW" >/dev/null
old_csrf=$(form_token old "$POLICE")
cp "$J/old" "$J/replay"
assert_eq "$(req old --data "csrf=$old_csrf" "${POLICE}logout")" 303 "sign out"
assert_eq "$(req replay "${POLICE}child")" 303 "the signed-out session's cookie, replayed, is refused"
assert_eq "$(req replay --data "csrf=$old_csrf&$consent_form" "${POLICE}consent")" 403 \
	"... and so is its form token"

# --- script in every field, bad UTF-8, bounds ----------------------------------
xss='<script>alert(1)</script>"'"'"'><img src=x onerror=alert(2)>'
for f in nhs relation given_name agencies basis expires agency_type purpose evidence_ref; do
	st=$(req io --data-urlencode "csrf=$CSRF" --data-urlencode "nhs=$CHILD_A" \
		--data-urlencode "relation=parent" --data-urlencode "given_name=Kim" \
		--data-urlencode "purpose=whole_picture" --data-urlencode "basis=consent" \
		--data-urlencode "expires=2030-01-01" --data-urlencode "evidence_ref=FORM-8" \
		--data-urlencode "$f=$xss" "${POLICE}consent")
	[ "$st" = 400 ] || fail "script in $f: status $st, wanted 400"
	grep -q '<script>alert\|<img src=x' "$SB/body" && fail "script in $f came back unescaped"
done
ok "script in each consent field: refused with 400, nothing unescaped"
st=$(req io --data-urlencode "csrf=$CSRF" --data-urlencode "nhs=$CHILD_A" \
	--data-urlencode "reason=$xss$xss" "${POLICE}breakglass")
grep -q '<script>alert\|<img src=x' "$SB/body" && fail "script in a break-glass reason came back unescaped"
ok "script in a break-glass reason is escaped ($st)"
for q in "nhs=$xss" "nhs=$CHILD_A&done=$xss"; do
	req io -G --data-urlencode "${q%%=*}=${q#*=}" "${POLICE}child" >/dev/null
	grep -q '<script>alert\|<img src=x' "$SB/body" && fail "script in the query [$q] came back unescaped"
done
ok "script in query arguments is escaped"
assert_eq "$(req io "${POLICE}child?nhs=%ff%fe")" 400 "bad UTF-8 in a query is refused"
assert_match "$(cat "$SB/body")" "not valid UTF-8" "... saying so"
assert_eq "$(req io --data-binary "csrf=$CSRF&nhs=$CHILD_A&relation=parent&given_name=K%C3%28&purpose=whole_picture&basis=consent&expires=2030-01-01&agency_type=police" \
	"${POLICE}consent")" 400 "bad UTF-8 in a form is refused"
assert_eq "$(req io --data-binary "csrf=$CSRF&nhs=$CHILD_A&given_name=a%00b" "${POLICE}consent")" 400 \
	"a NUL in a form is refused"
assert_eq "$(req io --data-binary "csrf=$CSRF&$(head -c 20000 /dev/zero | tr '\0' a)=1" "${POLICE}consent")" 413 \
	"a body over 16 KiB is refused"
st=$(curl -s -o /dev/null -w '%{http_code}' -b "$J/io" -H "X-Big: $(head -c 40000 /dev/zero | tr '\0' a)" "${POLICE}")
[ "$st" -ge 400 ] || fail "a 40 KB header was answered $st"
ok "a 40 KB header is refused ($st)"
many=$(for i in $(seq 1 80); do printf 'purpose=whole_picture&'; done)
assert_eq "$(req io --data "csrf=$CSRF&${many}nhs=$CHILD_A" "${POLICE}consent")" 400 "80 fields are refused"
assert_eq "$(req io --data "csrf=$CSRF&Bad-Name=1" "${POLICE}consent")" 400 "an unknown kind of field name is refused"
assert_eq "$(req io -X PUT "${POLICE}child")" 405 "PUT is refused"
assert_eq "$(snapshot)" "$before" "no hostile form changed the broker's store"

# --- path traversal --------------------------------------------------------------
for p in "static/../../../../etc/passwd" "static/%2e%2e/%2e%2e/etc/passwd" \
	"static/..%2fconsole.css" "static//etc/passwd" "static/console.css/.." "..%5c..%5cetc/passwd"; do
	st=$(curl -s --path-as-is -o "$SB/body" -w '%{http_code}' "${POLICE}$p")
	[ "$st" = 404 ] || [ "$st" = 400 ] || fail "GET /$p answered $st"
	grep -q 'root:' "$SB/body" && fail "GET /$p leaked a file"
done
ok "path traversal gets 404 and no file"
assert_eq "$(curl -s -o "$SB/body" -w '%{http_code}' "${POLICE}static/console.css")" 200 "the stylesheet is served"

# --- roles -----------------------------------------------------------------------
assert_eq "$(req io "${POLICE}ig/audit")" 403 "an information officer cannot read the audit"
assert_eq "$(sign_in ig "$POLICE" ig "$PW")" 303 "the IG officer signs in"
assert_eq "$(req ig "${POLICE}child?nhs=$CHILD_A")" 403 "an IG officer gets no child's picture"
assert_eq "$(req ig "${POLICE}ig/signins")" 200 "the sign-in log"
assert_match "$(cat "$SB/body")" "failed-password" "... shows the failed password"
assert_match "$(cat "$SB/body")" "failed-account" "... the unknown account"
assert_match "$(cat "$SB/body")" "signed-out" "... and the sign-out"

# --- idle expiry and the trusted proxy (the housing and school agents) --------------
# An account reaches the console through the trusted proxy only when its
# users-file entry says console = proxy (issue 16): sso at housing and
# school; io (console = password, the default) signs in with its password.
# (sso has io's password line too, to show it is not taken; off has one
# and console = no.)
for a in housing school; do
	printf '\n[sso]\nid = %s-sso\nname = Sam Sso\nroles = information_officer\nconsole = proxy\npassword = %s\n' \
		"$a" "$(cat "$SB/.io-hash")" >>"$SB/agencies/$a/users.ini"
	printf '\n[off]\nid = %s-off\nname = Off Duty\nroles = information_officer\nconsole = no\npassword = %s\n' \
		"$a" "$(cat "$SB/.io-hash")" >>"$SB/agencies/$a/users.ini"
done
conf=$SB/agencies/housing/agent.conf
printf '[console]\nidle_seconds = 5\ntrusted_proxy = ::ffff:127.0.0.1\nproxy_user_header = X-Sso-User\n' >>"$conf"
"$top/tests/sandbox" stop housing "$SB" >/dev/null
"$top/tests/sandbox" start housing "$SB" >/dev/null
HOUSING=$(cat "$SB/agencies/housing/console.url")
assert_eq "$(sign_in h "$HOUSING" io "$PW")" 303 "sign in at housing (idle_seconds = 5)"
assert_eq "$(req h "$HOUSING")" 200 "... a page at once"
sleep 6
assert_eq "$(req h "$HOUSING")" 303 "after 6 s idle the session has ended"
assert_eq "$(req hp -H 'X-Sso-User: sso' "$HOUSING")" 303 \
	"trusted_proxy written as ::ffff:127.0.0.1 is 127.0.0.1"
assert_eq "$(req hp -H 'X-Sso-User: sso' "$HOUSING")" 200 "... whose sign-on then goes on"

conf=$SB/agencies/school/agent.conf
printf '[console]\ntrusted_proxy = 127.0.0.1\nproxy_user_header = X-Remote-User\naccount_failures = 3\n' >>"$conf"
"$top/tests/sandbox" stop school "$SB" >/dev/null
"$top/tests/sandbox" start school "$SB" >/dev/null
SCHOOL=$(cat "$SB/agencies/school/console.url")
assert_eq "$(req p -H 'X-Remote-User: sso' "${SCHOOL}ig/signins?x=1")" 303 \
	"the trusted proxy's header signs sso in, first on the home page only"
assert_match "$(grep -i '^location:' "$SB/headers")" "/\\s*$" "... (a deep link from elsewhere runs nothing)"
assert_eq "$(req p -H 'X-Remote-User: sso' "$SCHOOL")" 200 "... then the session goes on"
assert_match "$(cat "$SB/body")" "\\(sso\\)" "... as sso"
assert_eq "$(req p4 -H 'X-Remote-User: sso' -H 'X-Remote-User: ig' "$SCHOOL")" 400 \
	"the header twice (a client's own beside the proxy's) is refused"
assert_eq "$(req p2 -H 'X-Remote-User: nobody-here' "$SCHOOL")" 403 "... an account not in the users file is refused"
assert_eq "$(req p5 -H 'X-Remote-User: io' "$SCHOOL")" 403 \
	"an account whose entry does not say console = proxy is refused through the proxy"
assert_match "$(cat "$SB/body")" "console = proxy" "... saying why"
assert_eq "$(sign_in p6 "$SCHOOL" sso "$PW")" 401 \
	"an account that says console = proxy cannot sign in with its password"
assert_eq "$(sign_in p7 "$SCHOOL" off "$PW")" 401 \
	"an account that says console = no cannot sign in at all"
assert_eq "$(req p8 -H 'X-Remote-User: off' "$SCHOOL")" 403 "... nor through the proxy"
if curl -s --interface 127.0.0.2 -o /dev/null "$SCHOOL" 2>/dev/null; then
	assert_eq "$(req p3 --interface 127.0.0.2 -H 'X-Remote-User: sso' "$SCHOOL")" 303 \
		"the header from another address is ignored"
fi

# Failed sign-ins count per account from every address too (issue 16):
# guessing spread over addresses is stopped (account_failures = 3 here).
for ip in 127.0.0.2 127.0.0.3 127.0.0.4; do
	assert_eq "$(sign_in "l$ip" "$SCHOOL" io "wrong-password-$ip" --interface "$ip")" 401 \
		"a wrong password for io from $ip"
done
assert_eq "$(sign_in l5 "$SCHOOL" io "$PW" --interface 127.0.0.5)" 429 \
	"after three failures from three addresses, io is locked out from a fourth"

# --- TLS (the health agent, with a certificate made by the openssl command) ------
a=$SB/agencies/health
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$a/console.key" -out "$a/console.crt" -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 2>/dev/null || fail "openssl req"
chmod 644 "$a/console.key"
printf '[console]\ncertificate = console.crt\nkey = console.key\n' >>"$a/agent.conf"
expect_status 1 "$BIN/ehx-agent" -c "$a/agent.conf"
assert_match "$OUT" "console.key: cannot read the console's key: .*(permission|readable)" \
	"a console key others may read is refused"
chmod 600 "$a/console.key"
"$top/tests/sandbox" stop health "$SB" >/dev/null
"$top/tests/sandbox" start health "$SB" >/dev/null
HEALTH=$(cat "$a/console.url")
assert_match "$HEALTH" "^https://127.0.0.1:" "with a certificate the console is HTTPS"
assert_eq "$(curl -s --cacert "$a/console.crt" -o /dev/null -w '%{http_code}' "${HEALTH}login")" 200 \
	"the sign-in page over TLS, verified against the certificate"
sign_in t "$HEALTH" io "$PW" --cacert "$a/console.crt" >/dev/null
assert_match "$(grep -i '^set-cookie: ehx_session=' "$SB/headers")" "; Secure" \
	"over TLS the session cookie is Secure"
assert_match "$(grep -i '^strict-transport-security:' "$SB/headers")" "max-age" "... and HSTS is sent"
st=$(curl -s -o /dev/null -w '%{http_code}' "${HEALTH/https/http}login" || true)
[ "$st" != 200 ] || fail "plain HTTP was answered on the TLS port"
ok "plain HTTP is not answered on the TLS port ($st)"

# TLS 1.2 and 1.3 only (issue 16): a client that offers no more than TLS
# 1.1 (or 1.0) is refused at the handshake. (SECLEVEL=0 lets this
# openssl offer the old versions at all.)
hp=${HEALTH#https://}; hp=${hp%/}
for v in tls1 tls1_1; do
	if openssl s_client -connect "$hp" -$v -cipher 'DEFAULT:@SECLEVEL=0' \
		</dev/null 2>/dev/null | grep -q 'Protocol *: TLSv1\(\.1\)\?$'; then
		fail "the console accepted a -$v handshake"
	fi
done
ok "TLS 1.0 and 1.1 are refused"
openssl s_client -connect "$hp" -tls1_2 </dev/null 2>/dev/null | grep -q 'Protocol *: TLSv1.2' ||
	fail "the console refused TLS 1.2"
ok "TLS 1.2 is accepted"

# A renewed certificate is taken on SIGHUP, and nobody is signed out.
assert_eq "$(req t --cacert "$a/console.crt" "$HEALTH")" 200 "signed in before the renewal"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$a/console.key.new" -out "$a/console.crt.new" -days 3 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 2>/dev/null || fail "openssl req (renewal)"
chmod 600 "$a/console.key.new"
# The agent reads it as its own user then (nobody, when the sandbox runs
# as root).
[ "$(id -u)" = 0 ] && chown nobody "$a/console.key.new"
cp "$a/console.crt" "$a/console.crt.old"
mv "$a/console.key.new" "$a/console.key"
mv "$a/console.crt.new" "$a/console.crt"
kill -HUP "$(cat "$a/pid")"
i=0
until grep -q "console certificate and key reloaded" "$a/agent.log"; do
	i=$((i + 1)); [ $i -lt 200 ] || fail "the agent did not reload the console's certificate"
	sleep 0.05
done
assert_eq "$(req t --cacert "$a/console.crt" "$HEALTH")" 200 \
	"after SIGHUP the renewed certificate is served, and the session goes on"
st=$(curl -s --cacert "$a/console.crt.old" -o /dev/null -w '%{http_code}' "${HEALTH}login" || true)
[ "$st" != 200 ] || fail "the old certificate is still served"
ok "the old certificate is no longer served"

# --- what the log keeps -------------------------------------------------------------
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "${POLICE}x%0a2026-01-01T00:00:00.000Z%20forged")" 400 \
	"a control character in the address is refused"
grep -q "forged" "$SB/agencies/police/agent.log" && fail "a forged log line was written"
ok "... and never reaches the log"
sign_in y "$POLICE" "$PW" "whatever-password" >/dev/null
grep -qF -- "$PW" "$SB/agencies/police/agent.log" && fail "a password typed as the account name was logged"
assert_eq "$(req ig "${POLICE}ig/signins")" 200 "the sign-in log again"
grep -qF -- "$PW" "$SB/body" && fail "a password typed as the account name was kept"
ok "a password typed as the account name is neither logged nor kept"

# --- a session ends when its account's password line changes ------------------------
assert_eq "$(sign_in io2 "$POLICE" io "$PW")" 303 "io signs in again"
sed -i '/^\[io\]/,/^\[/{/^password = /d}' "$SB/agencies/police/users.ini"
kill -HUP "$(cat "$SB/agencies/police/pid")"
sleep 0.5
assert_eq "$(req io2 "${POLICE}")" 303 "with its password line gone, io's session has ended"
assert_eq "$(req ig "${POLICE}ig/signins")" 200 "(the IG officer's goes on)"
assert_match "$(cat "$SB/body")" "session-ended" "... and the sign-in log says so"

# --- lock-out (last: it locks ig at 127.0.0.1 out of the police console) ------------
for i in 1 2 3 4 5; do sign_in x "$POLICE" ig "wrong-$i-password" >/dev/null; done
assert_eq "$(sign_in x "$POLICE" ig "$PW")" 429 "after 5 failures even the right password is refused"
assert_match "$(cat "$SB/body")" "Too many failed sign-ins" "... saying why"
for i in 1 2 3; do sign_in x "$POLICE" ig "$PW" >/dev/null; done
assert_eq "$(req ig "${POLICE}ig/signins")" 200 "a session begun before the lock-out goes on"
assert_eq "$(grep -c '<td>locked-out</td>' "$SB/body")" 1 \
	"the lock-out is on record once, however often it is tried"
assert_eq "$(grep -c 'locked-out' "$SB/agencies/police/agent.log")" 1 "... and logged once"

kill -0 "$(cat "$SB/agencies/police/pid")" || fail "the police agent died"
ok "the agent is still running"
assert_eq "$(snapshot)" "$before" "the broker's store is as it was"
