"""Skip/resume logic of a sweep (with a fake trainer), launch commands and the SLURM script."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mmseg_uda.experiments.sweep import (
    FINAL_METRICS,
    TRAIN_SCRIPT,
    Job,
    SlurmOptions,
    Step,
    next_step,
    run_sweep,
    sbatch_script,
    train_command,
)


def _arg(cmd: list[str], flag: str) -> str | None:
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


class FakeTrainer:
    """Stands in for tools/train.py: records each command; a run either finishes (writes
    final_metrics.json), or is killed after writing a checkpoint, as the plan says."""

    def __init__(self, killed: set[str] = frozenset()):
        self.killed = set(killed)
        self.calls: list[list[str]] = []

    def __call__(self, cmd: list[str]) -> int:
        self.calls.append(cmd)
        work_dir = Path(_arg(cmd, '--work-dir'))
        work_dir.mkdir(parents=True, exist_ok=True)
        if work_dir.name in self.killed:
            start = _arg(cmd, '--resume-from')
            done = int(Path(start).stem.split('_')[1]) if start else 0
            (work_dir / f'iter_{done + 4000}.pth').write_bytes(b'ckpt')
            return -9
        (work_dir / FINAL_METRICS).write_text('{}')
        return 0

    def work_dirs(self) -> list[str]:
        return [Path(_arg(c, '--work-dir')).name for c in self.calls]


def _jobs(tmp_path: Path, names: list[str]) -> list[Job]:
    return [Job(n, tmp_path / 'configs' / f'{n}.json', tmp_path / 'work' / n) for n in names]


def test_next_step(tmp_path):
    assert next_step(tmp_path).action == 'start'
    for name in ('iter_400.pth', 'iter_4000.pth', 'iter_12000.pth.tmp', 'latest.pth',
                 'pretrained_mit_b5.pth', 'iter_x.pth'):
        (tmp_path / name).write_bytes(b'')
    # Numeric, not lexicographic; the name is for the log, training resumes with "auto".
    assert next_step(tmp_path) == Step('resume', tmp_path / 'iter_4000.pth')
    (tmp_path / FINAL_METRICS).write_text('{}')
    assert next_step(tmp_path).action == 'skip'  # finished wins over leftover checkpoints


def test_rerun_finishes_an_interrupted_sweep(tmp_path):
    jobs = _jobs(tmp_path, ['done', 'half', 'new', 'crash'])
    (jobs[0].work_dir).mkdir(parents=True)
    (jobs[0].work_dir / FINAL_METRICS).write_text('{}')
    jobs[1].work_dir.mkdir(parents=True)
    (jobs[1].work_dir / 'iter_4000.pth').write_bytes(b'')
    logs: list[str] = []

    trainer = FakeTrainer(killed={'crash'})
    first = run_sweep(jobs, execute=trainer, log=logs.append)
    assert trainer.work_dirs() == ['half', 'new', 'crash']
    half, new, crash = trainer.calls
    assert _arg(half, '--resume-from') == 'auto'  # the newest loadable checkpoint
    assert '--resume-from' not in new and '--resume-from' not in crash
    assert (first.done, first.skipped, first.failed) == (['half', 'new'], ['done'], ['crash'])
    assert any('FAILED (exit status -9)' in line for line in logs)

    # The same command again: only the crashed run trains, from the checkpoint it left.
    trainer = FakeTrainer()
    second = run_sweep(jobs, execute=trainer, log=logs.append)
    assert trainer.work_dirs() == ['crash']
    assert _arg(trainer.calls[0], '--resume-from') == 'auto'
    assert second.ok and second.skipped == ['done', 'half', 'new']

    assert run_sweep(jobs, execute=FakeTrainer(), log=logs.append).done == []


def test_fresh_sweep_neither_skips_nor_resumes(tmp_path):
    [job] = _jobs(tmp_path, ['x'])
    job.work_dir.mkdir(parents=True)
    (job.work_dir / FINAL_METRICS).write_text('{}')
    (job.work_dir / 'iter_2.pth').write_bytes(b'')
    trainer = FakeTrainer()
    run_sweep([job], execute=trainer, fresh=True, log=lambda _: None)
    assert len(trainer.calls) == 1 and '--resume-from' not in trainer.calls[0]


def test_train_commands(tmp_path):
    cfg, wd = tmp_path / 'c.json', tmp_path / 'wd'
    local = train_command(cfg, wd, python='py')
    assert local == ['py', str(TRAIN_SCRIPT), str(cfg), '--work-dir', str(wd)]
    ddp = train_command(cfg, wd, launcher='torchrun', gpus=4, resume=True,
                        cfg_options=['data.samples_per_gpu=1'], python='py')
    assert ddp[:5] == ['py', '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=4']
    assert ddp[5:8] == [str(TRAIN_SCRIPT), str(cfg), '--work-dir']
    assert _arg(ddp, '--launcher') == 'pytorch'
    assert _arg(ddp, '--resume-from') == 'auto'
    assert _arg(ddp, '--cfg-options') == 'data.samples_per_gpu=1'
    with pytest.raises(ValueError, match='local or torchrun'):
        train_command(cfg, wd, launcher='slurm')


def _script(tmp_path: Path, jobs: list[Job], options: SlurmOptions, **kw) -> Path:
    path = tmp_path / 'sweep.sbatch'
    path.write_text(sbatch_script(jobs, job_name='blv-exp40', log_dir=tmp_path / 'logs',
                                  options=options, **kw))
    return path


@pytest.mark.integration
def test_sbatch_header(tmp_path):
    jobs = _jobs(tmp_path, [f'run{i}' for i in range(5)])
    options = SlurmOptions(gpus=2, cpus_per_gpu=6, time='24:00:00', partition='gpu',
                           max_parallel=3, extra=('--mem=64G',), setup=('module load cuda',))
    text = _script(tmp_path, jobs, options).read_text()
    lines = text.splitlines()
    assert lines[0] == '#!/bin/bash'
    for expected in ('#SBATCH --job-name=blv-exp40', '#SBATCH --array=0-4%3',
                     '#SBATCH --gres=gpu:2', '#SBATCH --cpus-per-task=12',
                     '#SBATCH --time=24:00:00', '#SBATCH --partition=gpu', '#SBATCH --mem=64G',
                     f'#SBATCH --output={tmp_path}/logs/%x_%A_%a.out', 'module load cuda'):
        assert expected in lines, expected
    # sbatch stops reading options at the first command line.
    first_command = next(i for i, line in enumerate(lines[1:], 1) if not line.startswith('#'))
    assert all(not line.startswith('#SBATCH') for line in lines[first_command:])
    task = lines[-1]
    assert 'run_experiments.py --config "$CONFIG" --launcher torchrun --gpus 2' in task
    assert subprocess.run(['bash', '-n', str(tmp_path / 'sweep.sbatch')]).returncode == 0


@pytest.mark.parametrize('task_id', [0, 2])
@pytest.mark.integration
def test_sbatch_task_trains_its_own_config(tmp_path, task_id):
    """Run the script as SLURM would, with `echo` standing in for python."""
    jobs = _jobs(tmp_path, ['a', 'b b', 'c'])  # a space in a path must survive quoting
    script = _script(tmp_path, jobs, SlurmOptions(), python='echo',
                     cfg_options=['data.workers_per_gpu=2'])
    env = dict(os.environ, SLURM_ARRAY_TASK_ID=str(task_id))
    out = subprocess.run(['bash', str(script)], env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()[-1]
    assert out == (f'run_experiments.py --config {jobs[task_id].config} --launcher local '
                   '--gpus 1 --cfg-options data.workers_per_gpu=2')


def test_sbatch_needs_jobs(tmp_path):
    with pytest.raises(ValueError, match='no runs'):
        sbatch_script([], job_name='x', log_dir=tmp_path)


def _finished(job: Job, max_iters: int, exp_meta: dict, crop=(512, 512)) -> None:
    """A finished run: its final_metrics.json and the copy of its config."""
    cfg = dict(exp_meta=exp_meta, runner=dict(max_iters=max_iters), data=dict(train=dict(
        source=dict(pipeline=[dict(type='RandomCrop', crop_size=list(crop))]))))
    job.work_dir.mkdir(parents=True)
    (job.work_dir / FINAL_METRICS).write_text(json.dumps(dict(exp_meta=exp_meta,
                                                              iter=max_iters)))
    (job.work_dir / job.config.name).write_text(json.dumps(cfg))
    job.config.parent.mkdir(parents=True, exist_ok=True)
    job.config.write_text(json.dumps(cfg))


def test_a_finished_run_with_other_settings_is_reported_not_skipped(tmp_path):
    """Probe 10: a sweep re-run with max_iters=80 silently skipped the 40-iteration runs."""
    meta = dict(exp=0, seed=0, blv=None)
    same, longer, cropped = _jobs(tmp_path, ['same', 'longer', 'cropped'])
    for job in (same, longer, cropped):
        _finished(job, 40, meta)
    longer.config.write_text(json.dumps(dict(exp_meta=meta, runner=dict(max_iters=80))))
    cfg = json.loads(cropped.config.read_text())
    cfg['data']['train']['source']['pipeline'][0]['crop_size'] = [256, 256]
    cfg['exp_meta'] = dict(meta, blv=dict(sigma=6.0))
    cropped.config.write_text(json.dumps(cfg))
    logs: list[str] = []
    trainer = FakeTrainer()
    result = run_sweep([same, longer, cropped], execute=trainer, log=logs.append)
    assert trainer.calls == [] and not result.ok
    assert result.skipped == ['same'] and result.changed == ['longer', 'cropped']
    assert any('longer: NOT rerun: finished with max_iters=40, now 80. Rerun with --force' in ln
               for ln in logs), logs
    assert any("crop_size=[512, 512], now [256, 256]; exp_meta.blv=None, now {'sigma': 6.0}"
               in ln for ln in logs), logs
    forced = run_sweep([longer], execute=FakeTrainer(), force=True, log=logs.append)
    assert forced.done == ['longer']
    kept = [p for p in longer.work_dir.parent.iterdir() if p.name.startswith('longer.replaced-')]
    assert len(kept) == 1 and (kept[0] / FINAL_METRICS).is_file()  # set aside, not deleted


def test_a_run_finished_before_the_loss_axis_is_not_a_changed_setting(tmp_path):
    """final_metrics.json written before exp_meta had 'loss': the loss follows from 'blv', so
    the same run is not "changed" (and not re-run) after the upgrade."""
    from mmseg_uda.experiments.sweep import changed_settings
    blv = dict(sigma=6.0, variation='gaussian', clip=1.0, balance=True, use_variation=True)
    old = dict(exp=40, tables=[3], dataset='gta2cs', method='daformer', backbone='r101',
               blv=blv, seed=0)
    new = dict(old, loss=dict(type='blv', **blv))
    (tmp_path / 'final_metrics.json').write_text(json.dumps(dict(exp_meta=old, iter=40000)))
    config = tmp_path / 'run.json'
    config.write_text(json.dumps(dict(exp_meta=new, runner=dict(max_iters=40000))))
    assert changed_settings(tmp_path, config) == []
    config.write_text(json.dumps(dict(exp_meta=dict(new, loss=dict(type='la', tau=1.0)),
                                      runner=dict(max_iters=40000))))
    assert changed_settings(tmp_path, config) == [
        "exp_meta.loss={'type': 'blv', 'sigma': 6.0, 'variation': 'gaussian', 'clip': 1.0, "
        "'balance': True, 'use_variation': True}, now {'type': 'la', 'tau': 1.0}"]


def test_parallel_sweep_keeps_n_runs_going_with_the_cores_shared_out(tmp_path):
    import threading

    from mmseg_uda.experiments.sweep import threads_per_run
    jobs = _jobs(tmp_path, ['a', 'b', 'c', 'd'])
    both_running = threading.Barrier(2, timeout=10)  # breaks unless two runs overlap
    trainer = FakeTrainer(killed={'c'})

    def overlapping(cmd):
        both_running.wait()
        return trainer(cmd)

    logs: list[str] = []
    result = run_sweep(jobs, execute=overlapping, log=logs.append, parallel=2)
    assert sorted(trainer.work_dirs()) == ['a', 'b', 'c', 'd']
    assert (result.done, result.failed) == (['a', 'b', 'd'], ['c'])  # in the plan's order
    assert all(_arg(cmd, '--threads') == str(threads_per_run(2)) for cmd in trainer.calls)
    assert any(line.endswith(f'log in {jobs[2].work_dir / "console.log"}') for line in logs)
    assert (threads_per_run(2, cpus=2), threads_per_run(3, cpus=2),
            threads_per_run(2, cpus=16)) == (1, 1, 8)
    with pytest.raises(ValueError, match='the torchrun launcher has its own parallelism'):
        run_sweep(jobs, launcher='torchrun', parallel=2, execute=trainer)


@pytest.mark.integration
def test_a_parallel_run_writes_its_console_output_into_its_work_dir(tmp_path):
    import sys

    from mmseg_uda.experiments.sweep import run_subprocess_to_log
    work = tmp_path / 'run'
    code = run_subprocess_to_log([sys.executable, '-c', 'print("iteration 1")',
                                  '--work-dir', str(work)])
    assert code == 0 and (work / 'console.log').read_text() == 'iteration 1\n'


def test_parallel_refuses_gpu_runs_before_anything_starts(tmp_path, tiny_data):
    from experiments_helpers import TINY_SCALE, load_script
    with pytest.raises(SystemExit, match=r'--parallel 2 shares the CPU cores out between runs; '
                                         r'1 run\(s\) train on cuda .*--launcher torchrun'):
        load_script('run_experiments.py').main(
            ['--exp', '40', '--seeds', '0', '--filter', r'gta2cs.*dlv2red.*_blv6_s0$',
             '--data-root', tiny_data, '--data-scale', str(TINY_SCALE), '--parallel', '2',
             '--work-root', str(tmp_path / 'work'), '--config-dir', str(tmp_path / 'cfg')])
    assert not (tmp_path / 'work').exists()


# --- a warm start: trained first, alone; the runs that start from it wait for it -----------

def _exp0_main(tmp_path, tiny_data, monkeypatch, warm_start_fails: bool = False,
               extra: tuple[str, ...] = ()) -> tuple[int, list]:
    """run_experiments.py --exp 0 (seed 0, its LA row) with run_sweep recorded, not run."""
    from experiments_helpers import TINY_SCALE, load_script

    from mmseg_uda.experiments.sweep import SweepResult
    script = load_script('run_experiments.py')
    sweeps = []

    def recorded(jobs, **kwargs):
        sweeps.append(([j.name for j in jobs], kwargs.get('parallel', 1)))
        failed = [j.name for j in jobs if warm_start_fails and j.name.startswith('warmstart')]
        return SweepResult(done=[j.name for j in jobs if j.name not in failed], failed=failed)

    monkeypatch.setattr(script, 'run_sweep', recorded)
    code = script.main(['--exp', '0', '--seeds', '0', '--filter', '_la03_s0$', '--data-root',
                        tiny_data, '--data-scale', str(TINY_SCALE), '--parallel', '2',
                        '--work-root', str(tmp_path / 'work'),
                        '--config-dir', str(tmp_path / 'cfg'), *extra])
    return code, sweeps


def test_the_warm_start_trains_alone_before_the_runs_that_start_from_it(tmp_path, tiny_data,
                                                                         monkeypatch):
    code, sweeps = _exp0_main(tmp_path, tiny_data, monkeypatch)
    warm = 'warmstart_gta2cs_128x128_source-only_tiny_daformer_mitb0_poly10warm_s0'
    row = 'gta2cs_128x128_dacs_rcs001-05_cpl_tiny_daformer_mitb0_poly10warm_la03_s0'
    assert code == 0 and sweeps == [([warm], 1), ([row], 2)]   # --filter does not drop it
    cfg = json.loads((tmp_path / 'cfg' / f'{row}.json').read_text())
    assert cfg['load_from'] == str(tmp_path / 'work' / warm / 'iter_2000.pth')


def test_a_failed_warm_start_starts_none_of_the_runs(tmp_path, tiny_data, monkeypatch, capsys):
    code, sweeps = _exp0_main(tmp_path, tiny_data, monkeypatch, warm_start_fails=True)
    assert code == 1 and len(sweeps) == 1
    assert 'the runs that start from it were not started' in capsys.readouterr().err


def test_the_startup_test_trains_every_run_from_scratch_in_one_sweep(tmp_path, tiny_data,
                                                                     monkeypatch):
    code, sweeps = _exp0_main(tmp_path, tiny_data, monkeypatch, extra=('--startup-test',))
    assert code == 0 and len(sweeps) == 1 and len(sweeps[0][0]) == 2
    for name in sweeps[0][0]:
        assert json.loads((tmp_path / 'cfg' / f'{name}.json').read_text())['load_from'] is None


def test_slurm_needs_the_warm_start_trained_beforehand(tmp_path, tiny_data, monkeypatch):
    with pytest.raises(SystemExit, match=r'start from its warm start, which is not trained yet; '
                                         r'train it first: python run_experiments.py --config '):
        _exp0_main(tmp_path, tiny_data, monkeypatch, extra=('--launcher', 'slurm'))


def test_a_lone_run_whose_warm_start_is_missing_stops_before_training(tmp_path, tiny_data,
                                                                      monkeypatch):
    from experiments_helpers import load_script
    _exp0_main(tmp_path, tiny_data, monkeypatch)
    config = next((tmp_path / 'cfg').glob('gta2cs_*_la03_s0.json'))
    with pytest.raises(SystemExit, match=r"iter_2000.pth, which does not exist. If it is its "
                                         r"experiment's warm start, train that first"):
        load_script('run_experiments.py').main(['--config', str(config)])
