"""GPU self-test for a new machine or cluster node (`make gpu-check`).

    python tools/gpu_check.py [--out work_dirs/gpu_check] [--cpu] [--data-root DIR]

Every step runs the code a user's run runs, on generated data, and the report says what each
measured; a failed step does not stop the others. Steps:

1. environment: torch, CUDA, the GPUs, what mmcv-full's ops were compiled for;
2. data: a tiny synthetic GTA/SYNTHIA/Cityscapes set in the real layouts, converted;
3. scatter: a real training batch (DataContainers) from the training loader to the device;
4. one DACS iteration of DAFormer-R101, DAFormer-MiT-B5 and HRDA-MiT-B5 at the paper's crops,
   through the real data loader, scatter and ``train_step``, in fp32 and bf16, with cross
   entropy and with BLV: seconds per iteration, peak memory, BLV/CE;
5. a 40-iteration tiny run through ``tools/train.py``, pre-empted after its checkpoint at
   iteration 20, resumed with ``--resume-from auto`` to 40, then ``tools/test.py`` on the final
   checkpoint, which must give the run's own mIoU;
6. ``tools/benchmark_blv.py`` on the device.

Where torch sees no GPU (or with ``--cpu``) the same steps run in a reduced CPU mode: tiny
models (ResNet-18 / MiT-B0-sized) and small crops. The default test suite runs that mode, so
the self-test cannot rot. Writes ``OUT/gpu_check.md`` and ``OUT/gpu_check.json``; exit status
1 when a step failed.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import os.path as osp
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path[:0] = [p for p in (REPO, osp.join(REPO, 'tools')) if p not in sys.path]

import torch  # noqa: E402
from benchmark_train import PeakMemory, alternating_rounds  # noqa: E402
from check_env import describe_mmcv, gpu_report  # noqa: E402
from mmcv import Config  # noqa: E402
from mmcv.runner import build_optimizer  # noqa: E402
from mmseg.datasets import build_dataset  # noqa: E402

import mmseg_uda  # noqa: E402,F401  (registers models, datasets, losses; applies compat)
from blv_patches import BLVLoss  # noqa: E402
from mmseg_uda.apis.train import wrap_model  # noqa: E402
from mmseg_uda.compat import configure_for_device  # noqa: E402
from mmseg_uda.core.hooks import FINAL_METRICS  # noqa: E402
from mmseg_uda.datasets import train_crop_size  # noqa: E402
from mmseg_uda.datasets.synthetic import SCALES, TINY_DATA_SCALE, generate  # noqa: E402
from mmseg_uda.experiments import (  # noqa: E402
    EXP0,
    EXP40,
    BLVSetting,
    Experiment,
    Run,
    RunSpec,
    build_config,
    run_name,
)
from mmseg_uda.fileio import write_json_atomic  # noqa: E402
from mmseg_uda.models.uda import build_train_model  # noqa: E402
from mmseg_uda.runtime import TrainStepper, build_resumable_dataloader  # noqa: E402
from mmseg_uda.runtime.device import configure_fp32_math  # noqa: E402

BLV = BLVSetting(6.0)


@dataclass(frozen=True)
class Mode:
    """What the self-test runs: the paper's models on a GPU, or tiny ones on the CPU."""
    name: str
    models: tuple[tuple[str, RunSpec], ...]
    pipeline_sizes: dict | None  # None: the data sets' real sizes and the paper's crops
    warmup: int
    timed: int
    tiny_run_sizes: dict
    blv_shapes: tuple[str, ...]


FULL = Mode('full', (('daformer_r101', RunSpec('gta2cs', 'daformer', 'r101', BLV)),
                     ('daformer_mitb5', RunSpec('gta2cs', 'daformer', 'mitb5', BLV)),
                     ('hrda_mitb5', RunSpec('gta2cs', 'hrda', 'mitb5', BLV))),
            None, warmup=1, timed=2,
            tiny_run_sizes=dict(source_scale=(256, 144), target_scale=(256, 128),
                                crop_size=(128, 128)),
            blv_shapes=('2x19x512x512', '2x19x1024x1024'))
REDUCED = Mode('reduced', (('daformer_r101 (as tiny R18)',
                            RunSpec('gta2cs', 'daformer', 'tiny_r18', BLV)),
                           ('daformer_mitb5 (as tiny MiT-B0)',
                            RunSpec('gta2cs', 'daformer', 'tiny_mitb0', BLV)),
                           ('hrda_mitb5 (as tiny MiT-B0)',
                            RunSpec('gta2cs', 'hrda', 'tiny_mitb0', BLV))),
               dict(source_scale=(128, 72), target_scale=(128, 64), crop_size=(64, 64)),
               warmup=1, timed=1,
               tiny_run_sizes=dict(source_scale=(128, 72), target_scale=(128, 64),
                                   crop_size=(64, 64)),
               blv_shapes=('2x19x64x64',))
TINY_RUN_ITERS, TINY_RUN_PREEMPT_AT = 40, 20
AMP_MODES = ('off', 'bf16')


@dataclass
class Step:
    name: str
    ok: bool = False
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class Report:
    def __init__(self, mode: Mode, device: str) -> None:
        self.mode, self.device = mode, device
        self.steps: list[Step] = []

    def run(self, name: str, fn: Callable[[Step], None]) -> Step:
        step = Step(name)
        print(f'[gpu-check] {name} ...', flush=True)
        start = time.perf_counter()
        try:
            fn(step)
            step.ok = True
        except Exception as error:  # noqa: BLE001  every step is reported, none stops the rest
            step.error = f'{type(error).__name__}: {error}'
            step.lines.append(traceback.format_exc(limit=6))
        step.seconds = time.perf_counter() - start
        status = 'ok' if step.ok else f'FAILED ({step.error})'
        print(f'[gpu-check] {name}: {status} in {step.seconds:.1f} s', flush=True)
        self.steps.append(step)
        return step

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def markdown(self) -> str:
        out = [f'# GPU self-test ({self.mode.name} mode, device {self.device})', '',
               f'{time.strftime("%Y-%m-%d %H:%M:%S")}; '
               f'{"all steps passed" if self.ok else "SOME STEPS FAILED"}', '']
        for s in self.steps:
            out += [f'## {s.name}: {"ok" if s.ok else "FAILED"} ({s.seconds:.1f} s)', '']
            if s.error:
                out += [f'**{s.error}**', '']
            body = [ln for ln in s.lines if not ln.startswith('Traceback')] if s.ok else s.lines
            if body:
                out += body + ['']
        return '\n'.join(out)

    def to_json(self) -> dict:
        return dict(mode=self.mode.name, device=self.device, ok=self.ok,
                    steps=[asdict(s) for s in self.steps])


# --- the steps --------------------------------------------------------------------------------

def check_environment(step: Step, device: str) -> None:
    lines, problems = gpu_report()
    step.lines += [f'- {ln}' for ln in lines]
    if device == 'cpu':
        step.lines.append(f'- {describe_mmcv()}')
        step.lines += [f'- reduced CPU mode: {p}' for p in problems]
    elif problems:
        raise RuntimeError('; '.join(problems))


def make_data(step: Step, root: str) -> None:
    from blv_patches.class_frequency import STATS_FILE
    from mmseg_uda.datasets.conversion import convert_cityscapes, convert_gta, convert_synthia
    if osp.isfile(osp.join(root, 'cityscapes', STATS_FILE)):
        step.lines.append(f'- using the converted data in {root}')
        return
    generate(root, seed=0, spec=SCALES['tiny'])
    convert_gta(osp.join(root, 'gta'))
    convert_synthia(osp.join(root, 'synthia'))
    convert_cityscapes(osp.join(root, 'cityscapes'))
    step.lines.append(f"- generated and converted the 'tiny' synthetic set in {root}")


def run_config(exp: Experiment, spec: RunSpec, data_root: str, sizes: dict | None,
               work_dir: str, **extra: Any) -> Config:
    """The generated config of ``spec`` as the sweep writes it, on the generated data."""
    run = Run(exp.id, spec, 0, (), run_name(exp, spec, 0))
    cfg = build_config(exp, run, data_root=data_root, data_scale=TINY_DATA_SCALE,
                       extra=dict(work_dir=work_dir, **extra))
    if sizes is not None:
        from mmseg_uda.datasets import scale_pipelines
        scale_pipelines(cfg, **sizes)
    cfg['model']['pretrained'] = None  # random weights: no ImageNet files needed
    return Config(cfg)


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


class TrainingSetup:
    """A model wrapped for ``device``, its optimizer and its real training stream."""

    def __init__(self, cfg: Config, device: str, workers: int) -> None:
        configure_for_device(cfg, device)
        dataset = build_dataset(cfg.data.train)
        self.loader = build_resumable_dataloader(dataset, samples_per_gpu=2,
                                                 workers_per_gpu=workers, seed=0,
                                                 persistent_workers=False)
        self.batches = iter(self.loader)
        torch.manual_seed(0)
        self.model = build_train_model(cfg)
        self.model.init_weights()
        self.wrapped = wrap_model(self.model, cfg, distributed=False)
        self.optimizer = build_optimizer(self.model.get_model(), cfg.optimizer)
        self.blv_losses = [m for m in self.model.modules() if isinstance(m, BLVLoss)]
        # One stepper per AMP mode (an fp16 loss scale would persist across rounds).
        self.steppers = {amp: TrainStepper(enabled=amp != 'off', dtype='bf16')
                         for amp in AMP_MODES}


def check_scatter(step: Step, mode: Mode, root: str, out: str, device: str) -> None:
    label, spec = mode.models[0]
    cfg = run_config(EXP40, spec, root, mode.pipeline_sizes, osp.join(out, 'scatter'))
    setup = TrainingSetup(cfg, device, workers=0)
    batch = next(setup.batches)
    target = setup.wrapped.device_ids or [-1]
    inputs, kwargs = setup.wrapped.scatter((), batch, target)
    tensors = {k: v for k, v in kwargs[0].items() if isinstance(v, torch.Tensor)}
    want = torch.device('cuda', target[0]) if target != [-1] else torch.device('cpu')
    wrong = {k: str(v.device) for k, v in tensors.items() if v.device != want}
    if wrong:
        raise RuntimeError(f'tensors not on {want} after the scatter: {wrong}')
    step.lines += [f'- {label} batch scattered to {want}: ' + ', '.join(
        f'{k} {tuple(v.shape)} {str(v.dtype).replace("torch.", "")}'
        for k, v in sorted(tensors.items()))]


def check_training(step: Step, mode: Mode, root: str, out: str, device: str) -> None:
    step.lines += ['| model | crop | AMP | s/iter CE | s/iter BLV | BLV/CE | peak GiB CE | '
                   'peak GiB BLV |', '|---|---|---|---|---|---|---|---|']
    amp_modes = AMP_MODES
    failures = []
    for label, spec in mode.models:
        try:
            cfg = run_config(EXP40, spec, root, mode.pipeline_sizes, osp.join(out, label))
            crop = train_crop_size(cfg)
            setup = TrainingSetup(cfg, device, workers=0 if device == 'cpu' else 2)
        except Exception as error:  # noqa: BLE001
            failures.append(f'{label}: {type(error).__name__}: {error}')
            continue
        memory = PeakMemory(torch.device(device))

        def one_iteration(amp: str, blv: bool, setup=setup, memory=memory) -> float:
            setup.model.stepper = setup.steppers[amp]
            for loss in setup.blv_losses:
                loss.train(blv)  # eval mode: cross entropy on the raw logits
            batch = next(setup.batches)
            memory.reset()
            _sync(device)
            start = time.perf_counter()
            setup.wrapped.train_step(batch, setup.optimizer)
            _sync(device)
            return time.perf_counter() - start

        for amp in amp_modes:
            try:
                ce, blv = alternating_rounds(one_iteration, [amp], mode.warmup, mode.timed,
                                             memory)
            except Exception as error:  # noqa: BLE001
                failures.append(f'{label} AMP {amp}: {type(error).__name__}: {error}')
                step.lines.append(f'| {label} | {crop[0]}² | {amp} | failed | | | | |')
                continue
            row = dict(model=label, crop=list(crop), amp=amp, s_per_iter_ce=ce['seconds'],
                       s_per_iter_blv=blv['seconds'],
                       blv_over_ce=blv['seconds'] / ce['seconds'],
                       peak_gib_ce=ce['peak_gib'], peak_gib_blv=blv['peak_gib'])
            step.data.setdefault('rows', []).append(row)
            step.lines.append(f'| {label} | {crop[0]}² | {amp} | {ce["seconds"]:.3f} | '
                              f'{blv["seconds"]:.3f} | {row["blv_over_ce"]:.3f} | '
                              f'{ce["peak_gib"]:.2f} | {blv["peak_gib"]:.2f} |')
        del setup
        if device == 'cuda':
            torch.cuda.empty_cache()
    step.lines += ['', f'batch 2, random weights, {mode.warmup} warm-up + {mode.timed} timed '
                       'round(s) per variant (median); peak memory: CUDA allocator, or the '
                       'process RSS on the CPU']
    if failures:
        raise RuntimeError('; '.join(failures))


def _tool(args: list[str], log: str) -> subprocess.CompletedProcess:
    with open(log, 'a') as f:
        return subprocess.run([sys.executable, *args], cwd=REPO, stdout=f, stderr=subprocess.STDOUT)


def check_tiny_run(step: Step, mode: Mode, root: str, out: str, device: str) -> None:
    work = osp.join(out, 'tiny_run')
    os.makedirs(work, exist_ok=True)
    spec = RunSpec('gta2cs', 'dacs', 'tiny_mitb0', BLV)
    exp = Experiment(0, EXP0.title, (), overrides=EXP0.overrides,
                     method_overrides=EXP0.method_overrides)
    common = dict(runner=dict(type='IterBasedRunner', max_iters=TINY_RUN_ITERS),
                  checkpoint_config=dict(interval=TINY_RUN_PREEMPT_AT, max_keep_ckpts=-1),
                  evaluation=dict(interval=TINY_RUN_ITERS), log_config=dict(interval=10),
                  lr_config=dict(warmup_iters=4))
    cfg = run_config(exp, spec, root, mode.tiny_run_sizes, work, **common)
    preempted = Config(cfg._cfg_dict.to_dict())
    preempted.custom_hooks = [dict(type='ExitAfterIterHook', iteration=TINY_RUN_PREEMPT_AT,
                                   priority='LOWEST')]
    paths = {}
    for name, c in (('run', cfg), ('preempted', preempted)):
        paths[name] = osp.join(work, f'{name}.json')
        write_json_atomic(c._cfg_dict.to_dict(), paths[name])
    log = osp.join(work, 'tools.log')
    train = ['tools/train.py', '--work-dir', work, '--device', device, '--resume-from', 'auto']
    first = _tool([train[0], paths['preempted'], *train[1:]], log)
    from mmseg_uda.runtime.hooks import PREEMPTED_EXIT_CODE
    if first.returncode != PREEMPTED_EXIT_CODE or not osp.isfile(osp.join(work, 'iter_20.pth')):
        raise RuntimeError(f'the pre-empted run exited with {first.returncode} (want '
                           f'{PREEMPTED_EXIT_CODE}) and left {sorted(os.listdir(work))}; see {log}')
    step.lines.append(f'- pre-empted after iteration {TINY_RUN_PREEMPT_AT} (exit '
                      f'{first.returncode}), checkpoint iter_{TINY_RUN_PREEMPT_AT}.pth written')
    second = _tool([train[0], paths['run'], *train[1:]], log)
    metrics_path = osp.join(work, FINAL_METRICS)
    if second.returncode != 0 or not osp.isfile(metrics_path):
        raise RuntimeError(f'the resumed run exited with {second.returncode}; see {log}')
    with open(metrics_path) as f:
        final = json.load(f)
    if final['iter'] != TINY_RUN_ITERS:
        raise RuntimeError(f'final_metrics.json says iteration {final["iter"]}, want 40')
    step.lines.append(f'- resumed with --resume-from auto to iteration {final["iter"]}: '
                      f'mIoU {final["miou"]:.2f}')
    tested = osp.join(work, 'test.json')
    third = _tool(['tools/test.py', paths['run'], osp.join(work, f'iter_{TINY_RUN_ITERS}.pth'),
                   '--eval', 'mIoU', '--device', device, '--out', tested], log)
    if third.returncode != 0:
        raise RuntimeError(f'tools/test.py exited with {third.returncode}; see {log}')
    with open(tested) as f:
        test_miou = json.load(f)['miou']
    step.data.update(train_miou=final['miou'], test_miou=test_miou)
    step.lines.append(f'- tools/test.py on iter_{TINY_RUN_ITERS}.pth: mIoU {test_miou:.2f}')
    if abs(test_miou - final['miou']) > 1e-3:
        raise RuntimeError(f'tools/test.py gives mIoU {test_miou} but the run recorded '
                           f'{final["miou"]}')


def check_blv_benchmark(step: Step, mode: Mode, out: str, device: str) -> None:
    log = osp.join(out, 'benchmark_blv.log')
    args = ['tools/benchmark_blv.py', '--devices', device, '--shapes', *mode.blv_shapes,
            '--repeats', '5' if device == 'cuda' else '1']
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    with open(log, 'w') as f:
        f.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f'benchmark_blv.py exited with {proc.returncode}; see {log}')
    step.lines += [f'`python {" ".join(args)}`', '']
    step.lines += [ln for ln in proc.stdout.splitlines() if ln.startswith('|')]


# --- main -------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='work_dirs/gpu_check', help='report and work folder')
    ap.add_argument('--cpu', action='store_true',
                    help='the reduced CPU mode even where a GPU is visible')
    ap.add_argument('--data-root', help='a converted synthetic data set to use (default: '
                                        "generate the 'tiny' set under OUT/data)")
    args = ap.parse_args(argv)
    device = 'cuda' if torch.cuda.is_available() and not args.cpu else 'cpu'
    mode = FULL if device == 'cuda' else REDUCED
    if device == 'cpu':
        print('[gpu-check] no GPU visible to torch (or --cpu): the reduced CPU mode, which '
              'measures nothing about a GPU', flush=True)
    out = osp.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    root = osp.abspath(args.data_root) if args.data_root else osp.join(out, 'data')
    configure_fp32_math(True)
    logging.getLogger('mmcv').setLevel(logging.WARNING)  # init_weights' per-tensor report
    report = Report(mode, device)
    start = time.perf_counter()
    report.run('environment', lambda s: check_environment(s, device))
    data = report.run('data', lambda s: make_data(s, root))
    if data.ok:
        report.run('scatter of a training batch',
                   lambda s: check_scatter(s, mode, root, out, device))
        report.run('one DACS iteration per model',
                   lambda s: check_training(s, mode, root, out, device))
        report.run('40-iteration run: pre-empt, resume, test',
                   lambda s: check_tiny_run(s, mode, root, out, device))
    report.run('benchmark_blv', lambda s: check_blv_benchmark(s, mode, out, device))
    total = time.perf_counter() - start
    text = report.markdown() + f'\nTotal: {total:.0f} s\n'
    with open(osp.join(out, 'gpu_check.md'), 'w') as f:
        f.write(text)
    write_json_atomic(dict(report.to_json(), seconds=total), osp.join(out, 'gpu_check.json'))
    print(text)
    print(f'[gpu-check] wrote {osp.join(out, "gpu_check.md")} and gpu_check.json')
    return 0 if report.ok else 1


if __name__ == '__main__':
    sys.exit(main())
