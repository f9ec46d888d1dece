"""One engine thread per process that gathers concurrent assessments into one engine call.

A one-row evaluation costs nearly as much as a hundred-row one (the query plan, not the data,
dominates), so under concurrent load the clinic assesses every request waiting at that moment
in one `assess_many` call. Nothing waits for a batch to fill: a lone request runs at once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from sarcokit.api import assess_many
from sarcokit.definitions import DefinitionKey, DefinitionRef, definition_key
from sarcokit.i18n import Lang
from sarcokit.result import Result

MAX_BATCH = 256


@dataclass
class _Job:
    record: Mapping[str, Any]
    definitions: tuple[DefinitionRef, ...]
    lang: Lang
    future: Future[Result] = field(default_factory=Future)


class AssessmentQueue:
    """Assessments submitted from any thread, answered by one engine thread in batches."""

    def __init__(self, max_batch: int = MAX_BATCH) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def submit(
        self, record: Mapping[str, Any], definitions: Sequence[DefinitionRef], lang: Lang
    ) -> Future[Result]:
        """Queue one record; the future holds its Result (or the error the engine raised)."""
        self._start()
        job = _Job(record, tuple(definitions), lang)
        self._jobs.put(job)
        return job.future

    def assess(
        self, record: Mapping[str, Any], definitions: Sequence[DefinitionRef], lang: Lang
    ) -> Result:
        """Assess one record, blocking until its batch is done."""
        return self.submit(record, definitions, lang).result()

    def _start(self) -> None:
        # Started on first use, so that each server worker process gets its own thread.
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._run, name="sarcokit-engine", daemon=True
                )
                self._worker.start()

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            # Grouped by exact versions: two versions of one local definition are two calls.
            # Reasons are data rendered at the edge, so readers of any language share a call.
            groups: dict[tuple[DefinitionKey, ...], list[_Job]] = {}
            for job in batch:
                try:
                    keys = tuple(definition_key(d) for d in job.definitions)
                except KeyError as error:  # an unknown id: the caller re-raises it
                    job.future.set_exception(error)
                    continue
                groups.setdefault(keys, []).append(job)
            for jobs in groups.values():
                self._answer(jobs, jobs[0].definitions)

    @staticmethod
    def _answer(jobs: list[_Job], definitions: tuple[DefinitionRef, ...]) -> None:
        try:
            results = assess_many([j.record for j in jobs], definitions=definitions)
        except Exception as error:  # handed to every waiting caller, which re-raises it
            for job in jobs:
                job.future.set_exception(error)
            return
        for job, result in zip(jobs, results, strict=True):
            job.future.set_result(result.in_language(job.lang))


engine_queue = AssessmentQueue()
