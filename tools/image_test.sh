#!/usr/bin/env bash
# Bazel wrapper for tools/image-test, the end-to-end test of the Docker image. Tagged manual (and
# so outside `bazel test //...`): it runs apt and a full Bazel build inside `docker build`, holds
# the shared dockerd lock for that long, and needs root. Run on demand:
#   bazel test //tools:image_test
# The docker build context must be the source tree itself, not the runfiles tree: follow this
# script's runfiles symlink back to the workspace.
set -euo pipefail
here="$(dirname "$(readlink -f "$0")")"
exec "$here/image-test"
