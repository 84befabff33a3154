"""Verdicts of the flow's verifications, in ``report["checks"]``.

Every verification a step runs records one entry ``{name: {"passed": bool, "detail": str}}``
(the detail says what was compared and what came out, in one line). The flow runs to the
end and writes its build folder even when a check fails, so the evidence is there to
debug; ``axe-deploy run`` then exits with ``FAILED_CHECKS_EXIT_CODE``.
"""

from __future__ import annotations

FAILED_CHECKS_EXIT_CODE = 3


def record(report: dict, name: str, passed: bool, detail: str) -> bool:
    """Record the verdict of check ``name`` in ``report`` (replacing an earlier one of the
    same name); returns ``passed``."""
    report.setdefault("checks", {})[name] = {"passed": bool(passed), "detail": str(detail)}
    return bool(passed)


def failures(report: dict) -> dict[str, str]:
    """{name: detail} of the checks in ``report`` that failed."""
    return {name: c["detail"] for name, c in report.get("checks", {}).items() if not c["passed"]}


def summary_line(report: dict) -> str | None:
    """One line: which checks failed and why, or how many passed; None when none ran."""
    checks = report.get("checks", {})
    if not checks:
        return None
    failed = failures(report)
    if failed:
        return (f"FAILED {len(failed)} of {len(checks)} checks: "
                + "; ".join(f"{name}: {detail}" for name, detail in failed.items()))
    return f"checks: all {len(checks)} passed ({', '.join(checks)})"
