# shellcheck shell=bash
# Sourced by the scripts: puts Swift on PATH and moves to the repository root.
if ! command -v swift >/dev/null 2>&1 && [[ -x /opt/swift/usr/bin/swift ]]; then
  export PATH=/opt/swift/usr/bin:$PATH
fi
IOVM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$IOVM_ROOT" || exit 1
