"""Real recordings: every file of the debian_voices corpus decodes (slow; needs the corpus).

Build the corpus once (about a minute, needs apt):
    apt-get install -y sox && python3 /work/shared/data/debian_voices/build.py /tmp/debian_voices
or point SINGER_ZOO_DEBIAN_VOICES at a folder holding its manifest.csv.
"""
from __future__ import annotations

import csv
import glob
import logging
import os
from pathlib import Path

import pytest
import soundfile as sf

from singer_zoo import audio
from singer_zoo.batch import run_batch

SR = 22050
RAW_FORMATS = ("wav", "ogg", "opus")  # the raw .gsm files are headerless: not supported

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus() -> Path:
    root = Path(os.environ.get("SINGER_ZOO_DEBIAN_VOICES", "/tmp/debian_voices"))
    if not (root / "manifest.csv").is_file():
        pytest.skip(f"debian_voices corpus not built: no {root / 'manifest.csv'} (run "
                    "/work/shared/data/debian_voices/build.py, or set SINGER_ZOO_DEBIAN_VOICES)")
    return root


def unexpected_failures(failed: dict) -> dict:
    """The failures that are not the genuinely empty files (0 frames in the header) nor
    Asterisk's 'silence/N.wav' prompts (2 LSB of noise, below the silence threshold)."""
    out = {}
    for path, message in failed.items():
        empty = sf.info(path).frames == 0 and message.endswith("decodes to zero samples")
        silent = f"{os.sep}silence{os.sep}" in path and ": all silent: peak" in message
        if not (empty or silent):
            out[path] = message
    return out


def load_all(paths):
    logging.disable(logging.WARNING)  # thousands of files: keep the log readable
    try:
        return run_batch(audio.load_audio, paths, workers=2)
    finally:
        logging.disable(logging.NOTSET)


def test_every_manifest_recording_loads(corpus):
    """The manifest's recordings load; its one Asterisk 'silence/' prompt is rightly silent."""
    with open(corpus / "manifest.csv", newline="") as f:
        paths = [str(corpus / row["path"]) for row in csv.DictReader(f)]
    assert paths
    result = load_all(paths)
    assert not unexpected_failures(result.failed), result.report()
    assert len(result.failed) <= 2, result.report()
    # the builder keeps recordings of at least 1.5 s
    short = [p for p, y in result.ok.items() if len(y) < 1.5 * SR - 1]
    assert not short, short


def test_raw_files_in_supported_formats_load(corpus):
    files = [f for f in glob.glob(str(corpus / "raw" / "**" / "*"), recursive=True)
             if f.rsplit(".", 1)[-1] in RAW_FORMATS and os.path.isfile(f)]
    assert files
    result = load_all(files)
    assert not unexpected_failures(result.failed), unexpected_failures(result.failed)
    assert len(result.ok) >= 0.99 * len(files)
