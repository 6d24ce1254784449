"""The evaluation set shipped in ``corpus/eval/``, built from ragmesh's own documentation.

Each paragraph of ``corpus/docs/*.md`` is one document (``<page>-<n>``, titled by the
page's heading), so a query has one or two relevant documents among fifteen and a random
ranking scores visibly lower. The questions come from ``corpus/questions.jsonl`` and
``corpus/eval/questions-extra.jsonl`` (``{"question", "document", "answer": [...]}``); a
question's relevant documents are the paragraphs of its page that contain one of its
answers, so the judgements follow the text. Rebuild with ``python -m ragmesh.eval.shipped``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from ragmesh.eval.datasets import DatasetError, json_lines
from ragmesh.mesh.processes import ROOT

DOCS = ROOT / "corpus" / "docs"
QUESTION_FILES = (ROOT / "corpus" / "questions.jsonl", ROOT / "corpus" / "eval" / "questions-extra.jsonl")
OUT = ROOT / "corpus" / "eval"


def paragraphs(page: Path) -> tuple[str, list[str]]:
    """A Markdown page's heading and its paragraphs (blank-line separated, unwrapped)."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", page.read_text(encoding="utf-8")) if b.strip()]
    title = blocks[0].lstrip("# ").strip() if blocks and blocks[0].startswith("#") else page.stem
    body = blocks[1:] if blocks and blocks[0].startswith("#") else blocks
    return title, [" ".join(b.split()) for b in body]


def build(docs: Path = DOCS, question_files: tuple[Path, ...] = QUESTION_FILES) -> dict[str, str]:
    """File name -> content of the BEIR layout (corpus.jsonl, queries.jsonl, qrels/test.tsv)."""
    corpus: list[dict[str, str]] = []
    pages: dict[str, list[tuple[str, str]]] = {}
    for page in sorted(docs.glob("*.md")):
        title, texts = paragraphs(page)
        for number, text in enumerate(texts, start=1):
            corpus.append({"_id": f"{page.stem}-{number}", "title": title, "text": text})
            pages.setdefault(page.name, []).append((f"{page.stem}-{number}", text))
    queries: list[dict[str, object]] = []
    qrels = ["query-id\tcorpus-id\tscore"]
    for path in question_files:
        for line, record in json_lines(path):
            answers = [str(a) for a in record.get("answer", [])]
            found = [d for d, text in pages.get(str(record.get("document")), []) if _contains(text, answers)]
            if not found:
                raise DatasetError(path, f"no paragraph of {record.get('document')!r} contains {answers}", line)
            query_id = f"q{len(queries) + 1}"
            queries.append({"_id": query_id, "text": str(record["question"]), "answers": answers})
            qrels += [f"{query_id}\t{document}\t1" for document in found]
    return {
        "corpus.jsonl": "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in corpus),
        "queries.jsonl": "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries),
        "qrels/test.tsv": "\n".join(qrels) + "\n",
    }


def _contains(text: str, answers: list[str]) -> bool:
    return any(answer.lower() in text.lower() for answer in answers)


def write(out: Path = OUT) -> None:
    """Write the shipped set into ``out``."""
    for name, content in build().items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(content, encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
