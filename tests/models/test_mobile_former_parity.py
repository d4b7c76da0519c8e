"""Image Mobile-Former against the authors' code: state-dict manifests, init, and parity tensors.

The reference data (`../shared/reference/mobileformer/`, see its README) was generated from the
unmodified author code; tolerances are the ones its README recommends.
"""

import json

import pytest
import torch
from safetensors.torch import load_file

import effvid

VARIANTS = ("26m", "52m", "96m", "151m", "214m", "294m", "508m")

# (parity set, variant, logits atol, intermediates rtol, intermediates atol)
PARITY_SETS = [("mf52m", "52m", 1e-6, 0.0, 1e-5), ("mf26m_stress", "26m", 1e-4, 1e-5, 1e-4)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_equals_the_authors_manifest(reference_dir, variant):
    manifest = json.loads((reference_dir / "mobileformer" / f"manifest_{variant}.json").read_text())
    model = effvid.create_model(f"mobileformer_{variant}")
    shapes = {key: list(tensor.shape) for key, tensor in model.state_dict().items()}
    assert list(shapes) == list(manifest["keys"])  # same keys, same order
    assert shapes == manifest["keys"]
    assert effvid.count_params(model) == manifest["params"]


def _capture_intermediates(model):
    """Forward hooks that record what the reference captured, in its layout (tokens M x B x D)."""
    captured = {}

    def record(key, select=lambda output: output):
        def hook(module, inputs, output):
            captured[key] = select(output)

        return hook

    model.stem.register_forward_hook(record("stem"))
    for index, block in enumerate(model.features):
        block.register_forward_hook(record(f"block{index}_x", lambda out: out[0]))
        block.register_forward_hook(
            record(f"block{index}_tokens", lambda out: out[1].transpose(0, 1))
        )
    model.local_global.register_forward_hook(
        record("tokens_final", lambda out: out.transpose(0, 1))
    )
    model.classifier.avgpool.register_forward_hook(record("pooled"))
    model.classifier.fc.register_forward_hook(record("head_fc"))
    return captured


@pytest.mark.parametrize(("name", "variant", "logits_atol", "rtol", "atol"), PARITY_SETS)
def test_outputs_match_the_authors_model(reference_dir, name, variant, logits_atol, rtol, atol):
    folder = reference_dir / "mobileformer"
    reference = load_file(folder / f"{name}_io.safetensors")
    model = effvid.create_model(f"mobileformer_{variant}")
    report = effvid.load_checkpoint(model, folder / f"{name}_state_dict.safetensors", strict=True)
    assert len(report.loaded) == len(model.state_dict()) and not report.inflated
    model.eval()
    captured = _capture_intermediates(model)
    with torch.no_grad():
        logits = model(reference["input"])
    assert (logits - reference["logits"]).abs().max() < logits_atol
    intermediates = [key for key in reference if key not in ("input", "logits")]
    assert len(intermediates) >= 20
    for key in intermediates:
        torch.testing.assert_close(captured[key], reference[key], rtol=rtol, atol=atol, msg=key)


def test_initialisation_reproduces_the_authors_init(reference_dir):
    """With seed 0, every non-BatchNorm tensor equals the authors' init (mf52m recipe step 1)."""
    reference = load_file(reference_dir / "mobileformer" / "mf52m_state_dict.safetensors")
    torch.manual_seed(0)
    model = effvid.create_model("mobileformer_52m")
    batch_norms = {
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
    }
    compared = 0
    for key, tensor in model.state_dict().items():
        if key.rsplit(".", 1)[0] not in batch_norms:
            assert torch.equal(tensor, reference[key]), key
            compared += 1
    assert compared > 250
