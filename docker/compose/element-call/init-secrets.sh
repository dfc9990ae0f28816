#!/usr/bin/env bash
# Creates the stack's secrets and the two config files that must contain them:
#   secrets/turn_shared_secret   TURN REST secret (homeserver, LiveKit, turn-server)
#   secrets/livekit_keys.yaml    LiveKit API key and secret (LiveKit, lk-jwt-service)
#   turnserver.conf, livekit.yaml, traefik-turns.yml  from the *.example files, values
#                                from .env (only turnserver.conf holds a secret)
# Existing secrets are kept, so re-running only re-renders the config files.
# Run as root so the files can belong to uid 10001, the user of our two images.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -f .env ]; then
  echo "init-secrets: no .env here; cp .env.example .env and edit it first" >&2
  exit 1
fi
# Read only the variables we need; never `export $(cat .env | xargs)`.
value() {
  local line
  line=$(grep -E "^$1=" .env | tail -n 1) || true
  line=${line#*=}
  if [ -z "$line" ]; then
    echo "init-secrets: $1 is not set in .env" >&2
    exit 1
  fi
  printf '%s' "$line"
}
turn_domain=$(value TURN_DOMAIN)
rtc_domain=$(value RTC_DOMAIN)
external_ip=$(value EXTERNAL_IP)
local_ip=$(value LOCAL_IP)

umask 077
mkdir -p secrets
if [ ! -s secrets/turn_shared_secret ]; then
  openssl rand -hex 32 > secrets/turn_shared_secret
  echo "init-secrets: created secrets/turn_shared_secret"
fi
if [ ! -s secrets/livekit_keys.yaml ]; then
  printf 'lk-%s: %s\n' "$(openssl rand -hex 6)" "$(openssl rand -hex 32)" > secrets/livekit_keys.yaml
  echo "init-secrets: created secrets/livekit_keys.yaml"
fi
turn_secret=$(tr -d '\n' < secrets/turn_shared_secret)

render() {
  sed -e "s|@TURN_DOMAIN@|${turn_domain}|g" \
      -e "s|@RTC_DOMAIN@|${rtc_domain}|g" \
      -e "s|@EXTERNAL_IP@|${external_ip}|g" \
      -e "s|@LOCAL_IP@|${local_ip}|g" \
      -e "s|@TURN_SHARED_SECRET@|${turn_secret}|g" "$1" > "$2"
  echo "init-secrets: wrote $2"
}
render turnserver.conf.example turnserver.conf
render livekit.yaml.example livekit.yaml
render traefik-turns.yml.example traefik-turns.yml
# Filled by certs-dumper (as root); certs-hook.sh hands the files to uid 10001.
mkdir -p data/certs

if [ "$(id -u)" -eq 0 ]; then
  # Our two images run as uid 10001 (lk-jwt-service reads the key file, turn-server its
  # configuration); LiveKit and the homeserver read theirs as root. If your homeserver
  # image runs as another user, chown secrets/turn_shared_secret to that user.
  chown 10001:10001 secrets/livekit_keys.yaml turnserver.conf
else
  echo "init-secrets: not root; run: sudo chown 10001:10001 secrets/livekit_keys.yaml turnserver.conf" >&2
fi
chmod 600 secrets/turn_shared_secret secrets/livekit_keys.yaml turnserver.conf livekit.yaml
chmod 644 traefik-turns.yml
