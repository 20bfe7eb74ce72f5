"""CMRC 2018 / C3 parsing, answer recovery, span mapping through the windows, choice batches, baselines."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from attnlab.config import ConfigError, build_run_config
from attnlab.tasks import get_task
from attnlab.tasks.choice_data import ChoiceCollator, ChoiceQuestion, choice_sequence
from attnlab.tasks.clue_mrc import alignment_counts, from_hub, locate_answer
from attnlab.tasks.loading import load_examples
from attnlab.tasks.mrc_baselines import best_overlap_sentence, longest_choice, predict_position, run_baselines
from attnlab.tasks.span_data import best_spans, decode_span, encode_question, token_span, window_starts
from attnlab.tasks.tokenizer import special_ids, train_tokenizer


def test_locate_answer() -> None:
    context = "甲乙丙。甲乙丙丁。"
    assert locate_answer(context, "甲乙", 0) == ((0, 2), "exact")
    assert locate_answer(context, "甲乙", 3) == ((4, 6), "fixed")  # the occurrence nearest to answer_start
    assert locate_answer(context, "甲乙", -1) == ((0, 2), "fixed")
    assert locate_answer("甲乙 丙丁。", " 丙丁", 2) == ((3, 5), "exact")  # released with a leading space
    assert locate_answer(context, "戊", 0) == (None, "missing")


def test_cmrc_alignment_counts_match_the_release(data_root: Path) -> None:
    """221 of the train+dev answers have a bad answer_start: 21 + 7 are found near it, 193 dev answers
    (annotators' own words, answer_start −1) never occur in their context."""
    train = alignment_counts(load_examples("clue/cmrc2018", "train", data_root))
    dev = alignment_counts(load_examples("clue/cmrc2018", "validation", data_root))
    assert (train["answers"], train["answers_fixed"], train["answers_missing"]) == (10142, 21, 0)
    assert (dev["answers"], dev["answers_fixed"], dev["answers_missing"]) == (9657, 7, 193)
    assert train["answers_fixed"] + dev["answers_fixed"] + dev["answers_missing"] == 221
    assert train["questions_without_span"] == dev["questions_without_span"] == 0


def test_c3_parts_and_the_labelled_test(data_root: Path) -> None:
    dev = load_examples("clue/c3", "validation", data_root)
    assert len(dev) == 1825 + 1991 and {len(e["choices"]) for e in dev} == {2, 3, 4}
    assert all(0 <= e["label"] < len(e["choices"]) for e in dev)
    labelled = load_examples("clue/c3", "labelled_test1.0", data_root)
    unlabelled = load_examples("clue/c3", "test1.0", data_root)
    assert len(labelled) == len(unlabelled) == 3892 and all("label" in e for e in labelled)
    assert not any("label" in e for e in unlabelled)
    assert sorted((e["document"], e["question"]) for e in labelled) == sorted(
        (e["document"], e["question"]) for e in unlabelled)  # the same questions, now with answers
    chid = load_examples("clue/chid_fewclue", "validation", data_root)
    assert len(chid) == 202 and all(len(e["choices"]) == 7 and "[MASK]" in e["document"] for e in chid)


def test_hub_rows_become_the_same_examples() -> None:
    cmrc = from_hub(get_task("clue/cmrc2018"), {"id": "Q1", "context": "北京是首都。", "question": "首都？",
                                                "answers": {"text": ["北京"], "answer_start": [0]}}, True)
    assert cmrc["spans"] == [[0, 2]] and cmrc["alignment"] == ["exact"]
    c3 = from_hub(get_task("clue/c3"), {"id": 7, "context": ["男：好。", "女：嗯。"], "question": "谁？",
                                        "choice": ["男", "女"], "answer": "女"}, True)
    assert c3 == {"id": "7", "document": "男：好。\n女：嗯。", "question": "谁？", "choices": ["男", "女"], "label": 1}


def test_windows_cover_the_context() -> None:
    assert window_starts(10, 4, 3) == [0, 3, 6]  # 6 + 4 = 10: covered
    assert window_starts(3, 4, 3) == [0] and window_starts(0, 4, 3) == [0]
    offsets = [(0, 1), (1, 2), (3, 7), (7, 8)]  # a space at 2, a 4-character word at 3–7
    assert token_span(offsets, (1, 2)) == (1, 1) and token_span(offsets, (4, 6)) == (2, 2)
    assert token_span(offsets, (2, 3)) is None


def test_span_round_trip_on_real_dev_rows(data_root: Path) -> None:
    """For every dev question: its located gold answer lies wholly inside at least one window, and
    decoding the gold token positions gives back exactly the answer text whenever the answer's ends
    are token boundaries (all but Latin-word-internal ones)."""
    dev = load_examples("clue/cmrc2018", "validation", data_root)
    texts = list(dict.fromkeys(e["context"] for e in dev)) + [e["question"] for e in dev]
    tok = train_tokenizer(texts, 4000, "char")
    tok.no_truncation()
    ids = special_ids(tok)
    aligned = 0
    for index, example in enumerate(dev):
        ctx = tok.encode(example["context"], add_special_tokens=False)
        q = tok.encode(example["question"], add_special_tokens=False).ids[:48]
        windows = encode_question(example, index, q, ctx.ids, ctx.offsets, ids.cls, ids.sep, 256, 128)
        assert all(len(w.input_ids) <= 256 for w in windows)
        holding = [w for w in windows if w.start > 0]
        assert holding, example["id"]
        span = next(s for s in example["spans"] if s)
        answer = example["context"][span[0] : span[1]]
        for w in holding:
            text = decode_span(example, w, w.start, w.end)
            assert answer in text, (example["id"], answer, text)
            if w.offsets[w.start][0] == span[0] and w.offsets[w.end][1] == span[1]:
                assert text == answer
                aligned += 1
    assert aligned >= 0.97 * len(dev)


def test_best_span_is_valid_and_optimal() -> None:
    start = torch.tensor([[9.0, 0.0, 1.0, 5.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    end = torch.tensor([[9.0, 4.0, 0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    context = torch.tensor([[False, True, True, True, True, True], [False] * 6])
    score, s, e = best_spans(start, end, context, max_answer_len=3)
    # [CLS] (9 + 9) is not context; (3, 1) has end < start; (3, 5) has length 3: allowed → 5 + 3
    assert (s[0].item(), e[0].item()) == (3, 5) and score[0].item() == 8.0
    assert score[1].item() == float("-inf")
    _, s, e = best_spans(start, end, context, max_answer_len=2)
    assert (s[0].item(), e[0].item()) == (3, 4)  # 5 + 1 beats 5 + 0, 0 + 3 and 0 + 4 (end before start)


def test_choice_batch_with_2_3_and_4_choices() -> None:
    questions = [ChoiceQuestion([choice_sequence([7] * n, [8], [9] * n, 2, 3, 16, 6) for _ in range(k)], 1, i)
                 for i, (k, n) in enumerate([(2, 3), (4, 1), (3, 20)])]
    batch = ChoiceCollator(0)(questions)
    assert batch["input_ids"].shape == (9, 16) and batch["choice_mask"].tolist() == [
        [True, True, False, False], [True, True, True, True], [True, True, True, False]]
    # the long choice fills max_question_length (6) alone, so the question goes and the document is cut to 7
    assert batch["input_ids"][-1].tolist() == [2, *[7] * 7, 3, *[9] * 6, 3]
    assert batch["input_ids"][0].tolist() == [2, 7, 7, 7, 3, 8, 3, 9, 9, 9, 3, 0, 0, 0, 0, 0]
    assert batch["attention_mask"].sum(1).tolist() == [11, 11, 7, 7, 7, 7, 16, 16, 16]
    assert_close(batch["labels"], torch.tensor([1, 1, 1]))


def test_choice_sequence_keeps_the_choice_and_cuts_the_document() -> None:
    ids, types = choice_sequence(list(range(100, 150)), [8] * 10, [9] * 5, 2, 3, max_length=20,
                                 max_question_length=8)
    assert len(ids) == 20 and ids.count(9) == 5 and ids.count(8) == 2  # question cut to 8 − 5 − 1
    assert ids[:3] == [2, 100, 101] and ids[-1] == 3 and types == [0] * 11 + [1] * 9  # [CLS] 9 [SEP] | 8 [SEP]


def test_trivial_baselines(data_root: Path) -> None:
    assert best_overlap_sentence("谁发明了电话？", "电灯由爱迪生发明。电话由贝尔发明。") == "电话由贝尔发明。"
    assert longest_choice(["甲", "乙丙", "丁戊"]) == 1 and predict_position([3, 1], 3) == 1
    result = run_baselines("clue/c3", data_root, ["validation"])
    values = result["splits"]["validation"]["baselines"]
    assert 0.25 < values["longest_choice"]["accuracy"] < 0.40 and values["longest_choice"]["score"] == pytest.approx(
        100 * values["longest_choice"]["accuracy"])


def test_reading_config_fields_are_validated() -> None:
    base = {"model": {"max_len": 256}, "task": {"name": "clue/cmrc2018", "max_length": 256}}
    cfg = build_run_config(base)
    assert (cfg.task.doc_stride, cfg.task.max_answer_len, cfg.task.max_question_length) == (None, 64, 64)
    build_run_config({"task": {"name": "clue/cmrc2018"}})  # the defaults fit together at any max_length
    for bad, key in [({"doc_stride": 200}, "doc_stride"), ({"max_question_length": 260}, "max_question_length"),
                     ({"max_answer_len": 0}, "max_answer_len"), ({"objective": "classify"}, "objective")]:
        with pytest.raises(ConfigError, match=key):
            build_run_config({**base, "task": {**base["task"], **bad}})
    with pytest.raises(ConfigError, match="reading-comprehension"):
        build_run_config({"task": {"name": "glue/sst2", "objective": "span_extraction"}})


def test_oracle_logits_recover_the_dev_answers(data_root: Path) -> None:
    """The whole decoding path on real dev windows: logits peaked at the gold positions must give back
    the gold answers (EM ≈ 1; the few misses are answers whose ends fall inside a Latin word)."""
    from attnlab.tasks.mrc_metrics import cmrc_scores
    from attnlab.tasks.span_data import SpanDataModule, span_predictions

    dev = load_examples("clue/cmrc2018", "validation", data_root, max_examples=150, seed=0)
    tok = train_tokenizer([e["context"] for e in dev] + [e["question"] for e in dev], 3000, "char")
    dm = SpanDataModule("clue/cmrc2018", data_root, tokenizer=tok, max_length=128, max_question_length=32,
                        eval_batch_size=64, max_eval_examples=150)
    dm.prepare_eval_split("validation")
    assert dm.doc_stride == (128 - 32 - 3) // 2 and dm.examples["validation"] == dev
    candidates = []
    for batch in dm.eval_dataloader("validation"):
        rows = torch.arange(len(batch["example"]))
        start = torch.zeros(batch["input_ids"].shape)
        end = torch.zeros(batch["input_ids"].shape)
        start[rows, batch["start_positions"]] = 10.0  # windows without the answer peak at [CLS]: not context
        end[rows, batch["end_positions"]] = 10.0
        score, s, e = best_spans(start, end, batch["context_mask"], max_answer_len=64)
        candidates += zip(batch["example"].tolist(), score.tolist(), batch["offsets"][rows, s, 0].tolist(),
                          batch["offsets"][rows, e, 1].tolist())
    predictions = span_predictions(dev, candidates)
    scores = cmrc_scores(predictions, [e["answers"] for e in dev])
    assert scores["exact_match"] >= 0.97 and scores["char_f1"] >= 0.99
    assert dm.data_stats["data/validation_questions"] == 150
