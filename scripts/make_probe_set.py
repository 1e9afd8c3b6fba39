"""Write the embedding probe set `nvembed_eval/models/probe_sets/probes_v<N>.json` (docs/probes.md).

The set is built from texts this project wrote (the embedded smoke tasks and the edge cases below) plus Banking77
test queries (CC BY 4.0, attribution in the file). A version, once committed, is never rewritten with other content:
change the texts by bumping VERSION, which makes every existing probe baseline refuse to compare (exit 2).

    python scripts/make_probe_set.py            # writes the file, or checks that the committed one is identical
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "nvembed_eval" / "tasks" / "smoke" / "data"
TASK_CONF = REPO / "conf" / "task"
OUT_DIR = REPO / "nvembed_eval" / "models" / "probe_sets"
VERSION = 1

BANKING77_SOURCE = (
    "Banking77Classification test split (PolyAI banking77, github.com/PolyAI-LDN/task-specific-datasets "
    "@57ec275d8078af65b7731c2a98be812d844a6d6b, banking_data/test.csv), CC BY 4.0, (c) PolyAI; copied verbatim "
    "from ../shared/data/Banking77Classification/test.jsonl.gz"
)
SMOKE_SOURCE = "nvembed_eval/tasks/smoke/data (written for this project, Apache-2.0)"
WRITTEN_SOURCE = "written for this probe set (Apache-2.0)"

# A paragraph of about 21 Mistral tokens; 1800 repeats are about 37,800 tokens, beyond NV-Embed-v2's max_length of
# 32768 and every other config's, so the probe exercises truncation wherever it runs.
LONG_PARAGRAPH = "The quick brown fox jumps over the lazy dog while the river keeps flowing past the old mill. "

# (id, text, instruction or None, tags). Instruction-bearing edge cases use one generic retrieval instruction.
GENERIC_INSTRUCTION = "Given a question, retrieve passages that answer the question"
EDGE_CASES: list[tuple[str, str, str | None, list[str]]] = [
    ("edge-empty", "", None, ["empty"]),
    ("edge-empty-instructed", "", GENERIC_INSTRUCTION, ["empty", "instructed"]),
    ("edge-space", " ", None, ["whitespace"]),
    ("edge-spaces-tabs-newlines", "  \t \n\n  \t", None, ["whitespace"]),
    ("edge-whitespace-instructed", "   ", GENERIC_INSTRUCTION, ["whitespace", "instructed"]),
    ("edge-nbsp", "\u00a0", None, ["whitespace", "non-ascii"]),
    ("edge-zero-width-space", "\u200b", None, ["whitespace", "non-ascii"]),
    ("edge-bom", "\ufeffText after a byte order mark.", None, ["non-ascii"]),
    ("edge-crlf", "first line\r\nsecond line\r\n", None, ["control"]),
    ("edge-tabs", "name\tcity\tcountry\nAda\tLondon\tUK", None, ["control"]),
    ("edge-nul", "before\x00after", None, ["control"]),
    ("edge-padded", "   text with spaces around it   ", None, ["whitespace"]),
    ("edge-single-char", "a", None, ["short"]),
    ("edge-punctuation", "?!...", None, ["short"]),
    ("edge-digits", "3.14159 2.71828 1.41421 1729 0x1F", None, ["numbers"]),
    ("edge-caps", "THIS SENTENCE IS WRITTEN ENTIRELY IN CAPITAL LETTERS.", None, ["case"]),
    ("edge-latin-accents", "Crème brûlée à l'école, naïve café, Straße, smørrebrød.", None, ["non-ascii"]),
    ("edge-nfc", "caf\u00e9 r\u00e9sum\u00e9", None, ["non-ascii", "unicode-normalisation"]),
    ("edge-nfd", "cafe\u0301 re\u0301sume\u0301", None, ["non-ascii", "unicode-normalisation"]),
    ("edge-greek", "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλικο σκύλο.", None, ["non-ascii"]),
    ("edge-cyrillic", "Быстрая бурая лиса перепрыгивает через ленивую собаку.", None, ["non-ascii"]),
    ("edge-cjk-ja", "東京は日本の首都で、人口が最も多い都市です。", None, ["non-ascii", "cjk"]),
    ("edge-cjk-zh", "我喜欢在周末去图书馆读书。", None, ["non-ascii", "cjk"]),
    ("edge-cjk-ko", "서울은 대한민국의 수도입니다.", None, ["non-ascii", "cjk"]),
    (
        "edge-cjk-instructed",
        "富士山の高さはどれくらいですか？",
        GENERIC_INSTRUCTION,
        ["non-ascii", "cjk", "instructed"],
    ),
    ("edge-rtl-ar", "القاهرة هي عاصمة مصر وأكبر مدنها.", None, ["non-ascii", "rtl"]),
    ("edge-rtl-he", "ירושלים היא עיר עתיקה מאוד.", None, ["non-ascii", "rtl"]),
    (
        "edge-rtl-mixed",
        "The Hebrew word שלום means peace, and the Arabic word سلام does too.",
        None,
        ["non-ascii", "rtl"],
    ),
    ("edge-rtl-instructed", "ما هي عاصمة فرنسا؟", GENERIC_INSTRUCTION, ["non-ascii", "rtl", "instructed"]),
    ("edge-devanagari", "नई दिल्ली भारत की राजधानी है।", None, ["non-ascii"]),
    ("edge-thai", "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย", None, ["non-ascii"]),
    ("edge-emoji", "🙂🚀🔥", None, ["non-ascii", "emoji"]),
    ("edge-emoji-zwj", "👨\u200d👩\u200d👧\u200d👦 family of four", None, ["non-ascii", "emoji"]),
    ("edge-emoji-flags-skin", "🇫🇷 🇯🇵 👍🏽 👋🏿", None, ["non-ascii", "emoji"]),
    ("edge-emoji-sentence", "Loved the concert 🎸🎶 but the queue was awful 😩", None, ["non-ascii", "emoji"]),
    ("edge-emoji-instructed", "best pizza near me 🍕?", GENERIC_INSTRUCTION, ["non-ascii", "emoji", "instructed"]),
    ("edge-math-symbols", "∀x ∈ ℝ: x² ≥ 0 ⇒ √(x²) = |x|", None, ["non-ascii"]),
    ("edge-special-eos", "</s>", None, ["special-token"]),
    ("edge-special-bos", "<s>", None, ["special-token"]),
    ("edge-special-unk", "<unk>", None, ["special-token"]),
    ("edge-special-cls", "[CLS]", None, ["special-token"]),
    ("edge-special-sep-pad-mask", "[SEP] [PAD] [MASK]", None, ["special-token"]),
    ("edge-special-in-sentence", "The tag </s> ends a sequence and <s> starts one.", None, ["special-token"]),
    ("edge-special-chat", "<|endoftext|><|im_start|>user", None, ["special-token"]),
    ("edge-special-instructed", "</s> [CLS] <s>", GENERIC_INSTRUCTION, ["special-token", "instructed"]),
    ("edge-fake-prefix", "Instruct: x\nQuery: ", None, ["special-token", "fake-prefix"]),
    (
        "edge-fake-prefix-with-query",
        "Instruct: Given a question, retrieve passages that answer the question\nQuery: what is the capital of France?",
        None,
        ["fake-prefix"],
    ),
    ("edge-fake-prefix-instructed", "Instruct: x\nQuery: ", GENERIC_INSTRUCTION, ["fake-prefix", "instructed"]),
    ("edge-braces", "{instruction} {} {{}} %s", None, ["template-syntax"]),
    ("edge-code", "def square(x):\n    return x ** 2\n", None, ["code"]),
    ("edge-sql", "SELECT name FROM users WHERE id = 42;", None, ["code"]),
    ("edge-url", "https://example.com/path/to/page?q=embeddings&lang=en#section-2", None, ["code"]),
    ("edge-html", "<p>Hello <b>world</b> &amp; friends</p>", None, ["code"]),
    ("edge-repeated-char", "a" * 5000, None, ["long", "repetitive"]),
    ("edge-repeated-word", "buffalo " * 600, None, ["long", "repetitive"]),
]
LONG_CASES: list[tuple[str, str, int, str | None, list[str]]] = [
    ("edge-long", LONG_PARAGRAPH, 1800, None, ["long", "truncation"]),
    ("edge-long-instructed", LONG_PARAGRAPH, 1800, GENERIC_INSTRUCTION, ["long", "truncation", "instructed"]),
]
DUPLICATE_CASES = [
    ("edge-duplicate-1", "Duplicate rows must embed identically."),
    ("edge-duplicate-2", "Duplicate rows must embed identically."),
]


def _jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _instruction(task: str) -> str:
    data = yaml.safe_load((TASK_CONF / f"{task}.yaml").read_text(encoding="utf-8"))
    return data["instructions"]["query"]


def _probe(pid, task_type, side, text, instruction, source, tags=(), repeat=None) -> dict:
    probe = {"id": pid, "task_type": task_type, "side": side, "instruction": instruction, "text": text}
    if repeat:
        probe["repeat"] = repeat
    probe["tags"] = list(tags)
    probe["source"] = source
    return probe


def smoke_probes() -> list[dict]:
    """Texts from every smoke task, with the task's instruction where NV-Embed would use one, some also without."""
    out = []

    def add(task, task_type, side, rows, instructed, tag_extra=()):
        instruction = _instruction(task) if instructed else None
        for where, text in rows:
            pid = f"{task_type.lower()}-{side or 'text'}-{len(out) + 1:03d}{'' if instructed else '-plain'}"
            tags = ["instructed"] if instructed else ["plain"]
            out.append(_probe(pid, task_type, side, text, instruction, f"smoke:{task}/{where}", [*tags, *tag_extra]))

    def lines(task, name, key, n, step=1):
        rows = _jsonl(SMOKE / task / name)
        return [(f"{name}:{i + 1}:{key}", rows[i][key]) for i in range(0, len(rows), step)][:n]

    docs = _documents("NVEvalSmokeRetrieval")
    queries = lines("NVEvalSmokeRetrieval", "queries.jsonl", "text", 12, 2)
    add("NVEvalSmokeRetrieval", "Retrieval", "query", queries, True)
    add("NVEvalSmokeRetrieval", "Retrieval", "query", queries[:4], False)
    add("NVEvalSmokeRetrieval", "Retrieval", "document", docs[::2][:16], False)
    rr_docs = _documents("NVEvalSmokeReranking")
    add("NVEvalSmokeReranking", "Reranking", "query", lines("NVEvalSmokeReranking", "queries.jsonl", "text", 12), True)
    add("NVEvalSmokeReranking", "Reranking", "document", rr_docs[::4][:16], False)
    sts = lines("NVEvalSmokeSTS", "test.jsonl", "sentence1", 10) + lines(
        "NVEvalSmokeSTS", "test.jsonl", "sentence2", 10
    )
    add("NVEvalSmokeSTS", "STS", None, sts, True)
    add("NVEvalSmokeSTS", "STS", None, sts[:4], False)
    add(
        "NVEvalSmokeClassification",
        "Classification",
        None,
        lines("NVEvalSmokeClassification", "test.jsonl", "text", 20),
        True,
    )
    pairs = lines("NVEvalSmokePairClassification", "test.jsonl", "sentence1", 10, 3)
    pairs += lines("NVEvalSmokePairClassification", "test.jsonl", "sentence2", 10, 3)
    add("NVEvalSmokePairClassification", "PairClassification", None, pairs, True)
    clusters = _jsonl(SMOKE / "NVEvalSmokeClustering" / "test.jsonl")
    cl = [
        (f"test.jsonl:{s + 1}:sentences[{i}]", row["sentences"][i])
        for s, row in enumerate(clusters)
        for i in range(0, len(row["sentences"]), 2)
    ]
    add("NVEvalSmokeClustering", "Clustering", None, cl[:20], True)
    summ = _jsonl(SMOKE / "NVEvalSmokeSummarization" / "test.jsonl")
    summaries = [(f"test.jsonl:{r + 1}:human_summaries[0]", row["human_summaries"][0]) for r, row in enumerate(summ)]
    summaries += [
        (f"test.jsonl:{r + 1}:machine_summaries[{i}]", row["machine_summaries"][i])
        for r, row in enumerate(summ)
        for i in (0, 3)
    ]
    add("NVEvalSmokeSummarization", "Summarization", None, summaries, True)
    add(
        "NVEvalSmokeSummarization",
        "Summarization",
        None,
        [(f"test.jsonl:{r + 1}:text", row["text"]) for r, row in enumerate(summ[:3])],
        False,
        ["source-text"],
    )
    return out


def _documents(task: str) -> list[tuple[str, str]]:
    """(where, text) of a BEIR corpus, each document as mteb embeds it: `(title + " " + text).strip()`."""
    rows = _jsonl(SMOKE / task / "corpus.jsonl")
    return [(f"corpus.jsonl:{i + 1}", (d.get("title", "") + " " + d["text"]).strip()) for i, d in enumerate(rows)]


def banking77_probes(shared: Path) -> list[dict]:
    """Every 100th Banking77 test query (31 texts, real typos and casing) with its instruction, 7 also without."""
    rows = _jsonl(shared / "data" / "Banking77Classification" / "test.jsonl.gz")
    instruction = _instruction("Banking77Classification")
    out = []
    for i in range(0, len(rows), 100):
        source = f"{BANKING77_SOURCE}, row {i + 1}"
        out.append(
            _probe(
                f"banking77-{i + 1:04d}",
                "Classification",
                None,
                rows[i]["text"],
                instruction,
                source,
                ["instructed", "real-data"],
            )
        )
        if i % 500 == 0:
            out.append(
                _probe(
                    f"banking77-{i + 1:04d}-plain",
                    "Classification",
                    None,
                    rows[i]["text"],
                    None,
                    source,
                    ["plain", "real-data"],
                )
            )
    return out


def edge_probes() -> list[dict]:
    out = [
        _probe(pid, "edge", "query" if ins else None, text, ins, WRITTEN_SOURCE, tags)
        for pid, text, ins, tags in EDGE_CASES
    ]
    out += [
        _probe(pid, "edge", "query" if ins else None, text, ins, WRITTEN_SOURCE, tags, repeat)
        for pid, text, repeat, ins, tags in LONG_CASES
    ]
    out += [_probe(pid, "edge", None, text, None, WRITTEN_SOURCE, ["duplicate"]) for pid, text in DUPLICATE_CASES]
    return out


def build(shared: Path) -> dict:
    probes = smoke_probes() + banking77_probes(shared) + edge_probes()
    ids = [p["id"] for p in probes]
    if len(set(ids)) != len(ids):
        raise SystemExit("error: duplicate probe ids; fix the generator")
    return {
        "name": "nvembed-eval embedding probes",
        "version": VERSION,
        "description": (
            "Texts whose embeddings are compared bit for bit (or within a tolerance) against a committed baseline "
            "to catch library, kernel and numerics changes cheaply (docs/probes.md). 'instruction' is templated by "
            "the model's own instruction template (none for models without one); 'repeat' repeats 'text' that "
            "many times. Never edit a released version: bump it (scripts/make_probe_set.py)."
        ),
        "sources": {"smoke": SMOKE_SOURCE, "banking77": BANKING77_SOURCE, "written": WRITTEN_SOURCE},
        "probes": probes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared data folder")
    args = parser.parse_args(argv)
    probe_set = build(args.shared)
    text = json.dumps(probe_set, ensure_ascii=False, indent=1) + "\n"
    path = OUT_DIR / f"probes_v{VERSION}.json"
    if path.exists():
        if path.read_text(encoding="utf-8") == text:
            print(f"{path} is up to date")
            return 0
        print(
            f"error: {path} exists with other content; bump VERSION instead of rewriting a released set",
            file=sys.stderr,
        )
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}: {len(probe_set['probes'])} probes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
