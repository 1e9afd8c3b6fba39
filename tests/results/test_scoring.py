"""Leaderboard math: the published card's numbers, coverage labels, metric keys, result folder layouts, bad input."""

from __future__ import annotations

import json

import mteb
import pytest
from clirun import REPO
from scoresets import PUBLISHED, make_result, write_result, write_run

from nvembed_eval.errors import ResultsError
from nvembed_eval.results.reading import load_scores
from nvembed_eval.results.scores import benchmark_leaderboard, format_leaderboard
from nvembed_eval.tasks.benchmarks import Benchmark
from nvembed_eval.tasks.specs import load_task_spec

SHIPPED_NV2 = REPO / "results" / "published" / "nv_embed_v2.csv"

CQA_SUBFORUMS = list(load_task_spec("CQADupstackRetrieval").subtasks)


def test_published_card_prints_exact_leaderboard_numbers():
    board = benchmark_leaderboard(load_scores(PUBLISHED).values)
    assert format_leaderboard(board).splitlines() == [
        "Average (56 tasks): 72.31",
        "Classification (12 tasks): 90.37",
        "Clustering (11 tasks): 58.46",
        "PairClassification (3 tasks): 88.67",
        "Reranking (4 tasks): 60.65",
        "Retrieval (15 tasks): 62.65",
        "STS (10 tasks): 84.31",
        "Summarization (1 task): 30.70",
    ]
    assert f"{board.average.mean:.4f}" == "72.3148"  # plain mean over 56, not a mean of type means
    retrieval_only = benchmark_leaderboard(load_scores(PUBLISHED).values, "retrieval")
    assert str(retrieval_only.average) == "Average (15 tasks): 62.65"


def test_partial_set_is_labelled_with_coverage_and_never_as_full_average():
    values = load_scores(PUBLISHED).values
    some = {t: values[t] for t in ("SciFact", "NFCorpus", "ArguAna", "STSBenchmark", "Banking77Classification")}
    text = format_leaderboard(benchmark_leaderboard(some))
    assert "Average (5/56 tasks, partial): " in text
    assert "Retrieval (3/15 tasks, partial): " in text
    assert "Clustering (0/11 tasks): n/a" in text
    assert "Average (56 tasks)" not in text and "Retrieval (15 tasks)" not in text
    assert f"{sum(some.values()) / 5:.2f}" in text  # the partial mean is over the present tasks only


def test_metric_keys_selected_from_real_task_results(tmp_path):
    folder = tmp_path / "res"
    write_result(folder, "SciFact", {"ndcg_at_10": 0.7, "map_at_1000": 0.1})
    # pair classification: cosine AP, not max AP (mteb 2.x's main score)
    write_result(folder, "TwitterURLCorpus", {"max_ap": 0.9, "cosine_ap": 0.8, "dot_ap": 0.9})
    write_result(folder, "SciDocsRR", {"map_at_1000": 0.85, "ndcg_at_10": 0.5})
    write_result(folder, "MindSmallReranking", {"max_over_subqueries_map_at_1000": 0.31, "map_at_1000": 0.2})
    write_result(folder, "STSBenchmark", {"cosine_spearman": 0.82, "spearman": 0.5})
    write_result(folder, "SummEval", {"cosine_spearman": 0.3, "spearman": 0.1})
    write_result(folder, "Banking77Classification", {"accuracy": 0.8, "f1": 0.7})
    write_result(folder, "ArxivClusteringP2P", {"v_measure": 0.46})
    write_result(folder, "STS17", {"cosine_spearman": 0.87}, subset="en-en")
    scores = load_scores(folder).scores
    got = {name: (s.metric, round(s.value, 6)) for name, s in scores.items()}
    assert got == {
        "SciFact": ("ndcg_at_10", 70.0),
        "TwitterURLCorpus": ("cosine_ap", 80.0),
        "SciDocsRR": ("map_at_1000", 85.0),
        "MindSmallReranking": ("max_over_subqueries_map_at_1000", 31.0),
        "STSBenchmark": ("cosine_spearman", 82.0),
        "SummEval": ("cosine_spearman", 30.0),
        "Banking77Classification": ("accuracy", 80.0),
        "ArxivClusteringP2P": ("v_measure", 46.0),
        "STS17": ("cosine_spearman", 87.0),
    }


def test_legacy_mteb_1x_pair_classification_reads_cos_sim_ap(tmp_path):
    # mteb 1.12 wrote nested {"cos_sim": {"ap": ...}}; mteb's reader flattens it to cos_sim_ap.
    legacy = {
        "dataset_revision": "8b6510b0b1fa4e4c4f879467980e9be563ec1cdf",
        "task_name": "TwitterURLCorpus",
        "mteb_version": "1.12.10",
        "evaluation_time": 1.0,
        "scores": {
            "test": [
                {
                    "cos_sim": {"ap": 0.84},
                    "max": {"ap": 0.86},
                    "main_score": 0.86,
                    "hf_subset": "default",
                    "languages": ["eng-Latn"],
                }
            ]
        },
    }
    (tmp_path / "TwitterURLCorpus.json").write_text(json.dumps(legacy))
    score = load_scores(tmp_path).scores["TwitterURLCorpus"]
    assert (score.metric, round(score.value, 6)) == ("cos_sim_ap", 84.0)


def test_cqadupstack_is_mean_of_its_12_subforums(tmp_path):
    folder = tmp_path / "res"
    for i, name in enumerate(CQA_SUBFORUMS):
        write_result(folder, name, {"ndcg_at_10": 0.30 + 0.01 * i})
    scores = load_scores(folder)
    assert len(CQA_SUBFORUMS) == 12
    assert scores.scores["CQADupstackRetrieval"].value == pytest.approx(100 * (0.30 + 0.01 * 5.5))
    assert set(scores.subtask_scores) == set(CQA_SUBFORUMS) and set(scores.scores) == {"CQADupstackRetrieval"}


def test_cqadupstack_partial_subforums_are_not_scored(tmp_path):
    for name in CQA_SUBFORUMS[:7]:
        write_result(tmp_path, name, {"ndcg_at_10": 0.4})
    scores = load_scores(tmp_path)
    assert "CQADupstackRetrieval" not in scores.scores
    assert scores.notes["CQADupstackRetrieval"] == "only 7/12 subtasks; not scored"


def test_cqadupstack_aggregate_file_wins_over_subforums(tmp_path):
    subs = [make_result(name, {"ndcg_at_10": 0.5}) for name in CQA_SUBFORUMS]
    for name, result in zip(CQA_SUBFORUMS, subs, strict=True):
        result.to_disk(tmp_path / f"{name}.json")
    aggregate = mteb.get_task("CQADupstackRetrieval").combine_task_results(subs)  # mteb's own aggregation
    aggregate.to_disk(tmp_path / "CQADupstackRetrieval.json")
    score = load_scores(tmp_path).scores["CQADupstackRetrieval"]
    assert score.value == pytest.approx(50.0) and score.note is None


def test_harness_run_folder_layout(tmp_path):
    run = write_run(tmp_path / "run", {"SciFact": {"ndcg_at_10": 0.6}, "STSBenchmark": {"cosine_spearman": 0.8}})
    scores = load_scores(run)
    assert set(scores.scores) == {"SciFact", "STSBenchmark"}
    assert scores.label == "run" and scores.instruction_variant == "nv_embed_v2"
    assert load_scores(run / "results").label == "run"  # the results/ subfolder alone still knows its run


def test_mteb_cache_layout(tmp_path):
    folder = (
        tmp_path / "results" / "sentence-transformers__all-MiniLM-L6-v2" / "8b3219a92973c328a8e22fadcfa821b5dc75636a"
    )
    write_result(folder, "SciFact", {"ndcg_at_10": 0.645})
    (folder / "model_meta.json").write_text("{}")
    assert load_scores(tmp_path / "results").values == {"SciFact": pytest.approx(64.5)}


def test_duplicate_results_name_both_files(tmp_path):
    a = write_result(tmp_path / "m" / "rev1", "SciFact", {"ndcg_at_10": 0.6})
    b = write_result(tmp_path / "m" / "rev2", "SciFact", {"ndcg_at_10": 0.61})
    with pytest.raises(ResultsError, match="duplicate results for task SciFact") as info:
        load_scores(tmp_path)
    assert str(a) in str(info.value) and str(b) in str(info.value)


def test_malformed_results_file_is_named(tmp_path):
    write_result(tmp_path, "SciFact", {"ndcg_at_10": 0.6})
    (tmp_path / "NFCorpus.json").write_text('{"task_name": "NFCorpus", "scores": ')
    with pytest.raises(ResultsError, match=r"malformed results file .*NFCorpus\.json"):
        load_scores(tmp_path)


def test_unknown_metric_names_file_and_metric(tmp_path):
    path = write_result(tmp_path, "TwitterURLCorpus", {"max_ap": 0.9, "dot_ap": 0.8})
    with pytest.raises(ResultsError, match=r"unknown metric in .*TwitterURLCorpus.json: .*cosine_ap") as info:
        load_scores(tmp_path)
    assert str(path) in str(info.value) and "max_ap" in str(info.value)


def test_result_without_the_leaderboard_split_is_rejected(tmp_path):
    write_result(tmp_path, "AmazonReviewsClassification", {"accuracy": 0.5}, split="validation")
    with pytest.raises(ResultsError, match="no 'test' split for AmazonReviewsClassification"):
        load_scores(tmp_path)


def test_empty_folder_and_missing_path(tmp_path):
    with pytest.raises(ResultsError, match="no mteb TaskResult JSON"):
        load_scores(tmp_path)
    with pytest.raises(ResultsError, match="does not exist"):
        load_scores(tmp_path / "nope")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("SciFat,ndcg_at_10,80.1\n", "unknown task 'SciFat'; did you mean SciFact"),
        ("SciFact,ndcg_at_10,80.1\nSciFact,ndcg_at_10,80.2\n", "duplicate rows for task SciFact"),
        ("TwitterURLCorpus,max_ap,88.0\n", "unknown metric 'max_ap' for TwitterURLCorpus"),
        ("SciFact,ndcg_at_10,eighty\n", "score 'eighty' of SciFact is not a number"),
        ("SciFact,ndcg_at_10,inf\n", "score of SciFact is inf"),
        ("", "has no rows"),
        # the scale rule (docs/bad_input.md): scores are points on 0-100
        ("SciFact,ndcg_at_10,0.645\nNFCorpus,ndcg_at_10,0.316\n", "looks like the 0-1 scale"),
        ("SciFact,ndcg_at_10,64.5\nNFCorpus,ndcg_at_10,0.316\n", "mixes scales: 1 of 2 scores are at most 1"),
        ("SciFact,ndcg_at_10,-101\n", "score -101 of SciFact is outside"),
    ],
)
def test_bad_score_tables(tmp_path, rows, message):
    path = tmp_path / "ref.csv"
    path.write_text("task,metric,score\n" + rows)
    with pytest.raises(ResultsError, match=message):
        load_scores(path)


def test_score_table_needs_its_columns(tmp_path):
    path = tmp_path / "ref.csv"
    path.write_text("task,score\nSciFact,80\n")
    with pytest.raises(ResultsError, match="lacks column 'metric'"):
        load_scores(path)


def test_task_score_on_an_in_memory_result():
    from nvembed_eval.results.scores import task_score

    assert task_score(make_result("SciFact", {"ndcg_at_10": 0.645}), load_task_spec("SciFact")) == pytest.approx(64.5)
    assert task_score(make_result("TwitterURLCorpus", {"max_ap": 0.9}), load_task_spec("TwitterURLCorpus")) is None


def test_result_for_a_task_nobody_knows_is_named(tmp_path):
    result = make_result("SciFact", {"ndcg_at_10": 0.6})
    result.task_name = "SciFactX"
    result.to_disk(tmp_path / "SciFactX.json")
    with pytest.raises(ResultsError, match=r"SciFactX\.json is for task 'SciFactX', unknown to this harness"):
        load_scores(tmp_path / "SciFactX.json")
    # In a folder, a task no benchmark has is outside the one read for: counted, never read, and nothing else is there.
    with pytest.raises(ResultsError, match=r"no result of a task of mteb_eng_v1 \(56 tasks, from assumed: no bench"):
        load_scores(tmp_path)


def test_score_table_model_column_and_byte_order_mark(tmp_path):
    path = tmp_path / "ref.csv"
    path.write_text("\ufefftask,metric,score,model\nSciFact,ndcg_at_10,64.5, org/m \nNFCorpus,ndcg_at_10,31.6,org/m\n")
    table = load_scores(path)
    assert table.model == "org/m" and table.values == {"SciFact": 64.5, "NFCorpus": 31.6}
    path.write_text("task,metric,score,model\nSciFact,ndcg_at_10,64.5,\n")
    assert load_scores(path).model is None  # an empty model column: unknown


def test_benchmark_is_read_from_run_json_in_contract_order(tmp_path):
    smoke = {"name": "smoke", "tasks": ["NVEvalSmokeSTS", "NVEvalSmokeRetrieval"]}
    run = write_run(tmp_path / "run", {"SciFact": {"ndcg_at_10": 0.6}}, config={"benchmark": smoke})
    assert load_scores(run).benchmark == Benchmark("smoke", tuple(smoke["tasks"]), "run.json config.benchmark")
    write_run(run, {}, config={"benchmark": smoke, "tasks": ["SciFact"]})  # tasks=[...] wins over benchmark=
    assert load_scores(run).benchmark == Benchmark("tasks", ("SciFact",), "run.json config.tasks")
    record = json.loads((run / "run.json").read_text())
    record["benchmark"] = {"name": "MTEB(eng, v2)", "tasks": ["SciFact", "NFCorpus"]}  # what the runner records
    (run / "run.json").write_text(json.dumps(record))
    assert load_scores(run).benchmark == Benchmark("MTEB(eng, v2)", ("SciFact", "NFCorpus"), "run.json benchmark")
    record["benchmark"] = {"name": "x", "tasks": "SciFact"}
    (run / "run.json").write_text(json.dumps(record))
    with pytest.raises(ResultsError, match=r"run.json benchmark.tasks is not a list of task names"):
        _ = load_scores(run).benchmark
    assert load_scores(SHIPPED_NV2).benchmark is None  # a table records none


def test_model_of_each_layout(tmp_path):
    run = write_run(tmp_path / "run", {"SciFact": {"ndcg_at_10": 0.6}}, model="org/m")
    assert (load_scores(run).model, load_scores(run).model_source) == ("org/m", "run.json")
    assert load_scores(run / "results").model == "org/m"
    bare = tmp_path / "bare"
    write_result(bare, "SciFact", {"ndcg_at_10": 0.6})
    assert load_scores(bare).model is None and load_scores(bare).model_text() == "unknown (no run.json)"
    two = tmp_path / "cache"
    write_result(two / "a__m" / "r1", "SciFact", {"ndcg_at_10": 0.6})
    write_result(two / "b__m" / "r1", "NFCorpus", {"ndcg_at_10": 0.3})
    with pytest.raises(ResultsError, match=r"holds results of several models \(a__m, b__m\)"):
        load_scores(two)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("SciFact,dev,default", r"SciFact is scored on split 'dev', the leaderboard's is 'test'; give the score"),
        ("STS22,test,de", r"STS22 is scored on subset 'de', the leaderboard's is 'en'; give the score of subset"),
    ],
)
def test_a_table_row_of_another_split_or_subset_is_refused(tmp_path, row, message):
    task = row.split(",")[0]
    metric = "ndcg_at_10" if task == "SciFact" else "cosine_spearman"
    path = tmp_path / "ref.csv"
    path.write_text(f"task,split,subset,metric,score\n{row},{metric},64.5\n")
    with pytest.raises(ResultsError, match=message):
        load_scores(path)
    path.write_text(f"task,split,subset,metric,score\n{task},,,{metric},64.5\n")  # empty cells: the leaderboard's
    assert load_scores(path).values == {task: 64.5}


def test_a_run_folder_holding_another_models_result_is_refused(tmp_path):
    """A result file copied in from another run names another model identity in its provenance: judging it as this
    run's model would be a silent wrong number (found by an adversarial try: a 'regression' of -83.57)."""
    run = write_run(tmp_path / "run", {"SciFact": {"ndcg_at_10": 0.6}, "NFCorpus": {"ndcg_at_10": 0.3}})
    for task, key in (("SciFact", "a" * 64), ("NFCorpus", "b" * 64)):
        path = run / "results" / f"{task}.json"
        data = json.loads(path.read_text())
        data["nvembed_eval"] = {"model": {"name": f"org/{key[0]}", "identity_key": key}}
        path.write_text(json.dumps(data))
    several = r"holds results of several models or model settings \(org/b in NFCorpus.json, org/a in SciFact.json\)"
    with pytest.raises(ResultsError, match=several + "; point at one run"):
        load_scores(run)


def test_a_json_nested_too_deeply_is_malformed(tmp_path):
    """Python's parser gives up on deep nesting with a RecursionError: read as any malformed file, never a traceback."""
    (tmp_path / "SciFact.json").write_text("[" * 200_000)
    with pytest.raises(ResultsError, match=r"malformed results file .*SciFact\.json"):
        load_scores(tmp_path / "SciFact.json")
    with pytest.raises(ResultsError, match=r"malformed results file .*SciFact\.json"):
        load_scores(tmp_path)  # a folder: named by its file name, SciFact is in the benchmark
