#!/usr/bin/env bash
# The two older shipped embedders (mobile_resnext_attention, t2_resnext_shallow_average): train on
# real recorded voices, evaluate on held-out speakers, export. Reproduces docs/real_voices.md
# from scratch (the x-vector embedders mobile_tdnn_statistics and tdnn_statistics come from the
# data engine's pack instead: docs/pretrained.md, "How the shipped embedders were trained"):
#
#     bash recipes/pretrain.sh
#
# 1. builds the Debian voices corpus in $DATA if missing (needs sox and network access to the
#    Debian package mirror, about a minute; see /work/shared/data/README.md);
# 2. trains and evaluates the Table 2 row t2_resnext_shallow_average and our mobile row
#    mobile_resnext_attention (singer-zoo experiment table2: 60/20/20 speaker-disjoint split,
#    test loss, k-NN, EER, t-SNE, loss plots) with a CPU budget of ~35 min on 2 shared cores;
# 3. scores k-NN per recording source (channel confound check, recipes/per_source.py);
# 4. exports both rows to exported/<row>/ (SavedModel + int8 TFLite; + float32 TFLite for the
#    mobile row; exported/ is not tracked by git), adds the training data, licences and
#    held-out metrics to each card, and publishes each export into the package's shipped set
#    (`singer-zoo pretrained publish`: embedder.keras + metadata.json in singer_zoo/shipped/,
#    the files to commit);
# 5. checks that singer_zoo.load(<row>) embeds a recording of the corpus (this rebuilds the
#    SavedModel/TFLite files from the published embedder.keras into the user cache).
#
# Environment overrides: DATA (corpus folder), OUT (experiment folder), CACHE (features),
# BIN (the project venv's bin), BUILD (corpus builder script); REUSE=1 skips steps 2-3 when
# their outputs exist (re-export and re-check only).
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA:-/tmp/debian_voices}
OUT=${OUT:-runs/real_voices}
CACHE=${CACHE:-/tmp/dv_cache}
BIN=${BIN:-.venv/bin}
PY=${PY:-$BIN/python}
BUILD=${BUILD:-/work/shared/data/debian_voices/build.py}
ROWS=t2_resnext_shallow_average,mobile_resnext_attention

# The budget (measured on the shared 2-core CPU machine with other jobs running: one
# 11-step epoch at batch 32 took 331 s for t2_resnext_shallow_average, 128 s for
# mobile_resnext_attention; one 10-step epoch at batch 16 then took ~300 s for the
# ResNeXt row): 4 epochs x 10 steps of 16 pairs, validation every epoch,
# early stopping after 4 validations without improvement. The paper's budget is
# max_epochs 10000, validation every 50, patience 1000, batch 32 (singer_zoo/zoo_configs/).
BUDGET=(--batch-size 16 --steps-per-epoch 10 --max-epochs 4 --validation-every 1 --patience 4)

# 1. corpus
if [ ! -f "$DATA/manifest.csv" ]; then
    if ! command -v sox >/dev/null; then
        apt-get update -qq && apt-get install -y -qq sox
    fi
    python3 "$BUILD" "$DATA"
fi

# 2. experiment (one manifest row, it_IT_f_Menardi/silence/4.wav, is pure silence and is
#    skipped with a warning). REUSE=1 keeps an existing $OUT/report.json (no retraining).
if [ "${REUSE:-0}" = 1 ] && [ -f "$OUT/report.json" ]; then
    echo "REUSE=1: keeping the experiment in $OUT"
else
    "$BIN/singer-zoo" experiment table2 --data "$DATA/manifest.csv" --out "$OUT" --rows "$ROWS" \
        "${BUDGET[@]}" --cache "$CACHE" --verbose 2
fi

# 3. per-source k-NN (+ each architecture at random initialisation, as a control)
if [ "${REUSE:-0}" = 1 ] && [ -f "$OUT/per_source.json" ]; then
    echo "REUSE=1: keeping $OUT/per_source.json"
else
    "$PY" recipes/per_source.py --data "$DATA/manifest.csv" --run "$OUT" --rows "$ROWS" \
        --cache "$CACHE" --out "$OUT/per_source.json" --md "$OUT/per_source.md" --untrained
fi

# docs/real_voices/: the report and plots referenced by docs/real_voices.md
mkdir -p docs/real_voices
cp "$OUT/report.md" "$OUT/report.json" "$OUT/per_source.md" "$OUT/per_source.json" \
   "$OUT/knn.png" "$OUT/tsne_performances.png" "$OUT/loss.png" docs/real_voices/
for row in ${ROWS//,/ }; do
    cp "$OUT/$row/tsne_clips.png" "docs/real_voices/tsne_clips_$row.png"
done

# 4. export (calibration-free modes only; the equality checks run on the first recording of
# the corpus, i.e. on real audio, instead of the default synthetic clip), with the training data, licences and held-out-speaker metrics as extra card entries
"$PY" - "$DATA/manifest.csv" "$OUT" $ROWS <<'EOF'
import json, sys
from pathlib import Path
from singer_zoo.data import read_manifest
from singer_zoo.evaluation.protocols import embedding_split

manifest, out, rows = sys.argv[1], Path(sys.argv[2]), sys.argv[3].split(",")
split = embedding_split(read_manifest(manifest))
report = json.loads((out / "report.json").read_text())
per_source = json.loads((out / "per_source.json").read_text())
data = {
    "corpus": "Debian voices: real recorded speech (not singing) shipped in Debian 'main' "
              "packages, singer = speaker; built by /work/shared/data/debian_voices/build.py",
    "sources_and_licences": {
        "asterisk-core-sounds-{en,es,fr,it,ru}-wav, asterisk-prompt-it-menardi-wav, "
        "asterisk-prompt-es-co, asterisk-prompt-fr-armelle":
            "Asterisk IVR prompts by professional voice talents, 8 kHz telephone band; "
            "CC-BY-SA-3.0 / GPL-2 (see each package's debian/copyright)",
        "fillets-ng-data-{cs,nl}": "Fish Fillets NG game dubbing by voice actors, 22.05 kHz "
                                   "ogg; GPL",
        "ktuberling-data": "KTuberling spoken words, one volunteer per language (assumed); GPL",
        "festvox-ru": "Festival Russian unit-selection voice database msu_ru_nsh, 16 kHz; "
                      "BSD-like",
    },
    "split": "embedding_split: sorted speakers cut 60/20/20 (speaker-disjoint)",
    "speakers": {k: sorted({r.singer for r in v}) for k, v in split.items()},
    "recordings": {k: len(v) for k, v in split.items()},
    "skipped": "it_IT_f_Menardi/silence/4.wav (pure silence)",
    "caveats": "speech, not singing; small (23 speakers); the channel differs per source, "
               "so test speakers that are alone in their source can be told apart by "
               "channel (see held_out_evaluation.per_source)",
}
for row in rows:
    t2 = next(r for r in report["table2"] if r["name"] == row) if "table2" in report else None
    card = {"training_data": data}
    card["held_out_evaluation"] = {
        "test_speakers": data["speakers"]["test"],
        "table2_row": t2,
        "knn_singer_accuracy": {m: report["knn"]["singer"][m] for m in (row, "baseline")},
        "verification_eer": {m: report["eer"][m] for m in (row, "baseline")},
        "per_source": {m: per_source["methods"][m] for m in (row, "baseline")},
        "report": "docs/real_voices.md",
    }
    path = out / f"card_extra_{row}.json"
    path.write_text(json.dumps(card, indent=2))
    print("card entries written:", path)
EOF
"$BIN/singer-zoo" export "$OUT/t2_resnext_shallow_average" \
    --out exported/t2_resnext_shallow_average --tflite int8 \
    --representative "$DATA/manifest.csv" --calibration-files 1 \
    --card-extra "$OUT/card_extra_t2_resnext_shallow_average.json"
"$BIN/singer-zoo" export "$OUT/mobile_resnext_attention" \
    --out exported/mobile_resnext_attention --tflite float32,int8 \
    --representative "$DATA/manifest.csv" --calibration-files 1 \
    --card-extra "$OUT/card_extra_mobile_resnext_attention.json"
for row in ${ROWS//,/ }; do
    "$BIN/singer-zoo" pretrained publish "exported/$row"
done

# 5. load by name and embed a recording of the corpus
"$PY" - "$DATA" $ROWS <<'EOF'
import sys
import numpy as np
import singer_zoo
from singer_zoo.data import read_manifest
from singer_zoo.evaluation.protocols import embedding_split

test = list(embedding_split(read_manifest(sys.argv[1] + "/manifest.csv"))["test"])
for row in sys.argv[2].split(","):
    emb = singer_zoo.load(row)
    v = emb.embed(test[0].path)
    assert v.shape == (16,) and np.isfinite(v).all(), v
    print(f"{row}: embed({test[0].path}) -> {np.round(v, 3)}")
EOF
du -sh exported/* singer_zoo/shipped/*
