"""`actbert index --bf16` extracts raw videos with the action net under bf16, as `actbert extract --bf16`."""
from __future__ import annotations

import pytest

import actbert
import actbert.video.extract as extract_module
from actbert.cli.main import main


class _Stop(Exception):
    pass


@pytest.mark.parametrize("flag, expected", [([], False), (["--bf16"], True)])
def test_index_passes_bf16_to_the_extraction(world, tmp_path, monkeypatch, flag, expected):
    seen = {}

    def fake_extract(*args, **kwargs):
        seen.update(kwargs)
        raise _Stop

    monkeypatch.setattr(extract_module, "extract_features", fake_extract)
    monkeypatch.setattr(actbert.Pipeline, "_extractors", lambda self: (None, None))
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"")
    with pytest.raises(_Stop):
        main(["index", str(tmp_path / "videos"), "--out", str(tmp_path / "idx"), "--model", str(world[0]),
              "--no-progress", *flag])
    assert seen["bf16"] is expected
