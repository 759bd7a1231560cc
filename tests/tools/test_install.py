"""tools/check_env.py: the guard that keeps a stale mmcv-full build out."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
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


def test_cli_says_ok_or_lists_the_problems(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['check_env.py'])
    monkeypatch.setattr(check_env, 'check_all', lambda pins, keep_torch=False: [])
    assert check_env.main() == 0 and 'environment OK' in capsys.readouterr().out
    monkeypatch.setattr(check_env, 'check_all',
                        lambda pins, keep_torch=False: ['torch 2.1.0 installed, 2.9.1 required'])
    assert check_env.main() == 1
    assert 'environment incomplete:\n  torch 2.1.0 installed' in capsys.readouterr().err


@pytest.mark.parametrize('bad', ['torch', 'mmcv-full'])
def test_wrong_versions_are_reported(monkeypatch, bad):
    real = check_env._version
    monkeypatch.setattr(check_env, '_version', lambda d: '0.0.1' if d == bad else real(d))
    problems = check_env.check_all(check_env.pins())
    pins = check_env.pins()
    assert f'{bad} 0.0.1 installed, {pins[bad]} required' in problems


# --- tools/install.sh, driven with a stand-in Python that records every call -----------------

FAKE_PYTHON = r'''#!/usr/bin/env bash
log=$FAKE_LOG
if [ "$1" = tools/check_env.py ]; then
  case " $* " in
    *" --record-mmcv-build "*) exit 0 ;;
    *" --describe-mmcv "*) echo "mmcv-full 1.7.2, CPU ops only, compiled with GCC 12.2"; exit 0 ;;
    *" --only torch "*) exit ${FAKE_TORCH_OK:-0} ;;
    *" --quiet "*) exit 1 ;;
  esac
  exit 0
fi
if [ "$1" = -m ] && [ "$2" = pip ]; then
  cvd=${CUDA_VISIBLE_DEVICES-<unset>}
  echo "pip ${*:3} | CUDA_VISIBLE_DEVICES=$cvd MAX_JOBS=${MAX_JOBS-<unset>}" >> "$log"
  prev=""
  for a in "$@"; do
    if [ "$prev" = -r ]; then sed "s/^/  req: /" "$a" >> "$log"; fi
    prev=$a
  done
  exit 0
fi
echo 2.9.1
'''


def _run_install(tmp_path, *args, env=None):
    fake = tmp_path / 'python'
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    log = tmp_path / 'calls.log'
    log.write_text('')
    full_env = dict(PATH='/usr/bin:/bin', PYTHON=str(fake), FAKE_LOG=str(log),
                    CUDA_VISIBLE_DEVICES='0', **(env or {}))
    out = subprocess.run(['bash', str(REPO / 'tools' / 'install.sh'), *args], env=full_env,
                         capture_output=True, text=True)
    return out, log.read_text().splitlines()


@pytest.mark.integration
def test_install_builds_mmcv_with_the_gpu_hidden_and_capped_jobs(tmp_path):
    out, calls = _run_install(tmp_path)
    assert out.returncode == 0, out.stderr
    mmcv = [c for c in calls if 'mmcv-full==' in c and c.startswith('pip install')]
    assert len(mmcv) == 1
    assert 'CUDA_VISIBLE_DEVICES= ' in mmcv[0]  # set, and empty: torch sees no GPU
    assert '--no-cache-dir' in mmcv[0] and '--no-binary mmcv-full' in mmcv[0]
    jobs = int(mmcv[0].rsplit('MAX_JOBS=', 1)[1])
    assert 1 <= jobs <= 8
    torch_line = next(c for c in calls if 'torch==2.9.1' in c)
    assert 'CUDA_VISIBLE_DEVICES=0' in torch_line  # only the build is hidden from the GPU
    assert 'CPU ops only, GPU hidden from the build' in out.stdout
    assert 'built: mmcv-full 1.7.2, CPU ops only' in out.stdout


@pytest.mark.integration
def test_install_from_a_wheelhouse_uses_no_index(tmp_path):
    house = tmp_path / 'wheels'
    house.mkdir()
    out, calls = _run_install(tmp_path, '--wheelhouse', str(house))
    assert out.returncode == 0, out.stderr
    installs = [c for c in calls if c.startswith('pip install')]
    assert installs and all(f'--no-index --find-links {house}' in c for c in installs)
    out, _ = _run_install(tmp_path, '--wheelhouse', str(tmp_path / 'missing'))
    assert out.returncode == 1 and 'make wheelhouse' in out.stderr


@pytest.mark.integration
def test_install_keep_torch_installs_no_torch(tmp_path):
    out, calls = _run_install(tmp_path, '--keep-torch')
    assert out.returncode == 0, out.stderr
    assert not any('torch==' in c for c in calls if c.startswith('pip install'))
    requirements = [c for c in calls if c.startswith('  req: ')]
    assert any('mmsegmentation==' in r for r in requirements)
    assert not any(r.startswith('  req: torch') for r in requirements)
    out, calls = _run_install(tmp_path, '--keep-torch', env=dict(FAKE_TORCH_OK='1'))
    assert out.returncode == 1 and not any(c.startswith('pip install') for c in calls)


def test_keep_torch_accepts_a_range_and_names_what_is_wrong(monkeypatch):
    versions = dict(torch='2.11.0+cu130', torchvision='0.26.0')
    monkeypatch.setattr(check_env, '_version', lambda d: versions.get(d))
    assert check_env.check_torch(check_env.pins(), keep_torch=True) == []
    assert check_env.check_torch(check_env.pins())  # not the pin
    versions['torch'] = '2.14.1'
    assert 'compiles against torch>=2.4,<2.14' in check_env.check_torch(check_env.pins(), True)[0]
    versions.update(torch='2.9.1', torchvision=None)
    assert 'torchvision is not' in check_env.check_torch(check_env.pins(), True)[0]


@pytest.mark.integration
def test_check_env_gpu_reports_what_torch_sees():
    out = subprocess.run([sys.executable, str(REPO / 'tools' / 'check_env.py'), '--gpu'],
                         capture_output=True, text=True)
    import torch
    assert f'torch {torch.__version__}' in out.stdout
    if torch.cuda.is_available():
        assert out.returncode == 0 and 'GPU 0:' in out.stdout
    else:
        assert out.returncode == 1 and 'no GPU visible to torch' in out.stderr
