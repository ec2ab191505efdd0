"""`secl verify` output: the table (full) and the same as one JSON document."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from secl.verify.cases import Case, Expect, Observation, ProgramPlan, errno_name

if TYPE_CHECKING:
    from secl.verify import Report


def _predicted(plan: ProgramPlan) -> str:
    p = plan.prediction
    if not p.upgraded:
        return f"not upgraded ({p.reason_code})"
    if p.needs_single is None:
        return "upgraded (no sources: loader code unknown)"
    if p.needs_single:
        return f"upgraded, needs .single ({', '.join(p.codes)})"
    return "upgraded, no .single needed"


def _observed(seen: Observation | None) -> tuple[str, str, str, str]:
    if seen is None:
        return "-", "-", "-", "-"
    if seen.open:
        return f"open {errno_name(seen.open)}", "-", "-", "-"
    if seen.load:
        return errno_name(seen.load), "-", "-", "-"
    hits = "-" if seen.hits is None else str(seen.hits)
    return "ok", seen.attach_text, seen.link_text, hits


def _expected(case: Case) -> str:
    # a kernel-dependent case shows every answer kernel builds give
    return " or ".join(answer.text for answer in case.expect.answers())


def render_full(report: Report) -> str:
    lines: list[str] = []
    header = ("case", "expected", "load", "attach", "link", "hits", "verdict")
    for obj in report.objects:
        plans = [p for p in report.plans if p.program.object == obj]
        runs = [r for r in report.runs if obj in r.objects]
        where = ", ".join(
            f"{r.where}: {r.wall:.1f} s, peak RSS {r.peak_rss_kb // 1024} MB"
            + (f", {r.accel}" if r.accel else "")
            for r in runs
        )
        lines.append(f"{obj}" + (f"  ({where})" if where else ""))
        if not plans:
            lines.append("  no kprobe/uprobe-family programs")
            continue
        for plan in plans:
            src = f"  [{plan.prediction.source}]" if plan.prediction.source else ""
            lines.append(
                f'  {plan.program.name}  SEC("{plan.program.section}")  on the {plan.where}'
                f"  predicted: {_predicted(plan)}{src}"
            )
            for note in plan.notes:
                lines.append(f"    note: {note}")
            rows = [header]
            for case in plan.cases:
                result = report.results.get(case.id)
                load, attach, link, hits = _observed(result.observation if result else None)
                verdict = result.verdict if result else "skipped"
                if result is not None and result.kernel_dependent:
                    verdict = "kernel-dependent"
                rows.append((case.label, _expected(case), load, attach, link, hits, verdict))
            widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
            for row in rows:
                lines.append(
                    "    "
                    + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                )
    explained = [r for r in report.results.values() if r.verdict in ("contradicts", "inconclusive")]
    for title, verdict in (("Contradictions", "contradicts"), ("Inconclusive", "inconclusive")):
        chosen = [r for r in explained if r.verdict == verdict]
        if chosen:
            lines.append(f"\n{title}:")
            for r in sorted(chosen, key=lambda r: r.case.id):
                lines.append(f"  {r.case.program.name}: {r.case.label}: {r.explanation}")
    dependent = [r for r in report.results.values() if r.kernel_dependent]
    if dependent:
        lines.append("\nKernel-dependent (kernel builds answer differently; not a contradiction):")
        for r in sorted(dependent, key=lambda r: r.case.id):
            lines.append(f"  {r.case.program.name}: {r.case.label}: {r.explanation}")
    informational = [r for r in report.results.values()
                     if r.verdict == "informational" and not r.kernel_dependent]  # fmt: skip
    if informational:
        lines.append("\nInformational (uprobe attach-mode routing, U2):")
        for r in sorted(informational, key=lambda r: r.case.id):
            seen = r.observation
            got = f"{seen.attach_text}, link {seen.link_text}" if seen else "no result"
            lines.append(f"  {r.case.program.name}: {r.case.label}: {got}; {r.explanation}")
    if report.skips:
        lines.append("\nSkipped:")
        for where, skip in report.skips:
            lines.append(f"  {where}: {skip}")
    problems = [r for r in report.runs if r.problem]
    for run in problems:
        lines.append(f"\nwarning: {run.where}: {run.problem}")
    counts = report.counts()
    lines.append(
        ("\n" if lines else "")
        + f"{sum(counts.values())} cases (host {report.ran('host')}, guest {report.ran('guest')} "
        f"ran): {counts['agrees']} agree, {counts['contradicts']} contradict, "
        f"{counts['inconclusive']} inconclusive, {counts['informational']} informational, "
        f"{counts['skipped']} skipped"
        + (f" ({len(dependent)} kernel-dependent)" if dependent else "")
    )
    failures = report.failures()
    if failures and report.require_runtime and not counts["contradicts"]:
        lines.append("failed: --require-runtime and a part of the run could not happen")
    return "\n".join(lines) + "\n"


def _observation_object(seen: Observation | None) -> dict[str, Any] | None:
    if seen is None:
        return None
    return {
        "open": errno_name(seen.open) if seen.open else "ok",
        "load": errno_name(seen.load) if seen.load else "ok",
        "attach": seen.attach_text if not (seen.open or seen.load) else None,
        "link_type": seen.link_text if not (seen.open or seen.load or seen.attach) else None,
        "hits": seen.hits,
        "log": list(seen.log),
    }


def _expected_object(case: Case, expect: Expect) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attach": expect.attach,
        "link_type": expect.link_type,
        "hits": case.fields.get("count") if expect.hits else None,
    }
    if expect.meaning:
        out["meaning"] = expect.meaning
    return out


def render_json(report: Report) -> str:
    objects = []
    for obj in report.objects:
        programs = []
        for plan in (p for p in report.plans if p.program.object == obj):
            p = plan.prediction
            cases = []
            for case in plan.cases:
                result = report.results.get(case.id)
                cases.append(
                    {
                        "id": case.id,
                        "label": case.label,
                        "code": case.code,
                        "informational": case.informational,
                        "loader": case.fields,
                        "expected": _expected_object(case, case.expect),
                        "other_kernels": [
                            _expected_object(case, answer) for answer in case.expect.or_else
                        ],
                        "observed": _observation_object(result.observation if result else None),
                        "verdict": result.verdict if result else "skipped",
                        "kernel_dependent": bool(result and result.kernel_dependent),
                        "explanation": result.explanation if result else None,
                    }
                )
            programs.append(
                {
                    "program": plan.program.name,
                    "section": plan.program.section,
                    "group": plan.group,
                    "where": plan.where,
                    "predicted": {
                        "upgraded": p.upgraded,
                        "reason_code": p.reason_code,
                        "needs_single": p.needs_single,
                        "codes": list(p.codes),
                        "source": p.source,
                    },
                    "notes": plan.notes,
                    "cases": cases,
                }
            )
        objects.append({"object": obj, "programs": programs})
    document = {
        "objects": objects,
        "runs": [
            {
                "where": r.where,
                "objects": list(r.objects),
                "cases": r.cases,
                "wall_s": round(r.wall, 3),
                "peak_rss_kb": r.peak_rss_kb,
                "accel": r.accel,
                "problem": r.problem,
            }
            for r in report.runs
        ],
        "skips": [{"where": w, "what": s.what, "detail": s.detail} for w, s in report.skips],
        "summary": {
            **report.counts(),
            "kernel_dependent": sum(1 for r in report.results.values() if r.kernel_dependent),
            "host_ran": report.ran("host"),
            "guest_ran": report.ran("guest"),
        },
        "failures": report.failures(),
    }
    return json.dumps(document, indent=2) + "\n"
