#!/bin/sh
# Installs the Debian packages munim's build, tests and demo need.
# Idempotent: asks dpkg first and runs apt-get only for what is missing.
# usage: scripts/deps.sh [--bench]   (--bench: also nginx-light and wrk,
# which bench/ingest-vs-nginx compares against)
set -eu

# postgresql-15: the server scripts/pg-server starts for the PostgreSQL
# tests (and its client, libpq); redis-server, libhiredis-dev and pgbouncer
# for the scaled-out deployment's tests
PKGS="build-essential pkg-config libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev
libsqlite3-dev libssl-dev libcmocka-dev sqlite3 python3 curl
postgresql-15 postgresql-client-15 libpq-dev libhiredis-dev redis-server pgbouncer"
case "${1:-}" in
"") ;;
--bench) PKGS="$PKGS nginx-light wrk" ;;
*)
	echo "usage: scripts/deps.sh [--bench]" >&2
	exit 2
	;;
esac

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
