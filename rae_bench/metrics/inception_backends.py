"""Inference backends for the FID Inception body (everything after resize + normalize).

:class:`~rae_bench.metrics.inception.InceptionExtractor` resizes to 299 x 299 and
maps [0, 1] to [-1, 1] in torch, exactly as pytorch-fid's ``InceptionV3.forward``,
then hands the N x 3 x 299 x 299 float32 batch to one of these runners:

- ``torch``: the extractor's BN-folded, channels-last module itself (always available; no runner).
- ``openvino``: the module converted with ``openvino.convert_model`` and
  compiled for the CPU plugin with ``INFERENCE_PRECISION_HINT=f32`` (without the
  hint OpenVINO may run bf16 on CPUs that have it, which changes the FID).
- ``onnxruntime``: exported with ``torch.onnx`` (TorchScript exporter), CPU EP.
- ``compile``: ``torch.compile`` with inductor freezing (needs a C++ compiler).
- ``onednn``: ``torch.jit.enable_onednn_fusion`` + trace + freeze.

``auto`` takes the first of :data:`AUTO_ORDER` whose package imports (the
optional ``fast`` extra installs it) and falls back to ``torch``.  All keep
float32 throughout; ``tests/metrics/test_features.py`` checks each available one against
pytorch-fid's own forward to 1e-4 relative in FID.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from importlib.metadata import version as pkg_version
from typing import Callable

import numpy as np
import torch

BACKENDS = ("auto", "torch", "openvino", "onnxruntime", "compile", "onednn")
AUTO_ORDER = ("openvino",)  # measured fastest with parity (benchmarks/README.md); torch is the fallback
SIZE = 299

Runner = Callable[[torch.Tensor], np.ndarray]  # N x 3 x 299 x 299 float32 -> N x 2048 float32


class Body(torch.nn.Module):
    """pytorch-fid's blocks up to pool3, returning N x 2048."""

    def __init__(self, blocks: torch.nn.ModuleList):
        super().__init__()
        self.blocks = torch.nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x).flatten(1)


def available(name: str) -> bool:
    """Whether backend ``name`` can run here (its package imports; a compiler for ``compile``)."""
    if name in ("torch", "onednn"):
        return True
    if name == "openvino":
        return importlib.util.find_spec("openvino") is not None
    if name == "onnxruntime":
        return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
    if name == "compile":
        return shutil.which(os.environ.get("CXX", "g++")) is not None or shutil.which("gcc") is not None
    return False


def resolve(name: str, have: Callable[[str], bool] = available) -> str:
    """``auto`` -> the first of :data:`AUTO_ORDER` that ``have`` says is there, else ``torch``; others as given."""
    if name == "auto":
        return next((b for b in AUTO_ORDER if have(b)), "torch")
    return name


def _threads() -> int:
    return torch.get_num_threads()


def _example() -> torch.Tensor:
    return torch.zeros(1, 3, SIZE, SIZE)


CACHE_ENV = "RAE_BENCH_BACKEND_CACHE"


def cache_dir() -> Path:
    """Where converted models are kept: $RAE_BENCH_BACKEND_CACHE, else ~/.cache/rae_bench/inception."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rae_bench" / "inception"


def _state_key(body: torch.nn.Module) -> str:
    """Digest of the (folded) weights: a converted model is reused only for the very same numbers."""
    digest = hashlib.sha256()
    for name, t in body.state_dict().items():
        digest.update(name.encode())
        digest.update(t.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def openvino_folder(body: torch.nn.Module) -> Path:
    """The cache folder of ``body`` converted by this OpenVINO version (``model.xml`` / ``model.bin``)."""
    return cache_dir() / f"openvino-{version('openvino')}-{_state_key(body)}"


def compile_openvino_f32(model, hint: str = "LATENCY"):
    """``model`` compiled for the CPU plugin in f32 (checked: bf16 / f16 would change the FID), with the
    performance ``hint`` and torch's thread count."""
    import openvino as ov  # an optional extra (pip install '.[fast]')

    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": _threads(), "PERFORMANCE_HINT": hint}
    compiled = ov.Core().compile_model(model, "CPU", config)
    precision = compiled.get_property("INFERENCE_PRECISION_HINT")
    if precision != ov.Type.f32:
        raise RuntimeError(f"OpenVINO CPU plugin runs in {precision}, not f32")
    return compiled


def openvino_runner(body: torch.nn.Module) -> Runner:
    import openvino as ov  # an optional extra (pip install '.[fast]')

    # Conversion (a trace of the whole net) takes ~15 s here, so the IR is cached per weights + version;
    # the folder is written aside and renamed into place, so concurrent jobs never read half a model.
    folder = openvino_folder(body)
    model = None
    if (folder / "model.xml").is_file() and (folder / "model.bin").is_file():
        try:
            model = ov.Core().read_model(str(folder / "model.xml"))
        except Exception:  # noqa: BLE001 - unreadable cache entry: convert again
            model = None
    if model is None:
        with torch.no_grad():
            model = ov.convert_model(body, example_input=_example(), input=[ov.PartialShape([-1, 3, SIZE, SIZE])])
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
            ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)  # keep the f32 weights
            try:
                os.rename(tmp, folder)
            except OSError:  # another job got there first
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:  # read-only home etc.: run without the cache
            pass
    request = compile_openvino_f32(model).create_infer_request()

    def run(x: torch.Tensor) -> np.ndarray:
        out = request.infer([np.ascontiguousarray(x.numpy())])
        return np.array(next(iter(out.values())), dtype=np.float32, copy=True)
    return run


def onnxruntime_runner(body: torch.nn.Module) -> Runner:
    import onnxruntime as ort  # an optional extra (pip install '.[fast-onnx]')

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "inception.onnx")
        with torch.no_grad():
            torch.onnx.export(body, (_example(),), path, dynamo=False, input_names=["x"], output_names=["f"],
                              dynamic_axes={"x": {0: "n"}, "f": {0: "n"}}, opset_version=17)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = _threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    def run(x: torch.Tensor) -> np.ndarray:
        return session.run(None, {"x": np.ascontiguousarray(x.numpy())})[0]
    return run


def compile_runner(body: torch.nn.Module) -> Runner:
    import torch._inductor.config as inductor_config  # here: seconds after torch (-X importtime), compile backend only

    inductor_config.freezing = True
    compiled = torch.compile(body, dynamic=False)

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return compiled(x.contiguous(memory_format=torch.channels_last)).numpy()
    return run


def onednn_runner(body: torch.nn.Module) -> Runner:
    torch.jit.enable_onednn_fusion(True)
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(body, _example().contiguous(memory_format=torch.channels_last)))

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return traced(x.contiguous(memory_format=torch.channels_last)).numpy()
    return run


# the engines other than ``torch``, which is InceptionExtractor's own BN-folded channels-last module
RUNNERS: dict[str, Callable[[torch.nn.Module], Runner]] = {
    "openvino": openvino_runner, "onnxruntime": onnxruntime_runner,
    "compile": compile_runner, "onednn": onednn_runner,
}


def version(name: str) -> str:
    """Version of the package behind backend ``name`` (for the extractor's info)."""
    module = {"openvino": "openvino", "onnxruntime": "onnxruntime"}.get(name, "torch")
    try:
        return pkg_version(module)
    except Exception:  # noqa: BLE001 - metadata missing: report nothing rather than fail
        return "?"
