#!/usr/bin/env bash
# The shared-study test (tests/test_tune.py) starts a real PostgreSQL server in a temporary folder.
# Install Debian's server package when it is missing and we may; otherwise say why not and leave
# it: that test then skips with the reason. Debian puts the programs in /usr/lib/postgresql/N/bin,
# off PATH; the test looks there too.
set -uo pipefail
if command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL missing and not installable here (needs root and apt-get); the shared-study test will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
timeout 300 apt-get update -qq >/dev/null 2>&1 \
    && timeout 300 apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 \
    || echo "apt-get could not install postgresql; the shared-study test will skip" >&2
exit 0
