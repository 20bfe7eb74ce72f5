from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer

from attnlab.tasks import tokenizer as tokenization
from attnlab.tasks.tokenizer import (
    SPECIAL_TOKENS,
    build_tokenizer,
    cache_path,
    load_pretrained_tokenizer,
    special_ids,
)

ENGLISH = [
    "The cat sat on the mat.",
    "A dog chased the cat across the garden.",
    "Cats and dogs are common household pets.",
    "The garden was quiet after the rain.",
] * 20
CHINESE = [
    "花呗支持高铁票支付吗",
    "为什么友付宝不支持花呗付款",
    "双十一花呗提额在哪",
    "借呗什么时候会取消",
] * 10


@pytest.fixture
def train_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts real trainings (a spy around train_tokenizer)."""
    calls: list[int] = []
    original = tokenization.train_tokenizer

    def spy(texts: list[str], vocab_size: int, kind: tokenization.TokenizerKind) -> Tokenizer:
        calls.append(vocab_size)
        return original(texts, vocab_size, kind)

    monkeypatch.setattr(tokenization, "train_tokenizer", spy)
    return calls


def test_english_wordpiece_with_bert_specials(tmp_path: Path) -> None:
    tok = build_tokenizer("glue/rte", ENGLISH, vocab_size=120, cache_dir=tmp_path)
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    assert tok.get_vocab_size() <= 120
    ids = special_ids(tok)
    pair = tok.encode("The CAT sat.", "Dogs!")
    assert (
        pair.tokens[0] == "[CLS]" and pair.tokens.count("[SEP]") == 2 and "cat" in pair.tokens
    )  # lowercased
    first_sep = pair.ids.index(ids.sep)
    assert pair.type_ids == [0] * (first_sep + 1) + [1] * (len(pair.ids) - first_sep - 1)
    single = tok.encode("the garden")
    assert single.ids[0] == ids.cls and single.ids[-1] == ids.sep and set(single.type_ids) == {0}


def test_chinese_is_one_token_per_character(tmp_path: Path) -> None:
    tok = build_tokenizer("clue/afqmc", CHINESE, vocab_size=200, cache_dir=tmp_path)
    assert tok.encode("花呗支付").tokens == ["[CLS]", "花", "呗", "支", "付", "[SEP]"]
    assert tok.encode("鑫").tokens[1] == "[UNK]"  # unseen character


def test_cache_hit_loads_instead_of_training(tmp_path: Path, train_calls: list[int]) -> None:
    first = build_tokenizer("glue/sst2", ENGLISH, vocab_size=100, cache_dir=tmp_path)
    path = cache_path(ENGLISH, 100, "wordpiece", tmp_path)
    assert path.is_file() and train_calls == [100]
    stamp = path.stat().st_mtime_ns
    second = build_tokenizer("glue/sst2", list(ENGLISH), vocab_size=100, cache_dir=tmp_path)
    assert train_calls == [100] and path.stat().st_mtime_ns == stamp
    assert second.get_vocab() == first.get_vocab()
    build_tokenizer("glue/sst2", ENGLISH, vocab_size=90, cache_dir=tmp_path)  # new key: trains again
    build_tokenizer("glue/sst2", ENGLISH[:-1], vocab_size=100, cache_dir=tmp_path)
    assert train_calls == [100, 90, 100]


def test_cache_dir_from_env_and_corrupt_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, train_calls: list[int]
) -> None:
    monkeypatch.setenv("ATTNLAB_CACHE", str(tmp_path))
    build_tokenizer("glue/sst2", ENGLISH, vocab_size=100)
    path = cache_path(ENGLISH, 100, "wordpiece", None)
    assert path.is_relative_to(tmp_path / "tokenizers") and path.is_file()
    path.write_text("{ truncated")
    build_tokenizer("glue/sst2", ENGLISH, vocab_size=100)
    assert len(train_calls) == 2 and Tokenizer.from_file(str(path)).get_vocab_size() > 0


def test_pretrained_vocab_txt_and_tokenizer_json(tmp_path: Path) -> None:
    trained = build_tokenizer("glue/rte", ENGLISH, vocab_size=120, cache_dir=tmp_path / "cache")
    vocab = sorted(trained.get_vocab().items(), key=lambda item: item[1])
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "vocab.txt").write_text(
        "".join(f"{token}\n" for token, _ in vocab), encoding="utf-8"
    )
    from_vocab = build_tokenizer("glue/rte", [], pretrained_dir=tmp_path / "bert")
    sentence = ("A dog sat in the garden.", "The cats are quiet.")
    assert from_vocab.encode(*sentence).ids == trained.encode(*sentence).ids
    assert from_vocab.encode(*sentence).type_ids == trained.encode(*sentence).type_ids
    (tmp_path / "fast").mkdir()
    trained.save(str(tmp_path / "fast" / "tokenizer.json"))
    assert load_pretrained_tokenizer(tmp_path / "fast").encode("cat").ids == trained.encode("cat").ids
    with pytest.raises(ValueError, match=r"no tokenizer\.json or vocab\.txt"):
        load_pretrained_tokenizer(tmp_path / "cache")


def test_rejects_empty_training_texts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no training texts"):
        build_tokenizer("glue/rte", ["", ""], cache_dir=tmp_path)


def test_trained_ids_are_canonical(tmp_path: Path) -> None:
    """Specials first, then every other token in code-point order: the ids do not depend on the hash-map order
    the trainer happened to use (huggingface/tokenizers#1794)."""
    tok = tokenization.train_tokenizer(ENGLISH, 120, "wordpiece")
    vocab = sorted(tok.get_vocab(with_added_tokens=False).items(), key=lambda kv: kv[1])
    tokens = [t for t, _ in vocab]
    assert [i for _, i in vocab] == list(range(len(vocab)))
    assert tokens[:5] == list(SPECIAL_TOKENS) and tokens[5:] == sorted(tokens[5:])
    assert tok.encode("the cat").tokens == ["[CLS]", "the", "cat", "[SEP]"]


def test_concurrent_builds_train_once_and_share_the_vocabulary(tmp_path: Path) -> None:
    """Two processes building the same tokenizer at once: one trains, the other waits and loads its file, so
    every worker of a study uses one vocabulary (each training can differ: the trainer is not deterministic)."""
    import subprocess
    import sys

    script = ("import sys; from attnlab.tasks.tokenizer import build_tokenizer, vocabulary_hash; "
              f"texts = {ENGLISH!r}; "
              "print(vocabulary_hash(build_tokenizer('glue/rte', texts, vocab_size=120, cache_dir=sys.argv[1])))")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    hashes = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert len(hashes) == 1 and all(hashes)
    assert len(list(tmp_path.rglob("tokenizer.json"))) == 1
