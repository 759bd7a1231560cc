"""tools/check_env.py: the guard that keeps a stale mmcv-full build out."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('check_env', REPO / 'tools' / 'check_env.py')
check_env = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_env)


def test_pins_come_from_requirements():
    pins = check_env.pins()
    assert pins['torch'] == '2.9.1' and pins['mmcv-full'] == '1.7.2'
    assert pins['mmsegmentation'] == '0.30.0'


def test_mmcv_built_for_another_torch_is_detected(tmp_path, monkeypatch):
    record = tmp_path / check_env.BUILD_RECORD
    record.write_text('2.1.0')
    monkeypatch.setattr(check_env, '_mmcv_record_path', lambda: record)
    problems = check_env.check_mmcv(check_env.pins())
    assert any('built against torch 2.1.0' in p for p in problems)
    record.unlink()  # a build with no record (e.g. a wheel from the cache) is not trusted either
    assert any('built against torch None' in p for p in check_env.check_mmcv(check_env.pins()))


def test_this_environment_is_complete():
    out = subprocess.run([sys.executable, str(REPO / 'tools' / 'check_env.py')],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert 'environment OK' in out.stdout


@pytest.mark.parametrize('bad', ['torch', 'mmcv-full'])
def test_wrong_versions_are_reported(monkeypatch, bad):
    real = check_env._version
    monkeypatch.setattr(check_env, '_version', lambda d: '0.0.1' if d == bad else real(d))
    problems = check_env.check_all(check_env.pins())
    assert any(p.startswith(f'{bad} 0.0.1 installed') or '0.0.1' in p for p in problems)
