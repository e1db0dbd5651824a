"""Edges a shared cluster finds (issue 25): file modes under the umask, decompression bombs, huge sample
requests, a closed stdout, and Snakemake's string-typed --config lists."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rae_bench.atomic import torch_save, write_json, write_text
from rae_bench.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_get_the_mode_open_would_give(tmp_path, umask):
    from rae_bench.score import export_images

    old = os.umask(umask)
    try:
        with open(tmp_path / "plain.txt", "w"):
            pass
        write_text(tmp_path / "a.txt", "x")
        write_json(tmp_path / "m.json", {"a": 1})
        torch_save({"a": 1}, tmp_path / "c.pt")
        export_images(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), tmp_path / "pngs")
        os.mkdir(tmp_path / "plain_dir")
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    assert _mode(tmp_path / "plain.txt") == expected
    for name in ("a.txt", "m.json", "c.pt"):
        assert _mode(tmp_path / name) == expected, name
    assert _mode(tmp_path / "pngs") == _mode(tmp_path / "plain_dir") == 0o777 & ~umask
    assert all(_mode(p) == expected for p in (tmp_path / "pngs").iterdir())


@pytest.mark.parametrize("argv", [["models"], ["--help"]])
def test_closed_stdout_ends_quietly(argv):
    """The reader of a real pipe is gone before the command writes (what `rae-bench models | head -1` meets)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "rae_bench", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT, env=env)
    proc.stdout.close()  # before the interpreter has even imported the package
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 1) and "Traceback" not in err and "BrokenPipe" not in err, err
    out = subprocess.run(f"{sys.executable} -m rae_bench models | head -1", shell=True, capture_output=True,
                         text=True, cwd=ROOT, env=env)
    assert out.stderr == "" and len(out.stdout.splitlines()) == 1


def _bomb(path: Path, side: int = 30000) -> None:
    """A side x side 1-bit PNG of zeros: a few hundred KB on disk, 900 megapixels decoded."""
    import zlib

    row = b"\x00" + bytes((side + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # bit depth 1, grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def test_decompression_bomb_is_one_error_line(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / f"{i:03d}.png")
    _bomb(folder / "004.png")
    assert (folder / "004.png").stat().st_size < 2_000_000
    code = main(["score", str(folder), str(folder), "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "004.png" in err and "30000x30000" in err

    from rae_bench.data import DataSource, load
    from rae_bench.errors import DataError

    src = DataSource(root=tmp_path, cache=tmp_path / "cache", verify=False)
    with pytest.raises(DataError, match=r"004\.png is 30000x30000 pixels"):
        load("image_folder", "train", src, {"path": str(folder), "test_fraction": 0.25})


def test_integer_strings_from_snakemake_config_are_integers():
    """`snakemake --config 'seeds=[0,1]'` hands over ['0', '1']: the schema's integers (and numbers,
    booleans) accept what the user typed; what is no number stays refused, with the path named."""
    import yaml

    from rae_bench.config.validate import validate_config
    from rae_bench.errors import ConfigError

    base = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    cfg = {**base, "seeds": ["0", " 1"]}
    validate_config(cfg)
    assert cfg["seeds"] == [0, 1] and all(type(s) is int for s in cfg["seeds"])
    with pytest.raises(ConfigError, match=r"'seeds\.1' is invalid: 'one' is not of type 'integer'"):
        validate_config({**base, "seeds": ["0", "one"]})
    with pytest.raises(ConfigError, match=r"'seeds\.0'"):
        validate_config({**base, "seeds": ["1.5"]})  # not an integer: refused, not rounded


@pytest.mark.slow
def test_snakemake_config_list_of_seeds(tmp_path):
    import yaml

    cfg = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    cfg["data_root"] = str(ROOT.parent / "shared" / "data")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--cores", "1",
           "-n", "--configfile", str(tmp_path / "tiny.yaml"), "--config", "seeds=[0,1]", "--", "tables/table3.csv"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "seed1" in done.stdout + done.stderr
