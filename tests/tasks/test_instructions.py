"""Golden prompts: the exact prefix each side of each task gets, per instruction variant."""

from __future__ import annotations

import pytest
from mteb.types import PromptType

from nvembed_eval.errors import ConfigError
from nvembed_eval.io import conf_dir
from nvembed_eval.tasks.instructions import InstructionVariant, instruction_for, render_prefix
from nvembed_eval.tasks.specs import load_task_spec

NV_TEMPLATE = "Instruct: {instruction}\nQuery: "
SIDES = (None, "query", "document")


def prefixes(task: str, variant: str = "nv_embed_v2") -> dict[str | None, str]:
    spec = load_task_spec(task)
    return {side: render_prefix(instruction_for(spec, side, variant), NV_TEMPLATE) for side in SIDES}


def test_golden_retrieval_queries_only():
    assert prefixes("SciFact") == {
        None: "Instruct: Given a scientific claim, retrieve documents that support or refute the claim\nQuery: ",
        "query": "Instruct: Given a scientific claim, retrieve documents that support or refute the claim\nQuery: ",
        "document": "",
    }
    assert prefixes("MSMARCO")["query"] == (
        "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: "
    )


def test_golden_quora_both_sides():
    quora = (
        "Instruct: Given a question, retrieve questions that are semantically equivalent to the given question\nQuery: "
    )
    assert prefixes("QuoraRetrieval") == dict.fromkeys(SIDES, quora)


def test_golden_sts_and_summarization_every_text():
    assert prefixes("STSBenchmark") == dict.fromkeys(SIDES, "Instruct: Retrieve semantically similar text\nQuery: ")
    assert prefixes("STS17") == prefixes("STSBenchmark")
    assert prefixes("SummEval") == dict.fromkeys(
        SIDES, "Instruct: Given a news summary, retrieve other semantically similar summaries\nQuery: "
    )


def test_golden_classification_every_text_unverified():
    assert prefixes("Banking77Classification") == dict.fromkeys(
        SIDES, "Instruct: Given a online banking query, find the corresponding intents\nQuery: "
    )
    assert load_task_spec("Banking77Classification").instruction_verified is False


def test_golden_reranking_query_side_only():
    assert prefixes("AskUbuntuDupQuestions") == {
        None: "Instruct: Retrieve duplicate questions from AskUbuntu forum\nQuery: ",
        "query": "Instruct: Retrieve duplicate questions from AskUbuntu forum\nQuery: ",
        "document": "",
    }


def test_cqadupstack_subforums_use_the_parent_instruction():
    text = (
        "Instruct: Given a question, retrieve detailed question descriptions from Stackexchange that are duplicates "
        "to the given question\nQuery: "
    )
    assert prefixes("CQADupstackRetrieval")["query"] == text
    assert prefixes("CQADupstackGisRetrieval") == {None: text, "query": text, "document": ""}


def test_mteb_prompt_type_enum_is_accepted():
    spec = load_task_spec("SciFact")
    assert instruction_for(spec, PromptType.query, "nv_embed_v2") == instruction_for(spec, "query", "nv_embed_v2")
    assert instruction_for(spec, PromptType.document, "nv_embed_v2") is None


def test_variant_none_gives_no_prefix_anywhere():
    for task in ("SciFact", "QuoraRetrieval", "STSBenchmark", "Banking77Classification"):
        assert prefixes(task, "none") == dict.fromkeys(SIDES, "")


def test_variant_mteb_default_follows_mteb_task_prompts():
    # A dict prompt is read per side: SciFact has a query prompt only.
    assert prefixes("SciFact", "mteb_default") == {
        None: "",
        "query": "Instruct: Given a scientific claim, retrieve documents that support or refute the claim\nQuery: ",
        "document": "",
    }
    # No prompt in the metadata: the abstract task class's prompt, on every side.
    assert prefixes("STSBenchmark", "mteb_default") == dict.fromkeys(
        SIDES, "Instruct: Retrieve semantically similar text.\nQuery: "
    )
    # A string prompt applies to every side, reranking documents included.
    assert prefixes("AskUbuntuDupQuestions", "mteb_default")["document"] == (
        "Instruct: Retrieve duplicate questions from AskUbuntu forum\nQuery: "
    )
    # mteb's ArguAna prompt differs from NV-Embed-v2's.
    assert instruction_for(load_task_spec("ArguAna"), "query", "mteb_default") == (
        "Given a claim, find documents that refute the claim"
    )
    # The aggregate's subforums have no prompt of their own: the retrieval class prompt.
    assert instruction_for(load_task_spec("CQADupstackRetrieval"), "query", "mteb_default") == (
        "Retrieve text based on user query."
    )


def test_unknown_variant_lists_the_choices():
    with pytest.raises(ConfigError, match=r"instructions.variant=e5.*nv_embed_v2, none, mteb_default"):
        instruction_for(load_task_spec("SciFact"), "query", "e5")


def test_unknown_prompt_type_is_rejected():
    with pytest.raises(ConfigError, match="unknown prompt type 'passage'"):
        instruction_for(load_task_spec("SciFact"), "passage", "nv_embed_v2")


def test_render_prefix():
    assert render_prefix(None, NV_TEMPLATE) == ""
    assert render_prefix("", NV_TEMPLATE) == ""
    assert render_prefix("Do X", "{instruction}: ") == "Do X: "
    with pytest.raises(ConfigError, match=r"no \{instruction\} placeholder"):
        render_prefix("Do X", "Instruct: ")


def test_instructions_config_group_composes():
    from hydra import compose, initialize_config_dir

    for variant in InstructionVariant:
        assert (conf_dir() / "instructions" / f"{variant.value}.yaml").is_file()
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = compose(overrides=[f"+instructions={variant.value}"])
        assert cfg.instructions.variant == variant.value
        InstructionVariant(cfg.instructions.variant)
