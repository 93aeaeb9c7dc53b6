"""Where the heavy loops run: in this process, or as tasks on a Dask cluster (`compute.scheduler` in params.yaml).

`local` (the default) runs every task here, one after the other. Any other value is a Dask scheduler's address
(`tcp://host:8786`): the same task functions are sent to its workers, the large shared inputs scattered once,
and the results gathered in the order of the tasks, so that every caller combines them exactly as the local loop
does. A task is a top-level function of picklable arguments; the files it reads or writes must be on storage
that every worker sees (a shared volume, or the repository checked out at the same path on every machine).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

LOCAL = "local"


class Runner:
    """Maps a task function over items, here or on a Dask cluster."""

    def __init__(self, scheduler: str = LOCAL):
        self.scheduler = scheduler
        self._client = None

    @property
    def local(self) -> bool:
        return self.scheduler == LOCAL

    def client(self):
        if self._client is None:
            from distributed import Client  # imported only when a cluster is used

            self._client = Client(self.scheduler, set_as_default=False)
        return self._client

    def threads(self, local_threads: int) -> int:
        """Threads a task may use: the configured count here, the fewest threads of a worker on the cluster."""
        if self.local:
            return local_threads
        return max(1, min(self.client().nthreads().values()))

    def map(self, task: Callable, items: list, shared: dict[str, Any] | None = None,
            progress: tuple[str, str, int] | None = None, ticks: bool = False) -> list:
        """[task(item, **shared) for item in items], in item order. On a cluster the `shared` arrays (a feature
        matrix) are scattered to the workers once.

        `progress` (what, unit, steps per item) draws a bar of the whole map: here it advances after each item, or,
        with `ticks`, the task advances it itself through its `tick` argument (one step per fold); on a cluster it
        advances as their results arrive, in task order.
        """
        from creditscore.stage import progress_bar

        shared = shared or {}
        what, unit, steps = progress or ("", "", 1)
        with progress_bar(len(items) * steps, what, unit, enabled=progress is not None) as bar:
            if self.local:
                done = []
                for item in items:
                    done.append(task(item, **shared, **({"tick": bar.update} if ticks else {})))
                    if not ticks:
                        bar.update(steps)
                return done
            from functools import partial

            import numpy as np

            client = self.client()
            arrays = {k: client.scatter(v, broadcast=True) for k, v in shared.items() if isinstance(v, np.ndarray)}
            # the other arguments travel inside the function, so that Dask does not read their dicts as task graphs
            bound = partial(task, **{k: v for k, v in shared.items() if k not in arrays})
            futures = client.map(bound, items, **arrays, pure=False)
            done = []
            for future in futures:  # in task order (the tasks themselves run at once)
                done.append(future.result())
                bar.update(steps)
            return done

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def runner(params) -> Runner:
    """The runner of `params.yaml: compute.scheduler` (`params`: the typed `creditscore.params.Params`)."""
    return Runner(params.compute.scheduler)
