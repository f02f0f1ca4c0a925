#!/usr/bin/env bash
# The paper's qualitative claims on generated singing shaped like the paper's data
# (docs/experiments.md, "The paper's claims on generated data"):
#
#     bash recipes/paper_claims.sh
#
# 1. generates one corpus of 46 singers x 14 songs (singer_zoo.data.generate_corpus, seed 0)
#    and writes two manifests from it:
#    - table1.csv: songs 0-9, i.e. 46 singers x 10 recordings (the paper's Table 1 subset);
#    - table2.csv: all 14 songs with a split column, songs 0-5 train / 6-9 validation /
#      10-13 test (DAMP-balanced's 6/4/4 song split);
# 2. runs Table 1 (fold 0 of the 10-fold protocol + the SVM baseline) on the shallow ResNeXt
#    rows with every aggregation, and Table 2 on the shallow ResNeXt rows (k-NN, EER, t-SNE), the
#    two tables side by side as two processes;
# 3. prints both reports and draws the rows side by side (loss_table{1,2}.png,
#    knn_table2.png); they answer: does global aggregation beat none (Table 1)? Do the
#    learned embeddings beat the handcrafted baseline on singer k-NN with a lower song k-NN
#    (Table 2, Figure 5)?
#
# Environment overrides: OUT (default runs/paper_claims), BIN (the venv's bin, default
# .venv/bin), REC_SECONDS (recording length, default 6.5: one 6-s window per recording),
# T1_ROWS, T2_ROWS (comma-separated zoo rows), T1_BUDGET, T2_BUDGET (budget options of
# `singer-zoo experiment`).
#
# Budget (the defaults below): Table 1, 6 epochs of 23 steps of 16 windows (one pass over the
# 368 training recordings per epoch), Table 2, 10 epochs of 10 steps of 16 pairs, both at
# learning rate 1e-3 (the demo's Table 2 lesson: at the paper's 1e-4 a short run stays near a
# collapsed embedding), validation every epoch, the best epoch kept. Shallow ResNeXt rows only:
# a shallow CNN step takes twice a shallow ResNeXt one (2.9 s against 1.35 s on one idle
# core, batch 16), so the CNN rows do not fit the hour; run them (about 40 min) with
# T1_ROWS=t1_cnn_shallow_average,...,t1_cnn_shallow_none T2_ROWS=" " (a blank list: no
# Table 2 rows; the plots then cover every row run into OUT). Figures: docs/experiments.md.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/paper_claims}
BIN=${BIN:-.venv/bin}
REC_SECONDS=${REC_SECONDS:-6.5}
T1_ROWS=${T1_ROWS:-t1_resnext_shallow_none,t1_resnext_shallow_average,t1_resnext_shallow_attention,t1_resnext_shallow_max}
T2_ROWS=${T2_ROWS:-t2_resnext_shallow_average,t2_resnext_shallow_none,t2_resnext_shallow_attention,t2_resnext_shallow_max}
read -r -a T1_BUDGET <<< "${T1_BUDGET:---batch-size 16 --steps-per-epoch 23 --max-epochs 6 --validation-every 1 --patience 6 --learning-rate 1e-3}"
read -r -a T2_BUDGET <<< "${T2_BUDGET:---batch-size 16 --steps-per-epoch 10 --max-epochs 10 --validation-every 1 --patience 10 --learning-rate 1e-3}"

# 1. corpus and manifests
if [ ! -f "$OUT/data/table2.csv" ]; then
    "$BIN/python" - "$OUT/data" "$REC_SECONDS" <<'EOF'
import dataclasses, sys
from singer_zoo.data import Manifest, generate_corpus, read_manifest

out, seconds = sys.argv[1], float(sys.argv[2])
m = read_manifest(generate_corpus(out, n_singers=46, n_songs=14, seconds=seconds, seed=0))
song = {s: i for i, s in enumerate(m.songs)}  # song00 .. song13
Manifest([r for r in m if song[r.song] < 10], m.root).write(f"{out}/table1.csv")
side = lambda i: "train" if i < 6 else "validation" if i < 10 else "test"
Manifest([dataclasses.replace(r, split=side(song[r.song])) for r in m],
         m.root).write(f"{out}/table2.csv")
EOF
fi

# 2. both tables side by side (two processes, each with its own feature cache), each row as
#    its own experiment in $OUT/table{1,2}/<row>/ so that every finished row has its report
#    (report.md, report.json) even if a later one is stopped; Table 1's SVM baseline runs
#    with the first row only.
table1() {
    local base=""
    for row in ${T1_ROWS//,/ }; do
        "$BIN/singer-zoo" experiment table1 --data "$OUT/data/table1.csv" \
            --out "$OUT/table1/$row" --rows "$row" --folds 0 $base "${T1_BUDGET[@]}" \
            --cache "$OUT/cache1" --verbose 2
        base=--no-baseline
    done
}
table2() {
    for row in ${T2_ROWS//,/ }; do
        "$BIN/singer-zoo" experiment table2 --data "$OUT/data/table2.csv" \
            --out "$OUT/table2/$row" --rows "$row" "${T2_BUDGET[@]}" --cache "$OUT/cache2" \
            --verbose 2
    done
}
table1 > "$OUT/table1.log" 2>&1 &
t1=$!
table2 > "$OUT/table2.log" 2>&1 &
t2=$!
status=0
wait "$t1" || { status=1; echo "table1 failed: see $OUT/table1.log"; }
wait "$t2" || { status=1; echo "table2 failed: see $OUT/table2.log"; }

# 3. the reports, and the finished rows side by side: $OUT/loss_table{1,2}.png (Figure 3)
#    and $OUT/knn_table2.png (Figure 5, every row with the handcrafted baseline)
cat "$OUT"/table1/*/report.md "$OUT"/table2/*/report.md 2>/dev/null || true
"$BIN/python" - "$OUT" <<'EOF' || status=1
import json, sys
from pathlib import Path
from singer_zoo.evaluation.plots import plot_knn_bars, plot_loss_curves

out = Path(sys.argv[1])
for table in ("table1", "table2"):
    runs = {h.relative_to(out / table).parts[0]: h  # <row>/<row>[/fold0]/history.csv
            for h in sorted((out / table).glob("*/*/**/history.csv"))}
    if runs:
        print(plot_loss_curves(runs, out / f"loss_{table}.png", f"{table}: training runs"))
knn = {"singer": {}, "song": {}}
for report in sorted((out / "table2").glob("*/report.json")):
    for task, methods in json.loads(report.read_text())["knn"].items():
        knn[task].update(methods)  # the baseline is the same in every row's report
if knn["singer"]:
    knn = {t: {m: v for m, v in sorted(r.items(), key=lambda i: i[0] == "baseline")}
           for t, r in knn.items()}
    print(plot_knn_bars(knn, out / "knn_table2.png", "Table 2 rows, test songs"))
EOF
exit $status
