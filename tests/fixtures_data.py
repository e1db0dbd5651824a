"""Writers of small dataset and weights fixtures in the real on-disk formats (tests/data/test_data.py, test_features.py, test_fast_paths.py)."""
from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ATTR_NAMES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()


# --------------------------------------------------------------------------- CIFAR-10


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol-2 pickler writing ``bytes`` as Python 2 ``str`` (BINSTRING), like the original CIFAR files.

    Loaded with ``encoding="latin1"`` (torchvision) the keys come back as
    ``str``; with ``encoding="bytes"`` as ``b'data'``, ``b'labels'``: exactly
    the behaviour of the files in ``cifar-10-python.tar.gz``.
    """

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str

    def save_global(self, obj, name=None):  # noqa: ANN001
        # The original files name numpy's reconstructor as numpy.core.multiarray._reconstruct.
        if getattr(obj, "__name__", None) == "_reconstruct" and "multiarray" in getattr(obj, "__module__", ""):
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def _dump_py2(obj: object, path: Path) -> None:
    with open(path, "wb") as handle:
        _Py2Pickler(handle, protocol=2).dump(obj)


def write_cifar10(root: Path, per_batch: int = 3, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write ``root/cifar-10-batches-py`` (data_batch_1..5, test_batch, batches.meta).

    Each batch dict has b'batch_label', b'labels' (list of int), b'data'
    (N x 3072 uint8: 1024 red, then 1024 green, then 1024 blue values, each
    plane row-major) and b'filenames'.  Returns {"train": (images N x 3 x 32 x 32, labels), "test": ...}.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list] = {"train": [[], []], "test": [[], []]}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for bname in names:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        label = b"testing batch 1 of 1" if bname == "test_batch" else f"training batch {bname[-1]} of 5".encode()
        _dump_py2({b"batch_label": label, b"labels": labels, b"data": data,
                   b"filenames": [f"img_{bname}_{i}.png".encode() for i in range(per_batch)]}, folder / bname)
        split = "test" if bname == "test_batch" else "train"
        out[split][0].append(data.reshape(per_batch, 3, 32, 32))
        out[split][1].extend(labels)
    classes = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    _dump_py2({b"num_cases_per_batch": per_batch, b"label_names": classes, b"num_vis": 3072}, folder / "batches.meta")
    return {k: (np.concatenate(v[0]), np.asarray(v[1], dtype=np.int64)) for k, v in out.items()}


# --------------------------------------------------------------------------- CelebA


def face(width: int, height: int, seed: int) -> Image.Image:
    """A smooth random RGB image (compresses well, survives JPEG roughly intact)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    chans = []
    for _ in range(3):
        a, b, c = rng.uniform(0.02, 0.1, size=3)
        chans.append(127 + 120 * np.sin(a * xx + b * yy + c * 10))
    return Image.fromarray(np.stack(chans, axis=-1).clip(0, 255).astype(np.uint8), "RGB")


def write_attr_file(path: Path, values: dict[str, np.ndarray]) -> None:
    """``list_attr_celeba.txt`` in the original format (CRLF, count line, names, padded -1/1 rows)."""
    lines = [str(len(values)), " ".join(ATTR_NAMES) + " "]
    for name, row in values.items():
        lines.append(name + " " + " ".join(f"{int(v):2d}" for v in row))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())


def random_attrs(names: list[str], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.choice([-1, 1], size=len(ATTR_NAMES)) for n in names}


def write_celeba_offline(root: Path, count: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """``root/celeba/img_align_celeba_89x109/000001.jpg..`` + the .sha256 manifest + list_attr_celeba.txt.

    Returns the attributes written (-1/1), keyed by file name.
    """
    folder = root / "celeba"
    image_dir = folder / "img_align_celeba_89x109"
    image_dir.mkdir(parents=True, exist_ok=True)
    names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
    manifest = []
    for i, name in enumerate(names):
        face(89, 109, seed + i).save(image_dir / name, quality=95)
        digest = hashlib.sha256((image_dir / name).read_bytes()).hexdigest()
        manifest.append(f"{digest}  img_align_celeba_89x109/{name}\n")
    (folder / "img_align_celeba_89x109.sha256").write_text("".join(manifest))
    # The attribute file lists more images than the copy holds, like the real one.
    attrs = random_attrs(names + [f"{i:06d}.jpg" for i in range(count + 1, count + 4)], seed)
    write_attr_file(folder / "list_attr_celeba.txt", attrs)
    return attrs


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_celeba_standard(root: Path, partitions: list[int], seed: int = 0, torchvision_extras: bool = False
                          ) -> dict[str, np.ndarray]:
    """``root/celeba/img_align_celeba/*.jpg`` (178 x 218) + list_eval_partition.txt + list_attr_celeba.txt.

    With ``torchvision_extras`` also identity_CelebA.txt, list_bbox_celeba.txt and
    list_landmarks_align_celeba.txt (dummy values, real layout), which torchvision's CelebA needs.
    """
    folder = root / "celeba"
    image_dir = folder / "img_align_celeba"
    image_dir.mkdir(parents=True, exist_ok=True)
    names = [f"{i:06d}.jpg" for i in range(1, len(partitions) + 1)]
    for i, name in enumerate(names):
        face(178, 218, seed + i).save(image_dir / name, quality=95)
    (folder / "list_eval_partition.txt").write_bytes(
        "".join(f"{n} {p}\r\n" for n, p in zip(names, partitions)).encode())
    attrs = random_attrs(names, seed + 1)
    write_attr_file(folder / "list_attr_celeba.txt", attrs)
    if torchvision_extras:
        crlf = lambda lines: ("\r\n".join(lines) + "\r\n").encode()  # noqa: E731
        (folder / "identity_CelebA.txt").write_bytes(crlf([f"{n} {100 + i}" for i, n in enumerate(names)]))
        (folder / "list_bbox_celeba.txt").write_bytes(crlf(
            [str(len(names)), "image_id x_1 y_1 width height"] + [f"{n} 95 71 226 313" for n in names]))
        (folder / "list_landmarks_align_celeba.txt").write_bytes(crlf(
            [str(len(names)), "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
             "rightmouth_x rightmouth_y"] + [f"{n} 69 109 106 113 77 142 73 152 108 154" for n in names]))
    return attrs


# --------------------------------------------------------------------------- MNIST


def write_mnist(root: Path, class_name: str = "MNIST", n_train: int = 5, n_test: int = 3, seed: int = 0
                ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Tiny ``root/<class_name>/raw/*-idx?-ubyte.gz`` files in the real idx format (md5s will not match)."""
    import gzip

    rng = np.random.default_rng(seed)
    raw = root / class_name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, count in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count).astype(np.uint8)
        with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as handle:
            handle.write(struct.pack(">iiii", 0x0803, count, 28, 28) + images.tobytes())
        with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as handle:
            handle.write(struct.pack(">ii", 0x0801, count) + labels.tobytes())
        out[split] = (images, labels.astype(np.int64))
    return out


def save_random_inception(tmp_path_factory, seed: int):
    """Seeded random FID-Inception weights saved as a weights file: (path, state dict)."""
    from rae_bench.metrics import random_fid_inception_state

    state = random_fid_inception_state(seed)
    path = tmp_path_factory.mktemp("inception") / "random_inception.pth"
    torch.save(state, path)
    return path, state
