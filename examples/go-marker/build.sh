#!/bin/sh
# Builds bin/cron and bin/refresh offline, in GOPATH mode, with Debian's pgx
# (apt-get install golang-go golang-github-jackc-pgx-v4-dev).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
gopath=$(mktemp -d)
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src" "$here/bin"
ln -s "$here" "$gopath/src/gomarker"
cd "$gopath/src/gomarker"
for cmd in cron refresh; do
  GO111MODULE=off GOPATH="$gopath:/usr/share/gocode" GOCACHE="${GOCACHE:-$gopath/cache}" \
    go build -o "$here/bin/$cmd" "gomarker/cmd/$cmd"
done
