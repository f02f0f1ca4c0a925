#!/usr/bin/env bash
# The GPU machine's run (docs/performance.md, "GPU"): no TensorFlow there, so keras and its
# missing pure wheels travel in .whl/; training first (the pretrained embedders), then the
# throughput of every row with the time that is left. Everything it writes comes back in
# $OUT: runs.tgz.part-* (the training runs, each with the embedder alone as embedder.keras),
# throughput.json / .md and the logs.
#
#     bash bench/gpu_session.sh PACK MOBILE_S LARGE_S THROUGHPUT_S
set -uo pipefail
PACK=$1 MOBILE_S=$2 LARGE_S=$3 THROUGHPUT_S=$4
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site KERAS_BACKEND=jax PYTHONUNBUFFERED=1
rm -rf /tmp/pretrain
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv > "$OUT/gpu.txt"
timeout $((MOBILE_S + LARGE_S + 200)) python3 recipes/train_pack.py "$PACK" --out /tmp/pretrain \
    --row mobile_resnext_attention="$MOBILE_S" --row t2_resnext_shallow_average="$LARGE_S" \
    --mixed-precision 2>&1 | grep -v "^[0-9]*/[0-9]* .*ETA" > "$OUT/train.log"
tail -5 "$OUT/train.log"
(cd /tmp/pretrain && find . -name backup -prune -o -name best.keras -prune -o -type f -print \
    | tar czf - -T -) | split -b 15m - "$OUT/runs.tgz.part-"
timeout $((THROUGHPUT_S + 60)) python3 bench/bench_gpu.py --out "$OUT" \
    --throughput-s "$THROUGHPUT_S" > /dev/null 2>&1
tail -45 "$OUT/throughput.md"
