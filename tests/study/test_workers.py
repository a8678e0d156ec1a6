"""``[backend] workers = "auto"``: how many worker processes a study gets."""

from __future__ import annotations

import pytest

from nas_hpo import objectives
from nas_hpo.study import GPU_WORKER_GIB, auto_workers, load_spec, worker_count

GIB = 2**30


def test_auto_is_the_default_and_one_process_off_the_gpu(tmp_path):
    spec = load_spec(None, space="chain", objective="train",
                     storage=f"sqlite:///{tmp_path / 's.db'}")
    assert spec.workers == "auto"
    assert worker_count(spec, objectives.get("train")) == 1  # device cpu
    assert worker_count(spec, lambda config: 0.0) == 1  # a callable has no device
    assert auto_workers("cpu") == 1


def test_on_a_gpu_as_many_as_its_free_memory_holds_at_most_one_per_core():
    per = int(GPU_WORKER_GIB * GIB)
    assert auto_workers("cuda", free_bytes=10 * per + per // 2, cpu_cores=64) == 10
    assert auto_workers("cuda:1", free_bytes=140 * GIB, cpu_cores=16) == 16
    assert auto_workers("cuda", free_bytes=per - 1, cpu_cores=16) == 1  # still one
    assert auto_workers("cuda", free_bytes=3 * per, cpu_cores=2) == 2


def test_a_number_stays_and_the_in_memory_storage_and_the_simulated_clock_get_one():
    train = objectives.get("train")
    assert worker_count(load_spec(None, space="chain", objective="train", workers=3),
                        train) == 3
    memory = load_spec(None, space="chain", objective="train", storage=":memory:")
    assert memory.workers == "auto" and worker_count(memory, train) == 1
    simulated = load_spec(None, space="chain", objective="train", backend="simulated")
    assert simulated.workers == 1


@pytest.mark.parametrize("bad", [0, 1025, "many", -1])
def test_other_values_are_refused_with_what_is_allowed(bad):
    with pytest.raises(ValueError, match=r'workers: must be an integer in \[1, 1024\] or "auto"'):
        load_spec(None, space="chain", objective="train", workers=bad)
