#!/usr/bin/env bash
# The real test of the two images, with no registry, from Debian packages only:
#
#  1. a bookworm base made with `debootstrap --variant=minbase`, imported into buildah
#     storage as docker.io/library/debian:bookworm-slim (the name docker/Dockerfile uses);
#  2. the runtime stages of docker/Dockerfile built with `buildah bud --format docker
#     --isolation chroot --storage-driver vfs --build-arg BINARIES=prebuilt` from binaries
#     cargo built (the Rust stage is skipped, so no Rust image is pulled);
#  3. each image exported with `buildah push ... docker-archive:`; its manifest and config
#     must be Docker media types with config.Healthcheck and config.User set;
#  4. a Docker 20.10.24 engine from Debian's docker.io, containerd and runc packages,
#     unpacked with dpkg-deb (never installed), on a private socket with its own
#     data-root, vfs storage, no bridge and no iptables;
#  5. `docker load` of each archive, `docker run`, and a wait until `docker inspect` reports
#     the image's own HEALTHCHECK as healthy;
#  6. `docker-compose up` (Debian's 1.29) of docker/compose/turn-server and
#     docker/compose/lk-jwt-service against that engine, healthy again.
#
# Needs root and Debian's package archive. Environment:
#   IMAGE_TEST_BINARIES  directory holding turn-server and lk-jwt-service already built
#                        (e.g. target/debug after ./test.sh); default: cargo build --release
#   IMAGE_TEST_CACHE     where the .deb files and the debootstrap base are kept between runs
#                        (default ~/.cache/matrix-rtc-relay-image-test)
#   CARGO_TARGET_DIR     for the release build (default target-docker)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ "$(id -u)" -ne 0 ]; then
  echo "test-images: needs root (debootstrap, buildah and dockerd)" >&2
  exit 1
fi

cache=${IMAGE_TEST_CACHE:-${HOME:-/root}/.cache/matrix-rtc-relay-image-test}
work=$(mktemp -d /tmp/matrix-rtc-image-test.XXXXXX)
mkdir -p "$cache"
started=$SECONDS
phase_start=$SECONDS
phase() {
  echo "test-images: [$((SECONDS - phase_start))s] $*"
  phase_start=$SECONDS
}

dockerd_pid=""
containers=()
cleanup() {
  local status=$?
  local cleanup_start=$SECONDS
  set +e
  if [ -n "$dockerd_pid" ]; then
    for c in "${containers[@]}"; do "${docker[@]}" rm -f "$c" >/dev/null 2>&1; done
    kill "$dockerd_pid" 2>/dev/null
    for _ in $(seq 1 30); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$dockerd_pid" 2>/dev/null
  fi
  rm -f "$root/docker/prebuilt/turn-server" "$root/docker/prebuilt/lk-jwt-service"
  if [ -d "$work/buildah" ]; then
    "${buildah[@]}" rm --all >/dev/null 2>&1
    "${buildah[@]}" rmi --all --force >/dev/null 2>&1
  fi
  # dockerd can leave its network namespace mounted (docker-exec/netns/default) after a
  # compose network existed; those mounts are ours: unmount them, deepest first.
  awk -v dir="$work/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
    umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
  done
  if ! grep -q " $work/" /proc/mounts; then
    rm -rf "$work"
  else
    echo "test-images: mounts left under $work; not removing it" >&2
  fi
  echo "test-images: [$((SECONDS - cleanup_start))s] cleaned up; total $((SECONDS - started))s"
  exit "$status"
}
trap cleanup EXIT

# --- tools -----------------------------------------------------------------------------
missing=()
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The engine: Debian's packages, unpacked only (no daemon installed or started system-wide).
debs="$cache/debs"
mkdir -p "$debs"
if ! ls "$debs"/docker.io_*.deb "$debs"/containerd_*.deb "$debs"/runc_*.deb >/dev/null 2>&1; then
  (cd "$debs" && { apt-get download docker.io containerd runc 2>/dev/null \
    || { apt-get update -qq && apt-get download docker.io containerd runc; }; })
fi
engine="$work/engine"
for deb in "$debs"/docker.io_*.deb "$debs"/containerd_*.deb "$debs"/runc_*.deb; do
  dpkg-deb -x "$deb" "$engine"
done
docker_bin="$engine/usr/bin/docker"
"$engine/usr/sbin/dockerd" --version | grep -q ' 20\.10\.24' || {
  echo "test-images: expected Docker 20.10.24, got: $("$engine/usr/sbin/dockerd" --version)" >&2
  exit 1
}
phase "tools ready: buildah $(buildah --version | awk '{print $3}'), $("$engine/usr/sbin/dockerd" --version)"

# --- binaries ----------------------------------------------------------------------------
if [ -n "${IMAGE_TEST_BINARIES:-}" ]; then
  bin_dir=$IMAGE_TEST_BINARIES
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target-docker}
  cargo build --release --locked -p turn-server -p lk-jwt-service
  bin_dir="$CARGO_TARGET_DIR/release"
fi
for bin in turn-server lk-jwt-service; do
  [ -x "$bin_dir/$bin" ] || { echo "test-images: $bin_dir/$bin missing" >&2; exit 1; }
  cp "$bin_dir/$bin" "docker/prebuilt/$bin"
  strip --strip-debug "docker/prebuilt/$bin" 2>/dev/null || true
done
phase "binaries from $bin_dir"

# --- base image --------------------------------------------------------------------------
base_tar="$cache/bookworm-minbase.tar"
if [ ! -s "$base_tar" ]; then
  rootfs="$work/rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # Trimmed like the official slim image: no package cache, docs or man pages.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  tar --numeric-owner -C "$rootfs" -cf "$base_tar.tmp" .
  mv "$base_tar.tmp" "$base_tar"
  rm -rf "$rootfs"
fi
buildah=(buildah --root "$work/buildah/root" --runroot "$work/buildah/run" --storage-driver vfs)
ctr=$("${buildah[@]}" from scratch)
"${buildah[@]}" add --quiet "$ctr" "$base_tar" / >/dev/null
"${buildah[@]}" config --cmd '["bash"]' "$ctr"
"${buildah[@]}" commit --quiet --format docker --rm "$ctr" docker.io/library/debian:bookworm-slim >/dev/null
phase "base image docker.io/library/debian:bookworm-slim from debootstrap (cached in $base_tar)"

# --- images ------------------------------------------------------------------------------
for target in turn-server lk-jwt-service; do
  "${buildah[@]}" bud --quiet --format docker --isolation chroot --layers --pull=never \
    --build-arg BINARIES=prebuilt --target "$target" -f docker/Dockerfile \
    -t "localhost/matrix-rtc-relay/$target:test" . >/dev/null
  "${buildah[@]}" push --quiet "localhost/matrix-rtc-relay/$target:test" \
    "docker-archive:$work/$target.tar:matrix-rtc-relay/$target:test"
  phase "$target image built and exported"
  "${buildah[@]}" push --quiet "localhost/matrix-rtc-relay/$target:test" "dir:$work/$target.dir"
  python3 - "$work/$target.tar" "$work/$target.dir/manifest.json" <<'EOF'
import json, sys, tarfile
archive, manifest_path = sys.argv[1], sys.argv[2]
manifest = json.load(open(manifest_path))
assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json", manifest["mediaType"]
assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json", manifest["config"]
for layer in manifest["layers"]:
    assert layer["mediaType"].startswith("application/vnd.docker.image.rootfs."), layer
with tarfile.open(archive) as tar:
    entries = json.load(tar.extractfile("manifest.json"))
    config = json.load(tar.extractfile(entries[0]["Config"]))["config"]
health = config.get("Healthcheck") or {}
assert health.get("Test", [""])[0] == "CMD" and "healthcheck" in health["Test"], health
assert config.get("User") == "10001:10001", config.get("User")
assert config.get("ExposedPorts"), "no EXPOSE"
labels = config.get("Labels") or {}
assert labels.get("org.opencontainers.image.source"), labels
assert labels.get("org.opencontainers.image.version"), labels
print(f"  {archive}: Docker v2 manifest and config, Healthcheck {health['Test'][1:]}, "
      f"User {config['User']}, ports {sorted(config['ExposedPorts'])}")
EOF
done
phase "both archives checked: Docker media types, Healthcheck, User, EXPOSE, labels"

# --- Docker 20.10.24 ----------------------------------------------------------------------
export PATH="$engine/usr/sbin:$engine/usr/bin:$PATH"
sock="$work/docker.sock"
docker=("$docker_bin" -H "unix://$sock")
"$engine/usr/sbin/dockerd" --host "unix://$sock" --data-root "$work/docker-data" \
  --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
  --storage-driver=vfs --bridge=none --iptables=false --ip6tables=false \
  --containerd-namespace matrix-rtc-image-test --containerd-plugins-namespace matrix-rtc-image-test-plugins \
  >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 60); do
  "${docker[@]}" version >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$work/dockerd.log" >&2; exit 1; }
  sleep 1
done
server_version=$("${docker[@]}" version --format '{{.Server.Version}}')
case "$server_version" in
  20.10.24*) ;;
  *) echo "test-images: engine reports $server_version, not 20.10.24" >&2; exit 1 ;;
esac
for target in turn-server lk-jwt-service; do
  "${docker[@]}" load -i "$work/$target.tar" >/dev/null
done
phase "Docker $server_version up on $sock; both archives loaded"

wait_healthy() {
  local name=$1 status=""
  for _ in $(seq 1 100); do
    status=$("${docker[@]}" inspect -f '{{.State.Health.Status}}' "$name" 2>/dev/null || echo gone)
    case "$status" in
      healthy)
        echo "  $("${docker[@]}" inspect -f '{{.Name}}' "$name" | tr -d /): healthy ($("${docker[@]}" inspect -f '{{(index .State.Health.Log 0).Output}}' "$name" | tr -d '\n'))"
        return 0 ;;
      unhealthy|gone) break ;;
    esac
    sleep 1
  done
  echo "test-images: $name is $status" >&2
  "${docker[@]}" inspect -f '{{json .State}}' "$name" >&2 || true
  "${docker[@]}" logs "$name" >&2 || true
  return 1
}

# turn-server with a coturn-style file at the image's default path, image defaults otherwise.
conf="$work/turnserver.conf"
cat > "$conf" <<'EOF'
listening-port=3478
realm=turn.example.org
use-auth-secret
static-auth-secret=image-test-not-a-real-secret
no-tls
log-file=stdout
EOF
chmod 644 "$conf"
containers+=(rtc-turn)
"${docker[@]}" run -d --name rtc-turn --network none --health-interval 1s --health-start-period 1s \
  -v "$conf:/etc/coturn/turnserver.conf:ro" matrix-rtc-relay/turn-server:test >/dev/null
wait_healthy rtc-turn
[ "$("${docker[@]}" exec rtc-turn id -u)" = 10001 ] || { echo "test-images: turn-server not uid 10001" >&2; exit 1; }

# lk-jwt-service with the default bind, and with LIVEKIT_JWT_BIND=:9090 (upstream's
# helper built an invalid URL from that).
jwt_env=(-e LIVEKIT_URL=ws://127.0.0.1:7880 -e LIVEKIT_KEY=lk-image-test
  -e LIVEKIT_SECRET=image-test-not-a-real-livekit-secret-0000 -e LIVEKIT_FULL_ACCESS_HOMESERVERS=example.org)
containers+=(rtc-jwt rtc-jwt-9090)
"${docker[@]}" run -d --name rtc-jwt --network none --health-interval 1s --health-start-period 1s \
  "${jwt_env[@]}" matrix-rtc-relay/lk-jwt-service:test >/dev/null
"${docker[@]}" run -d --name rtc-jwt-9090 --network none --health-interval 1s --health-start-period 1s \
  "${jwt_env[@]}" -e LIVEKIT_JWT_BIND=:9090 matrix-rtc-relay/lk-jwt-service:test >/dev/null
wait_healthy rtc-jwt
wait_healthy rtc-jwt-9090
[ "$("${docker[@]}" exec rtc-jwt id -u)" = 10001 ] || { echo "test-images: lk-jwt-service not uid 10001" >&2; exit 1; }

# SIGTERM (docker stop) ends both cleanly.
for name in rtc-turn rtc-jwt; do
  "${docker[@]}" stop -t 10 "$name" >/dev/null
  code=$("${docker[@]}" inspect -f '{{.State.ExitCode}}' "$name")
  [ "$code" = 0 ] || { echo "test-images: $name exited $code after docker stop" >&2; "${docker[@]}" logs "$name" >&2; exit 1; }
  echo "  $name: stopped by SIGTERM, exit code 0"
done
phase "containers healthy in Docker $server_version, non-root, clean stop"

# The compose files as users run them: Debian's docker-compose 1.29 against this engine,
# images taken from the archives just loaded, a test configuration in a copy of each
# directory. turn-server uses the host network: a loopback address and unusual ports.
compose=(env DOCKER_HOST="unix://$sock" docker-compose)
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cp -r docker/compose/turn-server docker/compose/lk-jwt-service "$work/"
turn_port=$(free_port)
cat > "$work/turn-server/turnserver.conf" <<EOF
listening-ip=127.0.0.1
listening-port=$turn_port
min-port=$((turn_port + 1))
max-port=$((turn_port + 20))
realm=turn.example.org
use-auth-secret
static-auth-secret=compose-test-not-a-real-secret
no-tls
log-file=stdout
EOF
chmod 644 "$work/turn-server/turnserver.conf"
(cd "$work/turn-server" && TURN_SERVER_IMAGE=matrix-rtc-relay/turn-server:test \
  "${compose[@]}" -p rtcimagetestturn up -d --no-build)
turn_id=$(cd "$work/turn-server" && "${compose[@]}" -p rtcimagetestturn ps -q turn-server)
containers+=("$turn_id")
jwt_port=$(free_port)
cp "$work/lk-jwt-service/.env.example" "$work/lk-jwt-service/.env"
printf 'LK_JWT_SERVICE_IMAGE=matrix-rtc-relay/lk-jwt-service:test\nLK_JWT_HOST_PORT=%s\n' "$jwt_port" \
  >> "$work/lk-jwt-service/.env"
mkdir -p "$work/lk-jwt-service/secrets"
printf 'lk-compose-test: compose-test-not-a-real-livekit-secret-000\n' > "$work/lk-jwt-service/secrets/livekit_keys.yaml"
chmod 644 "$work/lk-jwt-service/secrets/livekit_keys.yaml"
(cd "$work/lk-jwt-service" && "${compose[@]}" -p rtcimagetestjwt up -d --no-build)
jwt_id=$(cd "$work/lk-jwt-service" && "${compose[@]}" -p rtcimagetestjwt ps -q lk-jwt-service)
containers+=("$jwt_id")
# The images' own HEALTHCHECK timing (30 s interval) applies here.
wait_healthy "$turn_id"
wait_healthy "$jwt_id"
python3 - "$jwt_port" <<'EOF'
import sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=5) as response:
    assert response.status == 200, response.status
print(f"  lk-jwt-service compose: GET http://127.0.0.1:{sys.argv[1]}/healthz -> 200 (published port)")
EOF
# The docs' `docker compose exec lk-jwt-service lk-jwt-service doctor <server>` runs in the
# image: against a server that does not answer it names the failure and exits 1 (2 would
# mean the command itself is wrong).
doctor_out=$(cd "$work/lk-jwt-service" && "${compose[@]}" -p rtcimagetestjwt exec -T lk-jwt-service \
  lk-jwt-service doctor http://127.0.0.1:9 --timeout 2 2>&1) && doctor_rc=0 || doctor_rc=$?
if [ "$doctor_rc" != 1 ] || ! grep -q "well-known" <<<"$doctor_out"; then
  echo "test-images: lk-jwt-service doctor in the image: exit $doctor_rc" >&2
  echo "$doctor_out" >&2
  exit 1
fi
echo "  lk-jwt-service compose: exec lk-jwt-service doctor -> exit 1 naming the unreachable well-known"
(cd "$work/turn-server" && "${compose[@]}" -p rtcimagetestturn down >/dev/null 2>&1)
(cd "$work/lk-jwt-service" && "${compose[@]}" -p rtcimagetestjwt down >/dev/null 2>&1)
phase "docker-compose up of docker/compose/turn-server and docker/compose/lk-jwt-service: healthy"

echo "test-images: 1 passed, 0 failed (both images healthy in Docker $server_version; $((SECONDS - started))s)"
