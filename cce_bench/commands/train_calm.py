"""`cce-bench train-calm`: fine-tune a CALM head (and its ResNet-50 backbone) with CALM-EM on a local
ImageNet train folder, and save a checkpoint for the pointing game's `method_knobs.calm.checkpoint=`
(`sweep method=calm` too)."""
from __future__ import annotations

import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from ..data import create_dataset, image_batches
from ..errors import UserError
from ..explainers.calm import CALMNet, calm_em_loss, save_calm
from ..models import InputSettings, torchvision_imagenet_network
from ..models.weights import imagenet_weights
from ..runs.run_folder import mark_output_folder
from ..runs.runtime import resolve, seed_everything
from . import PlainCommand


def initial_calm(cfg: DictConfig) -> CALMNet:
    """CALM with the backbone of torchvision's ImageNet ResNet-50 (cache or `backbone_checkpoint`)."""
    net = CALMNet(1000)
    backbone = torchvision_imagenet_network(
        "resnet50", cfg.get("backbone_checkpoint"), bool(cfg.get("download", False))
    )
    net.features.load_state_dict(torch.nn.Sequential(*list(backbone.children())[:-2]).state_dict())
    return net


def run_train_calm(cfg: DictConfig):
    cfg = resolve(cfg)
    mark_output_folder(Path(cfg.out))
    seed_everything(int(cfg.seed), bool(cfg.deterministic))
    device = torch.device(cfg.device)
    net = initial_calm(cfg).to(device)
    # CALM's backbone is torchvision's ResNet-50 (IMAGENET1K_V1): its input settings
    inputs = InputSettings.from_torchvision(imagenet_weights("resnet50"))
    dataset = create_dataset(OmegaConf.to_container(cfg.data), inputs, seed=int(cfg.seed))
    if any(s.label < 0 for s in dataset.samples):
        raise UserError("train-calm needs labelled images: pass data.root=DIR of class folders (ImageNet train/)")
    head = list(net.class_maps.parameters()) + list(net.prior.parameters())
    groups = [{"params": head, "lr": float(cfg.lr_head)}]
    if float(cfg.lr_backbone) > 0:
        groups.append({"params": net.features.parameters(), "lr": float(cfg.lr_backbone)})
    else:
        net.features.requires_grad_(False)
    optimiser = torch.optim.SGD(groups, momentum=float(cfg.momentum), weight_decay=float(cfg.weight_decay))
    net.train()
    for module in net.features.modules():  # frozen BN statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    start, losses = time.perf_counter(), []
    for epoch in range(int(cfg.epochs)):
        batches = image_batches(dataset, int(cfg.batch_size), int(cfg.num_workers))
        for batch in tqdm(batches, desc=f"train-calm epoch {epoch + 1}/{cfg.epochs}", unit="batch", dynamic_ncols=True):
            images, labels = batch["image"].to(device), batch["label"].to(device)
            loss = calm_em_loss(net.joint_log_prob(images), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
    path = save_calm(net.eval(), cfg.checkpoint, {"config": OmegaConf.to_container(cfg), "losses": losses,
                                                  "seconds": time.perf_counter() - start})
    print(f"CALM checkpoint written to {path} (first loss {losses[0]:.3f}, last {losses[-1]:.3f}); "
          f"use it with: cce-bench pointing-game method_knobs.calm.checkpoint={path}")
    return path


COMMAND = PlainCommand("train-calm", run_train_calm)
