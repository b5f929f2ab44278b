#!/usr/bin/env bash
# The two-machine test (tests/test_two_hosts.py) makes two hosts out of network namespaces with
# iproute2's `ip`. Install it from Debian's packages when it is missing and we may; otherwise say
# why not and leave it: that test then skips with the reason.
set -uo pipefail
if command -v ip >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "iproute2 missing and not installable here (needs root and apt-get); the two-host test will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
timeout 180 apt-get update -qq >/dev/null 2>&1 && timeout 180 apt-get install -y -qq --no-install-recommends iproute2 >/dev/null 2>&1 \
    || echo "apt-get could not install iproute2; the two-host test will skip" >&2
exit 0
