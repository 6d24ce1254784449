"""``ragmesh experiments report`` and ``ragmesh feedback``: A/B experiments from the CLI."""

from __future__ import annotations

from pathlib import Path

import click
from google.protobuf.json_format import MessageToJson

from ragmesh.cli.common import client_from, fail, handles_errors, print_json
from ragmesh.v1 import orchestrator_pb2

METRICS = ("latency_ms", "ttft_ms", "completion_tokens", "prompt_tokens", "rating", "error_rate", "cache_hit_rate")


@click.group()
def experiments() -> None:
    """A/B experiments declared in the orchestrator's experiments file."""


def _number(message: object, field: str, digits: int = 2) -> str:
    if not message.HasField(field):  # type: ignore[attr-defined]
        return "-"
    return f"{getattr(message, field):.{digits}f}"


def _print_report(report: orchestrator_pb2.ExperimentReport) -> None:
    click.echo(f"experiment {report.experiment} — {report.metric} over {report.records} records")
    click.echo(f"{'variant':<16}{'n':>7}{'mean':>11}{'std':>10}{'p50':>10}{'p95':>10}   95% CI")
    for v in report.variants:
        ci = f"[{_number(v, 'ci_low')}, {_number(v, 'ci_high')}]"
        numbers = "".join(f"{_number(v, f):>10}" for f in ("std", "p50", "p95"))
        click.echo(f"{v.variant:<16}{v.count:>7}{_number(v, 'mean'):>11}{numbers}   {ci}")
    for c in report.comparisons:
        verdict = "significant" if c.significant else "not significant"
        click.echo(
            f"{c.variant} vs {c.control}: diff {_number(c, 'difference')} "
            f"(Welch p={_number(c, 'welch_p', 4)}, Mann-Whitney p={_number(c, 'mann_whitney_p', 4)}, "
            f"Hedges g={_number(c, 'hedges_g')}) {verdict} at alpha {report.alpha}; "
            f"{c.still_needed if c.HasField('still_needed') else '-'} more per variant for power {report.power}"
        )


@experiments.command()
@click.argument("name")
@click.option("--metric", type=click.Choice(METRICS), default="latency_ms", show_default=True)
@click.option("--exclude-cache-hits", is_flag=True, help="Leave answers served from the cache out.")
@click.option("--include-forced", is_flag=True, help="Count queries whose caller forced the variant.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Write report.json and report.png here.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handles_errors
def report(
    context: click.Context,
    *,
    name: str,
    metric: str,
    exclude_cache_hits: bool,
    include_forced: bool,
    out: Path | None,
    as_json: bool,
) -> None:
    """Per-variant statistics of experiment NAME and the significance of their differences."""
    with client_from(context) as client:
        found = client.experiment_report(
            name, metric, chart=out is not None, exclude_cache_hits=exclude_cache_hits, include_forced=include_forced
        )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.png").write_bytes(found.chart_png)
        chart_free = orchestrator_pb2.ExperimentReport()
        chart_free.CopyFrom(found)
        chart_free.ClearField("chart_png")
        (out / "report.json").write_text(MessageToJson(chart_free, preserving_proto_field_name=True))
        click.echo(f"wrote {out / 'report.json'} and {out / 'report.png'}", err=True)
    if as_json:
        found.ClearField("chart_png")
        print_json(found)
    else:
        _print_report(found)


@click.command()
@click.argument("trace_id")
@click.option("--rating", type=click.FloatRange(1, 5), required=True, help="1 (bad) to 5 (good).")
@click.option("--label", "labels", multiple=True, metavar="DOC=GRADE", help="Relevance of a document, 0 to 3.")
@click.pass_context
@handles_errors
def feedback(context: click.Context, trace_id: str, rating: float, labels: tuple[str, ...]) -> None:
    """Rate the answer with TRACE_ID (printed by `ragmesh ask --no-stream`)."""
    relevance: dict[str, int] = {}
    for label in labels:
        document, _, grade = label.rpartition("=")
        if not document or not grade.isdigit():
            fail(f"--label must look like DOC=GRADE, got {label!r}", 2)
        relevance[document] = int(grade)
    with client_from(context) as client:
        experiment, variant = client.feedback(trace_id, rating, relevance)
    click.echo(f"recorded for experiment {experiment}, variant {variant}")
