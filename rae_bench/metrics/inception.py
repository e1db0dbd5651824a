"""The FID Inception network (pytorch-fid's own), loaded from a local weights file.

Nothing is downloaded unless asked: :func:`resolve_inception_weights` finds the
weights file (config path, ``RAE_BENCH_INCEPTION_WEIGHTS``, torch hub cache)
and :func:`build_fid_inception` builds pytorch-fid's ``InceptionV3`` with its
``load_state_dict_from_url`` pointed at that file, so the network (including
pytorch-fid's resize and normalization) is exactly the one pytorch-fid uses.

For inference :class:`InceptionExtractor` then folds every eval-mode batch norm
into the convolution before it and stores weights and activations channels-last
(:func:`fast_inference`): the same function up to float32 round-off (features
agree to ~1e-6 relative, FID to far better than 1e-4), about 1.5x faster on CPU.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import torch

import pytorch_fid.inception as pfi
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from rae_bench.metrics import inception_backends as ib

from rae_bench.data.convert import as_float_images
from rae_bench.errors import CheckpointError, ConfigError, DataError, RaeBenchError

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SIZE = 95_628_359
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
WEIGHTS_ENV = "RAE_BENCH_INCEPTION_WEIGHTS"
PRECISIONS = ("fp32", "bf16")  # bf16: an explicit, faster option that changes the numbers

_checked_files: dict[tuple[str, int, int], bool] = {}


def hub_weights_path() -> Path:
    """Where pytorch-fid's download lands (and where we look): <torch hub dir>/checkpoints/<file>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def resolve_inception_weights(explicit: str | os.PathLike[str] | None = None, download: bool = False) -> Path | None:
    """Find the FID Inception weights: explicit path -> $RAE_BENCH_INCEPTION_WEIGHTS -> torch hub cache.

    Returns ``None`` only when nothing is found and ``download`` is true
    (pytorch-fid then downloads into the hub cache).
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise RaeBenchError(
                f"Inception weights file '{path}' (from config inception_weights) does not exist; "
                f"fix the path or remove the setting to use ${WEIGHTS_ENV} or {hub_weights_path()}"
            )
        return path
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise RaeBenchError(
                f"Inception weights file '{path}' (from ${WEIGHTS_ENV}) does not exist; "
                f"fix or unset {WEIGHTS_ENV}"
            )
        return path
    hub = hub_weights_path()
    if hub.is_file():
        return hub
    if download:
        return None
    raise RaeBenchError(
        f"FID Inception weights not found: get {FID_WEIGHTS_FILE} ({FID_WEIGHTS_SIZE:,} bytes) from {pfi.FID_WEIGHTS_URL} "
        f"and put it at {hub} or point {WEIGHTS_ENV} (or `inception_weights:` in the config) at it"
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_official(path: Path, warn: bool = True) -> bool:
    """True if the file's sha256 starts with the official prefix; warns if not (hash cached per file)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _checked_files:
        _checked_files[key] = _sha256(path).startswith(FID_WEIGHTS_SHA256_PREFIX)
    official = _checked_files[key]
    if warn and not official:
        warnings.warn(
            f"Inception weights '{path}' are not the official FID weights (sha256 does not start with "
            f"{FID_WEIGHTS_SHA256_PREFIX}); FID values are not comparable with published ones",
            stacklevel=3,
        )
    return official


def build_fid_inception(weights: Path | None, device: str | torch.device = "cpu") -> pfi.InceptionV3:
    """pytorch-fid's ``InceptionV3([3])`` (pool3, resize + normalize), weights from ``weights``, eval mode.

    ``weights=None`` lets pytorch-fid download them into the torch hub cache.
    """
    if weights is None:
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                                normalize_input=True, use_fid_inception=True)
        return model.eval().to(device)

    weights = Path(weights)
    if not weights.is_file():
        raise RaeBenchError(f"Inception weights file '{weights}' does not exist; see resolve_inception_weights for where to put it")

    def loader(url, *args, **kwargs):  # noqa: ARG001 - same signature as load_state_dict_from_url
        try:
            return torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated / not a torch file
            raise CheckpointError(
                f"cannot read Inception weights '{weights}' ({type(exc).__name__}); replace it with a fresh copy of {FID_WEIGHTS_FILE}"
            ) from exc

    try:
        with mock.patch.object(pfi, "load_state_dict_from_url", loader):
            model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                                    normalize_input=True, use_fid_inception=True)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"Inception weights '{weights}' do not fit the FID Inception network; replace it with {FID_WEIGHTS_FILE}"
        ) from exc
    _check_official(weights)  # after loading: an unreadable file gets one error line, not a warning too
    return model.eval().to(device)


def fast_inference(model: torch.nn.Module) -> torch.nn.Module:
    """Fold eval-mode BatchNorm into the preceding conv and switch to channels-last, in place.

    Every ``BasicConv2d`` of the FID Inception is conv (no bias) -> BN -> ReLU; with
    frozen statistics the BN is an affine map per channel, so it becomes the
    conv's weight scale and bias (one pass over the activations fewer), and
    oneDNN's convolutions are faster on channels-last (NHWC) tensors.
    """
    model.eval()
    for module in model.modules():
        conv, bn = getattr(module, "conv", None), getattr(module, "bn", None)
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(conv, bn)
            module.bn = torch.nn.Identity()
    return model.to(memory_format=torch.channels_last)


def random_fid_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """State dict of the FID Inception architecture with seeded random weights (tests, timing).

    Convolutions get He-normal weights and batch norms near-identity statistics,
    so activations stay in a sensible range through the whole network.  The
    global RNG is not touched.
    """
    captured: dict[str, torch.nn.Module] = {}
    original = pfi._inception_v3

    def capture(*args, **kwargs):
        net = original(*args, **kwargs)
        captured["net"] = net
        return net

    def own_state(url, *args, **kwargs):  # noqa: ARG001
        return captured["net"].state_dict()

    with mock.patch.object(pfi, "_inception_v3", capture), mock.patch.object(pfi, "load_state_dict_from_url", own_state):
        net = pfi.fid_inception_v3()

    gen = torch.Generator().manual_seed(int(seed))
    state: dict[str, torch.Tensor] = {}
    for name, tensor in net.state_dict().items():
        t = tensor.detach().clone()
        if t.dtype.is_floating_point:
            if t.ndim >= 2:  # conv / linear weight: He normal
                fan_in = int(np.prod(t.shape[1:]))
                t = torch.randn(t.shape, generator=gen) * (2.0 / fan_in) ** 0.5
            elif name.endswith("running_var"):
                t = 1.0 + 0.1 * torch.rand(t.shape, generator=gen)
            elif name.endswith("running_mean"):
                t = 0.05 * torch.randn(t.shape, generator=gen)
            elif name.endswith("weight"):  # BN gamma
                t = 1.0 + 0.1 * torch.randn(t.shape, generator=gen)
            else:  # biases / BN beta
                t = 0.05 * torch.randn(t.shape, generator=gen)
        state[name] = t.contiguous()
    return state


class InceptionExtractor:
    """2048-d pool3 features of the FID Inception network.

    Input: uint8 (0..255) or float ([0, 1]; clamped) images N x C x H x W,
    C = 1 (repeated to 3) or 3.  Output: float32 numpy N x 2048.

    ``fast`` (default): BN folded into the convs, channels-last (see
    :func:`fast_inference`); ``fast=False`` runs pytorch-fid's module as is.
    ``precision="bf16"`` (explicit, never the default) runs the network under
    bfloat16 autocast: about 2-3x faster on CPUs with AMX/AVX-512-BF16, but the
    features move by ~0.5 % and FIDs are no longer those of pytorch-fid, so the
    extractor is then called ``inception-bf16`` and tables say so.

    ``backend`` (fp32 only): which engine runs the network after pytorch-fid's
    resize + normalize, see :mod:`rae_bench.metrics.inception_backends`.
    ``auto`` (default) takes OpenVINO when installed (the ``fast`` extra) and
    the torch path otherwise; all give pytorch-fid's FID to 1e-4 relative, so
    the name stays ``inception``; ``self.backend`` / ``self.info`` say which ran.
    """

    dim = 2048

    def __init__(self, weights: str | os.PathLike[str] | None = None, *, download: bool = False,
                 device: str | torch.device = "cpu", batch_size: int = 100, fast: bool = True,
                 precision: str = "fp32", backend: str = "auto"):
        if backend not in ib.BACKENDS:
            raise ConfigError(f"unknown Inception backend '{backend}'; valid: {', '.join(ib.BACKENDS)} "
                              f"(features.backend in the config)")
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown feature precision '{precision}'; valid: {', '.join(PRECISIONS)} "
                              f"(features.precision in the config)")
        self.precision = precision
        self.name = "inception" if precision == "fp32" else f"inception-{precision}"
        path = resolve_inception_weights(weights, download=download)
        self.weights = path
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.official = path is None or _check_official(path, warn=False)
        self.model = build_fid_inception(path, self.device)
        self.fast = bool(fast)
        if self.fast:
            fast_inference(self.model)
        self._layout = torch.channels_last if self.fast else torch.contiguous_format
        self._runner: ib.Runner | None = None
        self.backend = "torch" if (precision != "fp32" or not self.fast or self.device.type != "cpu") else ib.resolve(backend)
        if backend not in ("auto", "torch") and self.backend != backend:
            raise ConfigError(f"Inception backend '{backend}' needs precision fp32, fast=True and a CPU device")
        if self.backend != "torch":
            if not ib.available(self.backend):
                raise ConfigError(f"Inception backend '{self.backend}' is not installed here; "
                                  f"pip install 'rae-bench[fast]' or use features.backend: auto / torch")
            try:
                self._runner = ib.RUNNERS[self.backend](ib.Body(self.model.blocks).eval())
            except Exception as exc:  # noqa: BLE001 - an optional engine that fails to build: torch path
                if backend != "auto":
                    raise
                warnings.warn(f"Inception backend '{self.backend}' failed to build ({type(exc).__name__}: {exc}); "
                              f"using torch", stacklevel=2)
                self.backend = "torch"
        self.info = {"backend": self.backend, "backend_version": ib.version(self.backend)}

    def __call__(self, images) -> np.ndarray:
        images = torch.as_tensor(images)
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise DataError(
                f"Inception features need images N x C x H x W with C = 1 or 3, got shape {tuple(images.shape)}"
            )
        out = np.empty((images.shape[0], self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, images.shape[0], self.batch_size):
                batch = images[start:start + self.batch_size].to(self.device)
                x = as_float_images(batch).float()
                if batch.dtype != torch.uint8:
                    x = x.clamp(0.0, 1.0)  # never in place: float input may be the caller's tensor
                if x.shape[1] == 1:
                    x = x.expand(-1, 3, -1, -1)
                if self._runner is not None:  # pytorch-fid's own resize + normalize, then the engine
                    x = F.interpolate(x, size=(ib.SIZE, ib.SIZE), mode="bilinear", align_corners=False)
                    out[start:start + x.shape[0]] = self._runner((2 * x - 1).contiguous())
                    continue
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                    feats = self.model(x.contiguous(memory_format=self._layout))[0]
                out[start:start + feats.shape[0]] = feats.reshape(feats.shape[0], -1).float().cpu().numpy()
        return out
