"""tools/estimate_gpu_hours.py: the FLOP-ratio arithmetic against DAFormer's published anchor."""
import pytest

from tools import estimate_gpu_hours as tool


def test_a_model_as_costly_as_the_anchor_costs_its_passes_share_of_the_anchor(monkeypatch,
                                                                              capsys):
    """With every forward equal to the anchor's, a self-training step (7 passes) costs 7/8 of a
    DACS iteration on each of the paper's 8 GPUs: 1/16 of Table 2 is 34,800 iterations, so
    34800 x 7/8 x 1.44 s x 8 / 3600 = 97.44 GPU-hours."""
    monkeypatch.setattr(tool, 'forward_gflops', lambda cfg, crop: 100.0)
    monkeypatch.setattr(tool, 'anchor_gflops', lambda: 100.0)
    assert tool.main(['--exp', '2']) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if 'cs1-16' in ln]
    assert rows and all(ln.endswith('| 97 |') for ln in rows)
    assert 34800 * 7 / 8 * 1.44 * 8 / 3600 == pytest.approx(97.44)


def test_forward_flops_of_a_tiny_model_are_counted():
    from mmcv import Config
    cfg = Config.fromfile('configs/_base_/models/tiny_daformer_mitb0.py')
    assert 0 < tool.forward_gflops(cfg._cfg_dict.to_dict()['model'], (64, 64)) < 5
