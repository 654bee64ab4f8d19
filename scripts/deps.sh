#!/bin/bash
# Install the Debian packages berth needs to build, run and test. Idempotent; run as root.
#   scripts/deps.sh            what building and running berth needs
#   scripts/deps.sh --test     plus what the test suite needs (qemu guest for cgroup v2, a
#                              registry for pull/push, skopeo/umoci for interop, xfsprogs for
#                              the disk quota test, docker-compose for compose.sh, dockerd
#                              and socat for build-interop.sh, jq)
set -euo pipefail
# nftables: `nft`, through which berthd manages its own table (NAT, published ports).
pkgs=(busybox-static ca-certificates cpio iproute2 nftables procps util-linux gcc libc6-dev)
if [ "${1:-}" = "--test" ]; then
    # curl: the network e2e tests fetch published ports.
    pkgs+=(qemu-system-x86 linux-image-cloud-amd64 docker-registry apache2-utils skopeo umoci python3-pip curl xfsprogs e2fsprogs docker-compose socat jq)
fi
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# dockerd (build-interop.sh compares with it; tests run their own private one in a network
# namespace): installed with its services kept from starting (no docker0, nothing listening),
# and not enabled. An installed docker.io is left as it is.
if [ "${1:-}" = "--test" ] && ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q "install ok installed"; then
    echo "deps: installing docker.io (its services not started)"
    export DEBIAN_FRONTEND=noninteractive
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    fi
    apt-get install -y -qq --no-install-recommends docker.io >/dev/null || { [ "$own_policy" = 1 ] && rm -f "$policy"; exit 1; }
    [ "$own_policy" = 1 ] && rm -f "$policy"
    if command -v systemctl >/dev/null; then
        systemctl disable docker.service docker.socket >/dev/null 2>&1 || true
    fi
fi
# The registry package starts a service we do not want listening; tests start their own.
if [ "${1:-}" = "--test" ] && command -v systemctl >/dev/null && systemctl is-active -q docker-registry 2>/dev/null; then
    systemctl stop docker-registry || true
fi
# docker-py for the compatibility suite (tests/e2e/docker-py.py), pinned: the suite checks what
# this version sends. (A system python may be externally managed: pip is told it may install.)
DOCKER_PY=7.1.0
if [ "${1:-}" = "--test" ] && [ "$(python3 -c 'import docker; print(docker.__version__)' 2>/dev/null)" != "$DOCKER_PY" ]; then
    python3 -m pip install -q "docker==$DOCKER_PY" 2>/dev/null \
        || python3 -m pip install -q --break-system-packages "docker==$DOCKER_PY" \
        || echo "deps: pip install docker==$DOCKER_PY failed (the docker-py steps will be skipped)" >&2
fi
command -v cargo >/dev/null || { echo "deps: cargo (Rust toolchain) is required: https://rustup.rs" >&2; exit 1; }
if [ "${1:-}" = "--test" ] && ! cargo clippy --version >/dev/null 2>&1; then
    rustup component add clippy || { echo "deps: clippy is required for the test suite's lint step" >&2; exit 1; }
fi
