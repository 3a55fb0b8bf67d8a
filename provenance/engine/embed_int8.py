"""all-MiniLM-L6-v2 in int8 for CPUs: built once per host from the fp32 weights, checked against
them, then run by ONNX Runtime. Pure torch + onnxruntime: no Django.

Plain dynamic int8 (weights per channel, activations per tensor at run time) leaves embeddings
only ~0.99 cosine from fp32 here, because a few activation channels carry values far larger than
the rest and one per-tensor scale must cover them. The build first moves that range into the
weights (SmoothQuant, Xiao et al. 2023): each Linear's input is divided per channel by
s = max|x|^alpha / max|w|^(1-alpha), measured on calibration texts, and its weight columns are
multiplied by s, which leaves the fp32 function unchanged; ONNX Runtime's dynamic quantiser then
makes the Linears int8 (weights per channel), the attention's activation-by-activation products
staying fp32.
The result is kept only if every check text's embedding is within `min_cosine` of fp32's;
`Build.passed` says whether it was.
"""

from __future__ import annotations

import ast
import copy
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sysconfig
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

RECIPE = "smoothquant-dynamic-int8-3"
ALPHA = 0.7  # chosen on the tuning split of bench/embeddings.py (the grid and figures there)
MIN_COSINE = 0.99
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Modules of Python's standard library whose docstrings are the calibration and check texts:
# real English prose on every host, read from the source files (so even under -OO).
CALIBRATION_MODULES = ("argparse", "asyncio/base_events", "collections/__init__", "csv",
                       "dataclasses", "datetime", "decimal", "email/message", "enum",
                       "functools", "http/client", "inspect", "logging/__init__", "pathlib",
                       "shutil", "subprocess", "tarfile", "textwrap", "threading", "typing",
                       "unittest/case", "urllib/parse", "zipfile")


@dataclass(frozen=True)
class Build:
    """What a build measured: the check texts' cosine to fp32, and whether it passed."""

    recipe: str
    alpha: float
    calibration_texts: int
    check_texts: int
    cosine_min: float
    cosine_mean: float
    min_cosine: float
    passed: bool


def calibration_texts(limit: int = 256, chars: int = 1000) -> list[str]:
    """Docstrings of the standard library cut into texts of up to `chars` characters, in a
    fixed order (the same on every host of one Python version)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts: list[str] = []
    for name in CALIBRATION_MODULES:
        path = root / f"{name}.py"
        if not path.is_file():
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = [tree] + [n for n in ast.walk(tree) if isinstance(
            n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
        current = ""
        for node in nodes:
            doc = ast.get_docstring(node) or ""
            if len(doc) < 80:
                continue
            current = f"{current}\n\n{doc}" if current else doc
            if len(current) >= chars // 2:
                texts.append(current[:chars])
                current = ""
    # Interleave modules' texts so that any prefix covers many of them.
    return sorted(texts, key=lambda t: hashlib.sha256(t.encode()).digest())[:limit]


class _Hidden(torch.nn.Module):
    """The encoder with positional inputs and one output, as ONNX export wants it."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state


class _Smoothed(torch.nn.Module):
    """x -> linear(x / s) with the linear's weight columns multiplied by s: the same function,
    an input that quantises per tensor with less loss."""

    def __init__(self, linear: torch.nn.Linear, scale: torch.Tensor) -> None:
        super().__init__()
        linear.weight.data *= scale
        self.linear = linear
        self.inverse: torch.Tensor
        self.register_buffer("inverse", 1.0 / scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.inverse)


def _input_ranges(model: torch.nn.Module, tokenizer: Any, texts: Sequence[str],
                  max_tokens: int) -> dict[str, torch.Tensor]:
    """max |x| per input channel of every Linear, over the real tokens of `texts`."""
    ranges: dict[str, torch.Tensor] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            def hook(_: Any, inputs: tuple[torch.Tensor, ...], __: Any, name: str = name) -> None:
                x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
                ranges[name] = torch.maximum(ranges[name], x) if name in ranges else x
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            for start in range(0, len(texts), 32):
                batch = tokenizer(list(texts[start:start + 32]), padding=True, truncation=True,
                                  max_length=max_tokens, return_tensors="pt")
                model(**batch)
    finally:
        for h in hooks:
            h.remove()
    return ranges


def smooth(model: torch.nn.Module, ranges: dict[str, torch.Tensor],
           alpha: float = ALPHA) -> torch.nn.Module:
    """A copy of `model` with every Linear in `ranges` wrapped in `_Smoothed` (the same
    function). BERT is post-LayerNorm (a LayerNorm's output also feeds the residual), so no
    scale folds into a LayerNorm: each Linear divides its input. Measured on the tuning split
    of bench/embeddings.py against smoothing the feed-forward Linears only (with and without
    ONNX Runtime's fused attention): the highest minimum cosine, at the same speed."""
    model = copy.deepcopy(model)
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            if isinstance(child, torch.nn.Linear) and name in ranges:
                weight = child.weight.detach().abs().amax(0).clamp(min=1e-5)
                scale = (ranges[name].clamp(min=1e-5) ** alpha
                         / weight ** (1 - alpha)).clamp(min=1e-5)
                setattr(parent, child_name, _Smoothed(child, scale))
    return model


def export(model: torch.nn.Module, tokenizer: Any, target: Path, *, int8: bool = True,
           per_channel: bool = True, products_fp32: bool = True, fuse: bool = False) -> None:
    """Export `model` to ONNX at `target`: its operators fused by ONNX Runtime's transformer
    optimiser if `fuse` (attention, LayerNorm with the residual, bias with GELU: no faster
    here, measured), then quantised by ONNX Runtime's dynamic int8 unless `int8` is False:
    weights per channel (or per tensor), and any activation-by-activation product left unfused
    kept fp32 unless `products_fp32` is False. The build uses the defaults; bench/embeddings.py
    the others."""
    logging.disable(logging.WARNING)  # the optimiser and quantiser log every node they touch
    try:
        _export(model, tokenizer, target, int8=int8, per_channel=per_channel,
                products_fp32=products_fp32, fuse=fuse)
    finally:
        logging.disable(logging.NOTSET)


def _export(model: torch.nn.Module, tokenizer: Any, target: Path, *, int8: bool,
            per_channel: bool, products_fp32: bool, fuse: bool) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    plain = target.with_suffix(".plain.onnx")
    # Two lengths, so that the padding mask is traced as a real input.
    sample = tokenizer(["a short text", "a longer text with a few more words in it"],
                       padding=True, return_tensors="pt")
    with warnings.catch_warnings():  # the tracer's notes on shapes; the build's check decides
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Hidden(model), tuple(sample[k] for k in INPUTS), str(plain),
            input_names=list(INPUTS), output_names=["hidden"],
            dynamic_axes={k: {0: "batch", 1: "tokens"} for k in (*INPUTS, "hidden")},
            opset_version=17, dynamo=False)
    fp32 = target.with_suffix(".fp32.onnx") if int8 else target
    if fuse:
        config: Any = model.config
        fused = optimizer.optimize_model(str(plain), model_type="bert", opt_level=1,
                                         num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size)
        fused.save_model_to_file(str(fp32))
        plain.unlink()
    else:
        plain.rename(fp32)
    if not int8:
        return
    graph = onnx.load(str(fp32)).graph
    weights = {i.name for i in graph.initializer}
    products = [n.name for n in graph.node if n.op_type == "MatMul"
                and not any(name in weights for name in n.input)]
    quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8,
                     per_channel=per_channel, nodes_to_exclude=products if products_fp32 else [],
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    fp32.unlink()


def build(folder: Path, model: torch.nn.Module, tokenizer: Any, reference: Any, *,
          max_tokens: int, calibration: Sequence[str], check: Sequence[str],
          alpha: float = ALPHA, min_cosine: float = MIN_COSINE) -> Build:
    """Build the int8 model into `folder` (written whole beside it, then renamed in: a
    concurrent builder's folder is kept as it is) and check it; `reference(texts)` gives fp32
    embeddings. `model` must use eager attention (its mask is then traced as an input)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        ranges = _input_ranges(model, tokenizer, calibration, max_tokens)
        export(smooth(model, ranges, alpha), tokenizer, work / "model.onnx")
        got = run(session(str(work / "model.onnx")), tokenizer, check, max_tokens=max_tokens)
        cosine = (got * reference(check)).sum(1)
        result = Build(recipe=RECIPE, alpha=alpha, calibration_texts=len(calibration),
                       check_texts=len(check), cosine_min=float(cosine.min()),
                       cosine_mean=float(cosine.mean()), min_cosine=min_cosine,
                       passed=bool(cosine.min() >= min_cosine))
        (work / "build.json").write_text(json.dumps(asdict(result), indent=1))
        try:
            os.rename(work, folder)
        except OSError:  # another worker built it first
            pass
        return built(folder) or result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cache_name() -> str:
    """A host's build, named by what it depends on (a new recipe, alpha or ONNX Runtime makes
    a new build)."""
    import onnxruntime

    return f"minilm-{RECIPE}-a{ALPHA}-ort{onnxruntime.__version__}"


def built_once(folder: Path, make: Callable[[Path], Build]) -> Build:
    """The build in `folder`, made by `make` if there is none: one builder per host at a time
    (a file lock beside the folder; the others wait for it and take its build)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.with_name(f".{folder.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return built(folder) or make(folder)


def built(folder: Path) -> Build | None:
    """The build kept in `folder`, if any."""
    try:
        return Build(**json.loads((folder / "build.json").read_text()))
    except (FileNotFoundError, TypeError, ValueError):
        return None


def session(path: str, threads: int | None = None) -> Any:
    """An ONNX Runtime session on `path` with `threads` threads (torch's count by default),
    opened once per process."""
    return _open(path, threads or torch.get_num_threads())


@lru_cache(maxsize=4)
def _open(path: str, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def forward(sess: Any, batch: dict[str, np.ndarray]) -> np.ndarray:
    """Mean-pooled, unit-length embeddings of one tokenised batch."""
    hidden = sess.run(None, {k: np.asarray(batch[k], dtype=np.int64) for k in INPUTS})[0]
    mask = np.asarray(batch["attention_mask"], dtype=np.float32)[..., None]
    pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(
        np.float32)


def in_length_order(texts: Sequence[str], tokenizer: Any, encode: Callable[[Any], np.ndarray],
                    *, dim: int, max_tokens: int, batch_size: int, tensors: str,
                    on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """(len(texts), dim): `encode` applied to batches of texts of similar length (less
    padding), tokenised as `tensors` ("np", "pt"), the rows put back in the texts' order."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in chunk], padding=True, truncation=True,
                          max_length=max_tokens, return_tensors=tensors)
        out[chunk] = encode(batch)
        if on_batch:
            on_batch(len(chunk))
    return out


def run(sess: Any, tokenizer: Any, texts: Sequence[str], *, max_tokens: int,
        batch_size: int = 32, on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """(len(texts), dim) unit-length embeddings from the int8 session."""
    return in_length_order(texts, tokenizer, lambda batch: forward(sess, batch),
                           dim=sess.get_outputs()[0].shape[-1], max_tokens=max_tokens,
                           batch_size=batch_size, tensors="np", on_batch=on_batch)
