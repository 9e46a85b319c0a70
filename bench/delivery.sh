#!/usr/bin/env bash
# Prints the delivery figures of issue 17 ("One static binary, everywhere"); nothing is asserted.
#   - the release binary (tools/build-static): stripped size, `file`, `ldd`,
#   - the image: the size of the FROM-scratch root filesystem tools/build-static --rootfs makes
#     (the image is that one layer); with --image, tools/image-test builds the real image with a
#     private dockerd and its `docker image inspect` size is printed too (slow: apt + a full build),
#   - start-up to first registration and idle RSS with one registered service (bench:delivery_bench,
#     log:// against a private dockerd running one container); with --compare, the same for the
#     dynamically linked `-c opt` build, the previous way of shipping.
# Root only (dockerd). Usage: bench/delivery.sh [--compare] [--image] [--runs=N]
set -euo pipefail
cd "$(dirname "$0")/.."

compare=0
image=0
runs=5
for arg in "$@"; do
  case "$arg" in
    --compare) compare=1 ;;
    --image) image=1 ;;
    --runs=*) runs="${arg#--runs=}" ;;
    *) echo "usage: bench/delivery.sh [--compare] [--image] [--runs=N]" >&2; exit 2 ;;
  esac
done

bin="$(tools/build-static --print-path 2>/dev/null)"
echo "== release binary"
echo "size (stripped): $(stat -c %s "$bin") bytes ($(awk -v b="$(stat -c %s "$bin")" 'BEGIN { printf "%.2f MB", b / 1e6 }'))"
echo "file: $(file -b "$bin")"
echo "ldd: $(ldd "$bin" 2>&1 | sed 's/^[[:space:]]*//')"

echo "== image"
work="$(mktemp -d /tmp/regdelivery.XXXXXX)"
trap 'rm -rf "$work"' EXIT
tools/build-static --rootfs "$work/rootfs" >/dev/null 2>&1
echo "rootfs (the image's only layer): $(du -sb "$work/rootfs" | cut -f1) bytes; files:"
(cd "$work/rootfs" && find . -type f -printf '  /%P %s\n' | sort)
if [ "$image" = 1 ]; then
  tools/image-test 2>&1 | tee "$work/image-test.log" | grep -E "image .* bytes|PASS|FAIL" || true
fi

echo "== start-up to first registration, idle RSS"
binaries=("--binary=$bin")
if [ "$compare" = 1 ]; then
  bazel build -c opt //registrator:registrator >/dev/null 2>&1
  dyn="$(bazel info -c opt bazel-bin 2>/dev/null)/registrator/registrator"
  cp "$dyn" "$work/registrator-dynamic-opt"
  binaries+=("--binary=$work/registrator-dynamic-opt")
  echo "(comparing with the dynamic -c opt build: $(stat -c %s "$dyn") bytes, $(ldd "$dyn" | wc -l) ldd lines)"
fi
bazel build --config=release //bench:delivery_bench >"$work/build.log" 2>&1 ||
  { tail -n 30 "$work/build.log" >&2; exit 1; }
"$(bazel info --config=release bazel-bin 2>/dev/null)/bench/delivery_bench" "${binaries[@]}" --runs="$runs"
