"""The suite's own rules: every test that starts other processes carries the ``integration``
marker (so ``pytest -m 'not integration'`` is a quick in-process run), and no test file sits
outside the folders that mirror the package."""
from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
# What starts another process: the subprocess module, the interpreter's path, and the helpers
# of runtime_helpers.py that spawn DDP ranks or a process killed mid-save.
SPAWNERS = frozenset({'subprocess', 'executable', 'run_on_ranks', 'run_killed_during_save'})
# Tools that a test runs in-process but that start processes themselves.
SPAWNING_SCRIPTS = ('tools/gpu_check.py',)
FOLDERS = frozenset({'blv', 'data', 'evaluation', 'experiments', 'models', 'runtime', 'tools',
                     'uda'})


def _names(node: ast.AST) -> set[str]:
    found = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr)
        elif isinstance(sub, ast.alias):
            found.add(sub.name.split('.')[0])
        elif isinstance(sub, ast.Constant) and sub.value in SPAWNING_SCRIPTS:
            found.add('subprocess')
    return found


def _is_integration_mark(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == 'integration'


def _module_marked(tree: ast.Module) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == 'pytestmark' for t in stmt.targets):
            return any(_is_integration_mark(n) for n in ast.walk(stmt.value))
    return False


def spawning_tests_without_the_marker(path: Path) -> list[str]:
    """Test functions of ``path`` that start processes, themselves or through a function of
    their module, and lack ``@pytest.mark.integration`` (or a module-level ``pytestmark``)."""
    tree = ast.parse(path.read_text())
    if _module_marked(tree):
        return []
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    spawning = {name for name, fn in functions.items() if _names(fn) & SPAWNERS}
    for _ in range(3):  # helpers calling helpers
        spawning |= {name for name, fn in functions.items() if _names(fn) & spawning}
    return [f'{path.relative_to(TESTS)}::{name}' for name, fn in functions.items()
            if name.startswith('test_') and name in spawning
            and not any(_is_integration_mark(n) for d in fn.decorator_list
                        for n in ast.walk(d))]


def test_tests_that_start_processes_are_marked_integration():
    unmarked = [t for path in sorted(TESTS.rglob('test_*.py'))
                for t in spawning_tests_without_the_marker(path)]
    assert unmarked == [], 'mark these @pytest.mark.integration'


def test_the_checker_sees_a_spawning_test(tmp_path):
    sample = tmp_path / 'test_sample.py'
    sample.write_text('import pytest\n\n\ndef _launch():\n    import subprocess\n'
                      '    subprocess.run(["true"])\n\n\ndef test_a():\n    _launch()\n\n\n'
                      '@pytest.mark.integration\ndef test_b():\n    _launch()\n\n\n'
                      'def test_c():\n    assert 1\n')
    global TESTS
    saved, TESTS = TESTS, tmp_path
    try:
        assert spawning_tests_without_the_marker(sample) == ['test_sample.py::test_a']
    finally:
        TESTS = saved


def test_test_files_live_in_the_package_folders():
    stray = [p.name for p in TESTS.glob('test_*.py') if p.name != Path(__file__).name]
    assert stray == []
    assert {p.parent.name for p in TESTS.rglob('test_*.py') if p.parent != TESTS} == FOLDERS
