#!/bin/sh
# gen-secrets.sh writes deployments/secrets/, the files compose.yaml hands to its
# services: random passwords for NATS and MongoDB, a MongoDB keyfile, an admin
# API token, and for app 0 a fresh message-push Token and EncodingAESKey. The
# AppSecret cannot be made up: paste the one from the mini program console
# (Development > Development Settings) into secrets/app0_secret.
#
# The Token and EncodingAESKey are chosen by you and then entered in the console
# (Development > Development Settings > Message Push), together with the URL
# https://YOUR-HOST/wechat/{appid}.
#
# It never overwrites: delete secrets/ to start over (and re-create the volumes,
# since MongoDB and NATS keep the passwords they were first started with).
set -eu

cd "$(dirname "$0")/.."
dir=secrets
if [ -e "$dir" ]; then
	echo "gen-secrets: $(pwd)/$dir already exists; remove it to generate new secrets" >&2
	exit 1
fi

# rand N prints N random characters from [A-Za-z0-9]: safe in URLs, YAML and
# NATS configuration without quoting, and a valid EncodingAESKey at N=43.
rand() {
	LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1"
}

# The directory is private to you. The files in it are world-readable because
# compose bind-mounts them as they are, and the containers read them as their
# own unprivileged users (wxgate 65532, mongodb 999).
umask 077
mkdir "$dir"
umask 022

put() {
	printf '%s\n' "$2" >"$dir/$1"
}

nats_wxgate=$(rand 32)
mongo_wxgate=$(rand 32)

put nats.env "NATS_WXGATE_PASSWORD=$nats_wxgate
NATS_DOWNSTREAM_PASSWORD=$(rand 32)
NATS_SYS_PASSWORD=$(rand 32)"
put nats_url "nats://wxgate:$nats_wxgate@nats-1:4222,nats://wxgate:$nats_wxgate@nats-2:4222,nats://wxgate:$nats_wxgate@nats-3:4222"

put mongo_root_password "$(rand 32)"
put mongo_wxgate_password "$mongo_wxgate"
put mongo_keyfile "$(rand 756)"
put mongo_uri "mongodb://wxgate:$mongo_wxgate@mongo:27017/wxgate?replicaSet=rs0&authSource=admin"

# admin.tokens: comma-separated; list two during a rotation.
put admin_tokens "$(rand 40)"

put app0_secret "REPLACE_ME_WITH_THE_APPSECRET_FROM_THE_CONSOLE"
put app0_token "$(rand 32)"
put app0_encoding_aes_key "$(rand 43)"
# Empty unless an EncodingAESKey rotation is under way (README.md).
: >"$dir/app0_previous_encoding_aes_key"

chmod 0644 "$dir"/*

cat <<MSG
Wrote $(pwd)/$dir.

Next:
  1. Put the AppSecret of your mini program into $dir/app0_secret and its appid
     into compose/wxgate.yaml (apps[0].appid).
  2. In the mini program console, Message Push: URL https://YOUR-HOST/wechat/APPID,
     Token = contents of $dir/app0_token,
     EncodingAESKey = contents of $dir/app0_encoding_aes_key,
     then the encryption mode and data format you want.
  3. docker compose up -d --build   (from $(pwd))
MSG
