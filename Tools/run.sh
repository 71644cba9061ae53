#!/usr/bin/env bash
# The main job: install what is missing, build, and run tesserad on its
# built-in default (portal 127.0.0.1:3260, target iqn.2026-11.dev.tessera:default,
# LUN 0 = 1 GiB sparse file in ./tessera-data/). Extra arguments go to tesserad.
set -euo pipefail
cd "$(dirname "$0")/.."
source Tools/env.sh
bash Tools/install-deps.sh --run
swift build -c release --product tesserad
exec "$(swift build -c release --show-bin-path)/tesserad" "$@"
