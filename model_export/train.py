"""The training loop, evaluation and checkpoints for `QuantSNN`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mintaccel.core.files import atomic_open
from mintaccel.core.errors import UserError
from mintaccel.model_export import datasets
from mintaccel.model_export.qat import DISTILL_TEMPERATURE, LayerSpec, QuantSNN, TrainConfig
from mintaccel.model_export.quantizers import temperature_schedule
from mintaccel.sim.encoding import rate_encode
from mintaccel.core.model import Encoding
from mintaccel.sim.reference import decode

CHECKPOINT_KIND = "mintaccel-checkpoint-v1"


@dataclass
class TrainResult:
    net: QuantSNN
    config: TrainConfig
    encoding: Encoding
    test_accuracy: float
    train_accuracy: float
    seconds: float
    """Wall time of the training loop (data loading excluded)."""
    split: str
    """Description of the data split."""


def encoded(split: datasets.Split, timesteps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The test and train inputs as spike tensors [n, T, inputs] (float32 0/1)."""
    xtr = torch.from_numpy(rate_encode(split.x_train, timesteps, split.levels)).float()
    xte = torch.from_numpy(rate_encode(split.x_test, timesteps, split.levels)).float()
    return xtr, xte


@torch.no_grad()
def predict(net: QuantSNN, x: torch.Tensor, batch_size: int = 1000) -> np.ndarray:
    """Eval-mode predictions (spike-count argmax, ties to the lowest index)."""
    was = net.training
    net.eval()
    counts = torch.cat([net(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    net.train(was)
    return decode(counts.numpy())


def accuracy(net: QuantSNN, x: torch.Tensor, y: np.ndarray) -> float:
    return float((predict(net, x) == y).mean())


def train(cfg: TrainConfig, progress=None, split: datasets.Split | None = None) -> TrainResult:
    """Train a network as `cfg` says. `progress(epoch, epochs, loss)` is called after each epoch."""
    if split is None:
        split = datasets.load(cfg.dataset, cfg.data_dir, seed=datasets.DEFAULT_SEED)
    if cfg.augment_shift and split.shape is None:
        raise UserError(f"augment_shift needs image data: {split.name} has no image shape")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    sizes = [split.n_inputs, *cfg.hidden, split.n_classes]
    net = QuantSNN(sizes, cfg, split.shape if cfg.arch else None)
    xtr, xte = encoded(split, cfg.timesteps)
    ytr = torch.from_numpy(split.y_train)
    start = time.perf_counter()
    init = None
    if cfg.float_init_epochs:
        float_twin = dataclasses.replace(cfg, layers=(LayerSpec("float", "float"),), epochs=cfg.float_init_epochs,
                                         float_init_epochs=0, distill=0.0)
        torch.manual_seed(cfg.seed)
        init = QuantSNN(sizes, float_twin, net.input_shape)
        fit(init, xtr, ytr, float_twin, None, split.shape)
        net.start_from(init)
    fit(net, xtr, ytr, cfg, progress, split.shape, teacher=init if cfg.distill else None)
    seconds = time.perf_counter() - start
    net.eval()
    return TrainResult(net, cfg, Encoding("rate", split.levels),
                       accuracy(net, xte, split.y_test), accuracy(net, xtr, split.y_train),
                       seconds, split.description)


def environment() -> dict:
    """What a training run's float results depend on besides its configuration: float training is
    bit-reproducible only with the same library versions, torch threads and CPU kernels."""
    import sklearn

    from mintaccel import __version__
    return {"mintaccel": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "scikit-learn": sklearn.__version__,
            "torch_threads": torch.get_num_threads(), "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine()}


def predictions_digest(predictions: np.ndarray) -> str:
    """sha256 of the class indices written in decimal, comma-separated (`3,0,7,...`): easy to
    recompute anywhere, and compact for a 10,000-sample test split."""
    return hashlib.sha256(",".join(str(int(p)) for p in predictions).encode()).hexdigest()


def shifted(x: torch.Tensor, shape: tuple[int, int, int], k: int, gen: torch.Generator) -> torch.Tensor:
    """Spike trains [B, T, C*H*W] of images each moved by its own random (dy, dx) in -k..k, zeros shifted
    in. The rate code is per pixel and a zero pixel never spikes, so this is the code of the moved image."""
    c, h, w = shape
    maps = torch.nn.functional.pad(x.view(len(x), -1, c, h, w), (k, k, k, k))
    offsets = torch.randint(0, 2 * k + 1, (len(x), 2), generator=gen).tolist()
    return torch.stack([m[..., dy:dy + h, dx:dx + w] for m, (dy, dx) in zip(maps, offsets)]).view(x.shape)


def fit(net: QuantSNN, xtr: torch.Tensor, ytr: torch.Tensor, cfg: TrainConfig, progress=None,
        shape: tuple[int, int, int] | None = None, teacher: QuantSNN | None = None) -> None:
    """The training loop: Adam with a cosine schedule, cross-entropy on output spike counts (mixed with
    distillation from `teacher`, weight `cfg.distill`), the sigmoid quantizers' temperature schedule;
    data order from `cfg.seed`, `cfg.augment_shift` shifts of the (C, H, W) `shape` images from their
    own stream. Leaves `net` in eval mode."""
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = (len(xtr) + cfg.batch_size - 1) // cfg.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(cfg.seed)
    shifts = torch.Generator().manual_seed(cfg.seed + 1)  # its own stream: the data order stays the same
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    gain = 8.0 / cfg.timesteps  # logits of a comparable range whatever T is
    if teacher is not None:
        teacher.eval()
    for epoch in range(cfg.epochs):
        net.train()
        net.set_temperature(temperature_schedule(epoch, cfg.epochs))
        order = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            x = shifted(xtr[idx], shape, cfg.augment_shift, shifts) if cfg.augment_shift else xtr[idx]
            logits = net(x) * gain
            loss = loss_fn(logits, ytr[idx])
            if teacher is not None:
                loss = (1 - cfg.distill) * loss + cfg.distill * distillation(logits, teacher, x, gain)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if progress:
            progress(epoch + 1, cfg.epochs, total / len(xtr))
    net.eval()


def distillation(logits: torch.Tensor, teacher: QuantSNN, x: torch.Tensor, gain: float) -> torch.Tensor:
    """KL(teacher || network) of the softened spike-count logits, times the temperature squared (so the
    gradient's size does not depend on it); the teacher (in eval mode) without gradients."""
    t = DISTILL_TEMPERATURE
    with torch.no_grad():
        target = torch.log_softmax(teacher(x) * gain / t, 1)
    return torch.nn.functional.kl_div(torch.log_softmax(logits / t, 1), target, log_target=True,
                                      reduction="batchmean") * t * t


def save_checkpoint(result: TrainResult, path: str | Path) -> None:
    """A torch checkpoint of tensors and JSON text only (loadable with weights_only=True)."""
    payload = {
        "kind": CHECKPOINT_KIND,
        "config": json.dumps(result.config.to_json()),
        "sizes": json.dumps(result.net.sizes),
        "encoding": json.dumps({"kind": result.encoding.kind, "levels": result.encoding.levels}),
        "state_dict": result.net.state_dict(),
    }
    if result.net.input_shape is not None:  # a conv network's (C, H, W); an MLP's checkpoint is unchanged
        payload["input_shape"] = json.dumps(result.net.input_shape)
    with atomic_open(path, "wb") as f:
        torch.save(payload, f)


def load_checkpoint(path: str | Path) -> tuple[QuantSNN, Encoding]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:  # torch raises many types for a bad file
        raise UserError(f"{path}: not a readable mintaccel checkpoint ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("kind") != CHECKPOINT_KIND:
        raise UserError(f"{path}: not a mintaccel checkpoint (expected kind {CHECKPOINT_KIND})")
    try:
        cfg = TrainConfig.from_json(json.loads(payload["config"]))
        net = QuantSNN(json.loads(payload["sizes"]), cfg, json.loads(payload.get("input_shape", "null")))
        net.load_state_dict(payload["state_dict"])
        enc = json.loads(payload["encoding"])
        encoding = Encoding(enc["kind"], enc["levels"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise UserError(f"{path}: damaged checkpoint ({e})") from None
    net.eval()
    return net, encoding
