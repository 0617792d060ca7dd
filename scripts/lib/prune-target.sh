#!/usr/bin/env bash
# Keeps the shared build cache from filling the disk. The cache lives outside the checkout and is
# reused by every run, so it only grows: each change leaves a new copy of every test executable
# beside the old ones. When the disk holding it has less than EBB_MIN_FREE_GB (default 20) free,
# this removes what no later build reads: incremental state, and every test/example executable
# but the newest per name (cargo rebuilds anything missing, so nothing here can break a build).
set -euo pipefail
dir="${1:?usage: prune-target.sh TARGET_DIR}"
min_free_gb="${EBB_MIN_FREE_GB:-20}"
[ -d "$dir" ] || exit 0
free_gb() { df -P -k "$dir" | awk 'NR == 2 { print int($4 / 1048576) }'; }
before=$(free_gb)
if [ "$before" -ge "$min_free_gb" ]; then
  echo "build cache: ${before} GiB free on its disk (pruning below ${min_free_gb} GiB)"
  exit 0
fi
for profile in debug release; do
  rm -rf "${dir:?}/$profile/incremental"
  for sub in deps examples; do
    [ -d "$dir/$profile/$sub" ] || continue
    # Executables carry a 16-hex-digit suffix and no extension; libraries (.rlib, .so, .d) stay.
    # (A directory without executables is fine: grep finding nothing is not an error here.)
    (cd "$dir/$profile/$sub" && { ls -t | grep -E -- '-[0-9a-f]{16}$' || true; } |
      awk '{ n = $0; sub(/-[0-9a-f]+$/, "", n); if (seen[n]++) print }' | xargs -r rm -f)
  done
done
echo "build cache: ${before} GiB free on its disk, $(free_gb) GiB after pruning"
