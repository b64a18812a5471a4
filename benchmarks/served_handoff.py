"""What the hand-off a home serves now does on the sample's labelled files (issue 16: does
the confidence served after `supportbot retrain` still use the reply verifier?)

    python benchmarks/served_handoff.py --home H [--label after-train] [--out FILE]

The server's decision is read as the server reads it (bot.components.calibrated_engine_config:
the calibration saved in the home for the embedder that serves, the settings' engine section
otherwise), and applied, not refitted, to data/sample/eval.jsonl (in-scope conversations,
judged by calibration.ReplyJudge) and data/sample/out_of_scope.jsonl, searched in the
home's live index with the verifier it serves. The home must hold the sample's logs only
(never its labelled files). Prints one row (in-scope answered, answered right, wrong
answers of all questions, out-of-scope handed off), the signals weighed and the verifier
served, and appends them to --out (JSON; default benchmarks/results/served_handoff.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks.handoff_from_logs import EVAL, OUT_OF_SCOPE, RESULTS, applied  # noqa: E402


def measure(home: Path) -> dict[str, Any]:
    """The served hand-off of ``home`` applied to the labelled files."""
    from bot.components import calibrated_engine_config, open_knowledge_base
    from bot.settings import load_settings
    from retrieval.calibration import build_cases, load_calibration, signals_used

    settings = load_settings(home=home)
    knowledge = open_knowledge_base(settings)
    try:
        knowledge.load()
        embedder_id = knowledge.embedder.model_id
        served = calibrated_engine_config(settings.engine, home, embedder_id)
        weights = served.confidence_weights
        cases = build_cases(knowledge, EVAL, OUT_OF_SCOPE).cases
        result = applied(cases, weights, served.confidence_threshold)
        verifier = knowledge.served_verifier()
        manifest = verifier.manifest() if verifier is not None else {}
        fitted = ((load_calibration(home) or {}).get("by_embedder") or {}).get(embedder_id) or {}
        version = knowledge.version
        return {
            **result.row(),
            "threshold": round(served.confidence_threshold, 4),
            "signals": signals_used(weights),
            "fitted_on": fitted.get("fitted_on"),
            "index_version": version.id if version else None,
            "embedder": embedder_id,
            "verifier": {
                "folder": str(verifier.folder) if verifier is not None else None,
                "index_version": manifest.get("index_version"),
                "held_out": manifest.get("held_out"),
                "steps": manifest.get("steps"),
            },
            "questions": len(cases),
        }
    finally:
        knowledge.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--label", default="", help="names the row (e.g. after-retrain)")
    parser.add_argument("--out", type=Path, default=RESULTS / "served_handoff.json")
    args = parser.parse_args()
    row = {"label": args.label or str(args.home), **measure(args.home)}
    header = (
        f"{'home':<28} {'in-scope answered':>17} {'answered right':>14} {'wrong of all':>12}"
        f" {'oos handed off':>14}  signals"
    )
    print(header)
    print(
        f"{row['label']:<28} {row['in_scope_answered']:>17.3f} {row['answered_right']:>14.3f}"
        f" {row['wrong_of_all']:>12.3f} {row['out_of_scope_handed_off']:>14.3f}"
        f"  {', '.join(row['signals']) or 'none'}"
    )
    print(f"verifier served: {row['verifier']}; calibration fitted on {row['fitted_on']}")
    rows = json.loads(args.out.read_text()) if args.out.is_file() else []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([*rows, row], indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
