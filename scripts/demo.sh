#!/usr/bin/env bash
# Strata demo: real SoftHSM2 tokens stacked into one virtual token, shown
# through real clients (pkcs11-tool, OpenSSL). Installs what it needs,
# builds, and works in ./demo (created afresh; nothing else is touched).
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

say()  { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

say "Installing what the demo needs and building Strata"
scripts/deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
module=$top/build/engine/strata-pkcs11.so
strata=$top/build/cli/strata
softhsm=/usr/lib/softhsm/libsofthsm2.so

say "A sandbox in ./demo with its own SoftHSM2 token directory"
rm -rf demo && mkdir -p demo/tokens
export SOFTHSM2_CONF=$top/demo/softhsm2.conf STRATA_CONF=$top/demo/strata.xml
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
  "$top/demo/tokens" >"$SOFTHSM2_CONF"

p11() { pkcs11-tool --module "$softhsm" "$@" 2>/dev/null; }
softhsm2-util --init-token --free --label team-keys --so-pin 5555 --pin group-pin >/dev/null
softhsm2-util --init-token --free --label alice --so-pin 5555 --pin alice-pin >/dev/null
p11 --token-label team-keys --login --pin group-pin --keypairgen --key-type EC:prime256v1 \
  --label shared-signing --id 01 >/dev/null
p11 --token-label alice --login --pin alice-pin --keypairgen --key-type RSA:2048 \
  --label alice-rsa --id 02 >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=Team root" -keyout demo/team-root.key -out demo/team-root.pem 2>/dev/null
openssl x509 -in demo/team-root.pem -outform DER -out demo/team-root.der
rm -f demo/team-root.key
p11 --token-label team-keys --login --pin group-pin --write-object demo/team-root.der \
  --type cert --label team-root --id 10 >/dev/null
echo "two SoftHSM2 tokens: team-keys (the group's shared EC key and its root certificate)"
echo "and alice (her RSA key)"
echo "the pseudonym has no token yet: Strata will create one on its first login"

say "The policy: one virtual token 'Strata', a work view and a pseudonym view"
cat >"$STRATA_CONF" <<EOF
<strata version="1">
  <catalog path="catalog.db"/>
  <module id="soft" path="$softhsm"/>
  <layer id="personal" module="soft" token="alice"/>
  <layer id="group" module="soft" token="team-keys" access="read-only"/>
  <layer id="nym" module="soft" token="strata-{view}" provision="lazy"/>
  <token label="Strata">
    <kdf ops="2" mem="67108864"/>
    <view id="work" layers="personal group" whiteout="allow">
      <rules>
        set label = "team/" + label where layer == "group"
        deny destroy where layer == "group"
      </rules>
    </view>
    <view id="pseudonym" layers="nym"/>
  </token>
</strata>
EOF
sed 's/^/    /' "$STRATA_CONF"

say "Checking the policy and creating the catalog"
show "$strata" check
show "$strata" init

say "Enrolling two PINs: 1111 selects the work view, 2222 the pseudonym"
echo "(the work view needs alice's and the group's PINs; the pseudonym's token PINs Strata generates)"
printf '1111\nalice-pin\ngroup-pin\n' | "$strata" enroll --token Strata --view work --pin-stdin
printf '2222\n' | "$strata" enroll --token Strata --view pseudonym --pin-stdin
show "$strata" status

say "pkcs11-tool sees one virtual token"
show pkcs11-tool --module "$module" -L

say "Before any login the token shows its first view (work): certificates and public keys"
echo "(what NSS, OpenSSL, p11tool and ssh-keygen look up before they ask for a PIN; no private key)"
show pkcs11-tool --module "$module" --list-objects
show pkcs11-tool --module "$module" --read-object --type cert --label team/team-root \
  --output-file demo/found.der
show openssl x509 -inform DER -in demo/found.der -noout -subject

say "PIN 1111 (work): personal and group objects, stacked; the group's labels rewritten by a rule"
show pkcs11-tool --module "$module" --login --pin 1111 --list-objects --type privkey

say "First login with PIN 2222: Strata provisions the pseudonym's token on a free slot"
echo "SoftHSM2's tokens before:"
softhsm2-util --show-slots 2>/dev/null | grep -E '^ +Label: +[^ ]' | sed 's/^ */    /'
show pkcs11-tool --module "$module" --login --pin 2222 --keypairgen --key-type EC:prime256v1 \
  --label nym-key --id 03
echo "SoftHSM2's tokens after:"
softhsm2-util --show-slots 2>/dev/null | grep -E '^ +Label: +[^ ]' | sed 's/^ */    /'

say "PIN 2222 (pseudonym): only the pseudonym's key; the work identity is invisible"
show pkcs11-tool --module "$module" --login --pin 2222 --list-objects --type privkey
show "$strata" views

say "Signing with the group's shared key through Strata, verifying with OpenSSL"
echo "hello from the demo" >demo/message.txt
openssl dgst -sha256 -binary -out demo/message.sha256 demo/message.txt
# SoftHSM2 offers raw ECDSA: hash with OpenSSL, sign the digest through Strata.
show pkcs11-tool --module "$module" --login --pin 1111 --sign --mechanism ECDSA \
  --id 01 --input-file demo/message.sha256 --output-file demo/message.sig \
  --signature-format openssl
p11 --token-label team-keys --read-object --type pubkey --label shared-signing \
  --output-file demo/shared.der >/dev/null
openssl pkey -pubin -inform DER -in demo/shared.der -out demo/shared.pem
show openssl dgst -sha256 -verify demo/shared.pem -signature demo/message.sig demo/message.txt

say "A new key made through Strata lands in the personal layer (alice), not the group"
show pkcs11-tool --module "$module" --login --pin 1111 --keypairgen --key-type EC:prime256v1 \
  --label made-through-strata --id 0a
echo "SoftHSM2 directly, token alice:"
p11 --token-label alice --login --pin alice-pin --list-objects --type privkey | grep -E 'label' | sed 's/^/    /'
echo "SoftHSM2 directly, token team-keys:"
p11 --token-label team-keys --login --pin group-pin --list-objects --type privkey | grep -E 'label' | sed 's/^/    /'

say "Why does the work view show 'team/shared-signing'? strata explain says"
printf '\033[2m$ strata explain --view work shared-signing\033[0m\n'
printf '1111\n' | "$strata" explain --view work --pin-stdin shared-signing

say "Done. The sandbox stays in ./demo; try:"
echo "    SOFTHSM2_CONF=$SOFTHSM2_CONF STRATA_CONF=$STRATA_CONF pkcs11-tool --module $module --login --pin 1111 -O"
