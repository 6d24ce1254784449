"""``ragmesh ask``: stream an answer, then list its numbered sources."""

from __future__ import annotations

import dataclasses
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from ragmesh.cli.common import client_from, handles_errors, print_json
from ragmesh.client import DoneEvent, RagmeshClient, SourcesEvent, TokenEvent, filters
from ragmesh.client.types import Answer, Source
from ragmesh.vocabulary import CacheLevel, RerankMethod


@click.command()
@click.argument("question")
@click.option("-c", "--collection", default="", help="Collection to search (the server's default when empty).")
@click.option("-k", "--top-k", type=click.IntRange(0, 50), default=0, help="Sources to use (0: server default).")
@click.option("--rerank", type=click.Choice([m.value for m in RerankMethod]), help="Reranking method.")
@click.option(
    "-f", "--filter", "filter_texts", multiple=True, metavar="EXPR", help="Metadata filter, e.g. lang=en or year>=2020."
)
@click.option("--max-new-tokens", type=click.IntRange(1, 8192), help="Longest answer, in tokens.")
@click.option("--no-stream", is_flag=True, help="Wait for the whole answer instead of streaming it.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON (implies --no-stream).")
@click.pass_context
@handles_errors
def ask(
    context: click.Context,
    *,
    question: str,
    collection: str,
    top_k: int,
    rerank: str | None,
    filter_texts: tuple[str, ...],
    max_new_tokens: int | None,
    no_stream: bool,
    as_json: bool,
) -> None:
    """Answer QUESTION from the indexed documents, citing numbered sources."""
    try:
        parsed = [filters.parse(text) for text in filter_texts]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--filter") from None
    options = {"rerank": rerank, "max_new_tokens": max_new_tokens, "filters": parsed}
    with client_from(context) as client:
        if as_json or no_stream:
            answer = client.query(question, collection, top_k, **options)
            if as_json:
                print_json(dataclasses.asdict(answer))
            else:
                _print_answer(answer)
            return
        stream_answer(client, question, collection, top_k, **options)


def stream_answer(client: RagmeshClient, question: str, collection: str, top_k: int = 0, **options: Any) -> None:
    """Print the answer's tokens as they arrive, then its numbered sources. When the model
    cited nothing, the orchestrator's cited version replaces the streamed text on a terminal
    (piped, only the final text is written): the answer is shown once."""
    first: SourcesEvent | None = None
    console = Console(highlight=False)
    text = ""
    with Live(Text(), console=console, auto_refresh=False) as live:
        for event in client.query_stream(question, collection, top_k, **options):
            if isinstance(event, SourcesEvent):
                first = event
            elif isinstance(event, TokenEvent):
                text += event.text
                live.update(Text(text), refresh=True)
            elif isinstance(event, DoneEvent):
                live.update(Text(event.cited_answer or text), refresh=True)
    if first is not None:
        _print_sources(first.sources)
        click.echo(click.style(_served(first.cache, first.trace_id), dim=True))


def _print_answer(answer: Answer) -> None:
    click.echo(answer.cited_text or answer.text)
    _print_sources(answer.sources)
    click.echo(click.style(_served(answer.cache, answer.trace_id), dim=True))


def _served(cache: str, trace_id: str) -> str:
    """``(not cached, trace …)`` or ``(from the L1 cache, trace …)``."""
    where = "not cached" if cache in ("", CacheLevel.NONE) else f"from the {str(cache).upper()} cache"
    return f"({where}, trace {trace_id})"


def _print_sources(sources: list[Source]) -> None:
    if not sources:
        return
    click.echo(click.style("\nSources:", bold=True))
    for source in sources:
        preview = " ".join(source.text.split())[:100]
        click.echo(f"  [{source.number}] {citation(source)}  (score {source.score:.3f})  {preview}")


def citation(source: Source) -> str:
    """``handbook.pdf p. 3 — Docking``: the file name, page and section when the chunk has
    them (``source``/``page``/``section`` metadata), else the document id."""
    metadata = source.metadata
    name = str(metadata.get("source") or "").rsplit("/", 1)[-1] or source.document_id
    page = metadata.get("page")
    if isinstance(page, int | float) and not isinstance(page, bool):
        name += f" p. {int(page)}"
    section = metadata.get("section")
    if isinstance(section, str) and section:
        name += f" — {section.rsplit(' / ', 1)[-1]}"
    return name
