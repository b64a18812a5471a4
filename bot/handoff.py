"""The hand-off threshold a server applies, and the operators' choice of it.

:class:`ServedHandoff` is what the engine reads for every message (its
``HandoffPolicySource``) and what the dashboard shows and moves (its ``HandoffTargets``).
What it serves comes from the settings' engine section and the calibration saved in
``indexes/calibration.json`` for the embedder the server searches with, exactly as
``supportbot calibrate`` and ``train`` print it (:func:`bot.components.apply_calibration`).
The server reads that file again at every index poll, so a choice made on one replica, a
``calibrate`` run or another embedder going live reaches every replica sharing
``indexes/`` within a poll; the replica where an operator chose serves it at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.components import CALIBRATED_SETTINGS, apply_calibration
from bot.core.config import EngineConfig, HandoffPolicy
from bot.ops.handoff import HandoffChange, HandoffRefused, HandoffView, TradeOffRow
from retrieval.calibration import (
    CALIBRATION_FILE,
    NoTradeOffs,
    UnknownTarget,
    calibration_of,
    calibration_path,
    choose_target,
    load_calibration,
)

_SAME = 1e-9


class ServedHandoff:
    """The hand-off policy served, from the settings (``config``) and the calibration saved
    in ``home``. Before :meth:`follow` names an embedder (a server given its own retriever)
    it serves the settings as they are. The methods other than :meth:`current` read or
    write the calibration file: call them in a worker thread."""

    def __init__(self, config: EngineConfig, home: Path) -> None:
        self._config = config
        self._home = home
        self._lock = threading.Lock()
        self._embedder_id: str | None = None
        self._stamp: object = None
        self._payload: Mapping[str, Any] | None = None
        self._policy = HandoffPolicy.of(config)

    def current(self) -> HandoffPolicy:
        """The policy the next message is judged by (no I/O: read for every message)."""
        return self._policy

    def follow(self, embedder_id: str) -> bool:
        """Serve what the file saved for ``embedder_id``, the embedder now searched with,
        if the file or the embedder changed since the last call; True when the threshold
        served changed."""
        with self._lock:
            return self._refresh(embedder_id)

    def _refresh(self, embedder_id: str | None) -> bool:
        stamp = (embedder_id, *self._file_stamps())
        if stamp == self._stamp:
            return False
        before = self._policy.threshold
        self._load(embedder_id)
        self._stamp = stamp
        return self._policy.threshold != before

    def _load(self, embedder_id: str | None) -> None:
        payload = load_calibration(self._home)
        served = (
            self._config  # no embedder to fit for: the settings as they are
            if embedder_id is None
            else apply_calibration(self._config, payload, embedder_id, self._home)
        )
        self._embedder_id, self._payload = embedder_id, payload
        self._policy = HandoffPolicy.of(served)

    def _file_stamps(self) -> tuple[tuple[int, int, int] | None, ...]:
        stamps: list[tuple[int, int, int] | None] = []
        for path in (calibration_path(self._home), self._home / CALIBRATION_FILE):
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                stamps.append(None)
            else:
                stamps.append((stat.st_ino, stat.st_mtime_ns, stat.st_size))
        return tuple(stamps)

    # -- the dashboard -----------------------------------------------------------------------
    def choose(self, target: float, chosen_by: str) -> HandoffChange:
        """Serve the saved trade-off row of ``target``: written to the calibration file
        (a restart and the other replicas serve it too) and served here at once.

        Raises HandoffRefused when the settings fix the threshold, when no trade-off table
        was saved for the embedder served, or when it has no row for ``target``."""
        with self._lock:
            self._refresh(self._embedder_id)  # what the page showed may be out of date
            refusal = self._refusal()
            if refusal is not None or self._embedder_id is None:
                raise HandoffRefused(409, refusal or "No calibration applies to this server.")
            before = self._policy.threshold
            previous_target = self._served_target(self._entry())
            try:
                entry = choose_target(self._home, self._embedder_id, target, chosen_by=chosen_by)
            except UnknownTarget:
                raise HandoffRefused(
                    422, f"The trade-off table has no target {target:g}: choose one of its rows."
                ) from None
            except NoTradeOffs as exc:  # the file changed since the page was shown
                raise HandoffRefused(409, f"{exc}.") from None
            self._refresh(self._embedder_id)
            return HandoffChange(
                target=float(entry["target_handoff_recall"]),
                threshold=self._policy.threshold,
                previous_target=previous_target,
                previous_threshold=before,
            )

    def view(self) -> HandoffView:
        """What the metrics page's hand-off panel shows."""
        with self._lock:
            self._refresh(self._embedder_id)
            entry = self._entry()
            threshold = self._policy.threshold
            served_target = self._served_target(entry)
            shown = entry or self._payload or {}
            rows = tuple(
                TradeOffRow(
                    target=row["target_handoff_recall"],
                    threshold=row["threshold"],
                    handoff_recall=row["handoff_recall"],
                    # Absent from tables saved before the generic questions were asked.
                    generic_handoff_recall=row.get("generic_handoff_recall"),
                    answered_rate=row["answered_rate"],
                    answered_accuracy=row["answered_accuracy"],
                    wrong_answer_rate=row["wrong_answer_rate"],
                    served=served_target is not None
                    and abs(row["target_handoff_recall"] - served_target) < _SAME,
                )
                for row in (shown.get("trade_offs") or [])
                if isinstance(shown.get("target_handoff_recall"), int | float)
            )
            chosen = (self._payload or {}).get("chosen_target") or {}
            chosen_here = served_target is not None and (
                abs(chosen.get("target_handoff_recall", -1.0) - served_target) < _SAME
            )
            return HandoffView(
                threshold=threshold,
                source=self._source(entry, served_target),
                rows=rows,
                table_note=self._table_note(entry, shown),
                disabled=self._refusal(),
                chosen_by=chosen.get("chosen_by") if chosen_here else None,
                chosen_at=chosen.get("chosen_at") if chosen_here else None,
            )

    def _entry(self) -> dict[str, Any] | None:
        """The saved calibration fitted for the embedder served, if any."""
        if self._embedder_id is None:
            return None
        return calibration_of(self._payload, self._embedder_id)

    def _served_target(self, entry: Mapping[str, Any] | None) -> float | None:
        """The target of the table row served, or None when the threshold served is not
        one of the table's (the settings set it, or no calibration applies)."""
        if entry is None or self._overridden():
            return None
        target = entry.get("target_handoff_recall")
        rows = entry.get("trade_offs") or []
        if not isinstance(target, int | float):
            return None
        row = next((r for r in rows if abs(r["target_handoff_recall"] - target) < _SAME), None)
        if row is None or abs(row["threshold"] - self._policy.threshold) > _SAME:
            return None
        return float(target)

    def _overridden(self) -> list[str]:
        """The confidence settings set explicitly, which the calibration does not change."""
        # Set explicitly, they make the saved table's figures not what is served: the
        # threshold itself, or the weights its thresholds were computed with.
        fields = self._config.model_fields_set
        return [f for f in CALIBRATED_SETTINGS if f in fields]

    def _source(self, entry: Mapping[str, Any] | None, served_target: float | None) -> str:
        """Where the threshold served comes from, in words."""
        if "confidence_threshold" in self._config.model_fields_set:
            return "engine.confidence_threshold in the settings, which overrides the calibration"
        if self._embedder_id is None:
            return "the settings: this server searches with a retriever no calibration names"
        if entry is None:
            fitted_for = (self._payload or {}).get("embedder_id")
            why = (
                f"the calibration saved was fitted for embedder {fitted_for}"
                if fitted_for
                else "no calibration was saved"
            )
            return (
                f"the settings' default: {why}, not for embedder {self._embedder_id},"
                " which this server searches with"
            )
        fitted_on = entry.get("fitted_on", "")
        how = "labelled questions (supportbot calibrate)" if fitted_on == "files" else fitted_on
        target = entry.get("target_handoff_recall")
        aim = f" for hand-off target {target:.2f}" if isinstance(target, int | float) else ""
        row = " (the highlighted row)" if served_target is not None else ""
        return f"the calibration fitted on {how}{aim}{row}, for embedder {self._embedder_id}"

    def _table_note(self, entry: Mapping[str, Any] | None, shown: Mapping[str, Any]) -> str:
        if entry is not None or not shown:
            return "Each row: another hand-off target, with the same signals and questions."
        if self._embedder_id is None:
            return "This server searches with a retriever no calibration names: none is served."
        return (
            f"Fitted for embedder {shown.get('embedder_id')}, not the one served: scores of"
            " another embedder lie on another scale, so none of these thresholds is served."
        )

    def _refusal(self) -> str | None:
        """Why no row can be chosen here; None when one can."""
        overridden = self._overridden()
        if overridden:
            names = ", ".join(f"engine.{name}" for name in overridden)
            return (
                f"{names} {'is' if len(overridden) == 1 else 'are'} set in the settings, which"
                " the calibration does not override. Remove "
                f"{'it' if len(overridden) == 1 else 'them'} from the settings and restart"
                " the server to choose the target here."
            )
        if self._embedder_id is None:
            return "This server searches with a retriever that no calibration names."
        entry = self._entry()
        if entry is None:
            return (
                f"No calibration was fitted for embedder {self._embedder_id}, which this server"
                " searches with: run supportbot calibrate --eval E --out-of-scope O."
            )
        if not entry.get("trade_offs"):
            return (
                "The calibration served has no trade-off table: run supportbot train, or"
                " supportbot calibrate --eval E --out-of-scope O."
            )
        return None
