"""Mixed precision (``--amp true``) in every trainer and inferer, and MONAI's engine contract in ours: batches
through ``prepare_batch``, the iteration events."""

import numpy as np
import pytest
import torch
from monai.engines.utils import IterationEvents

from helpers import tiny_network, write_folder_dataset
from scripts.inferers import MaskPathwayInferer
from test_baselines import METHODS, baseline, parse, small

TRAINERS = {  # what runs: the trainer's config id and the overlays that select it
    "stage 1": ("pretrain#trainer", []),
    "co-training": ("train#trainer", []),
    "supervised": ("train#trainer", ["baselines/supervised.yaml"]),
    **{name: ("train#trainer", baseline(name)) for name in METHODS},
    "bcp pre-training": ("pretrain#trainer", baseline("bcp")),
}


def record_conv_dtypes(network: torch.nn.Module) -> list[torch.dtype]:
    """The output dtypes of every convolution of ``network``, as they run."""
    dtypes = []
    for module in network.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(lambda _module, _inputs, output: dtypes.append(output.dtype))
    return dtypes


@pytest.mark.parametrize("amp", [True, False])
@pytest.mark.parametrize("method", list(TRAINERS))
def test_an_amp_step_runs_in_bfloat16_on_the_cpu_with_a_finite_loss_through_the_engine_contract(tmp_path, monkeypatch,
                                                                                               method, amp):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)  # autocast runs on any CPU
    write_folder_dataset(tmp_path / "data", num_images=12)
    trainer_id, overlays = TRAINERS[method]
    parser = parse(overlays, **small(tmp_path, tmp_path / "data", max_epochs=1, pretrain_epochs=1, val_interval=5,
                                     uncertainty_passes=2, amp=amp))
    trainer = parser.get_parsed_content(trainer_id)
    dtypes = record_conv_dtypes(trainer.network)
    fired, prepared = [], []
    for event in list(IterationEvents)[:4]:
        trainer.add_event_handler(event, lambda engine, event=event: fired.append(event))
    prepare_batch = trainer.prepare_batch
    trainer.prepare_batch = lambda batch, *args, **kwargs: prepared.append(1) or prepare_batch(batch, *args, **kwargs)
    trainer.run()
    # a batch of images (stage 1, supervised-only, BCP's pre-training), or a labeled and an unlabeled one, per iteration
    assert len(prepared) == (1 if method in ("stage 1", "supervised", "bcp pre-training") else 2) * trainer.state.iteration
    assert np.isfinite(trainer.state.output["loss"].item())
    assert (torch.bfloat16 in dtypes) == amp and (torch.float32 in dtypes) != amp
    if method != "supervised":  # MONAI's own SupervisedTrainer fires them in its own order
        assert fired == list(IterationEvents)[:4]
    assert trainer.state.output["pred"].dtype == torch.float32   # losses and softmaxes in full precision


def test_the_inferer_follows_the_amp_flag_and_returns_float32_probabilities(scheduler):
    network = tiny_network()
    dtypes = record_conv_dtypes(network)
    image = torch.rand(2, 1, 16, 16)
    full = MaskPathwayInferer(scheduler)(image, network)
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    mixed = MaskPathwayInferer(scheduler, amp=True)(image, network)
    assert set(dtypes) == {torch.bfloat16} and mixed.dtype == torch.float32
    assert (mixed - full).abs().max() < 0.05


@pytest.mark.parametrize("device, avx512_bf16, amx, expected", [
    ("cpu", True, False, True), ("cpu", False, True, True), ("cpu", False, False, False), ("cuda", False, False, True),
])
def test_amp_runs_where_the_device_computes_it_natively_and_says_so_where_not(monkeypatch, caplog, device,
                                                                                avx512_bf16, amx, expected):
    from scripts.precision import mixed_precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert mixed_precision("true", device) is expected
    assert ("no bfloat16 instructions" in caplog.text) != expected
    assert mixed_precision(False, device) is False
