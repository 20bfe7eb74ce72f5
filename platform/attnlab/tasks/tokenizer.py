"""Tokenizers (HF `tokenizers`): train a BERT-style WordPiece, or load a pretrained vocabulary.

Kinds:
- "wordpiece" (English): BertNormalizer (lowercase) + BertPreTokenizer + WordPiece, as BERT.
- "char" (Chinese): the same pipeline, whose normaliser puts spaces around every CJK character, so
  each one is its own token (as in bert-base-chinese); Latin runs inside Chinese text still get
  WordPieces. Characters get 90% of the vocabulary; rarer ones become [UNK].
Special tokens come first: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4. The post-processor writes
`[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` with token type ids 0 for `a` and 1 for `b [SEP]`.

Trained tokenizers are cached as tokenizer.json under `cache_dir` (default
$ATTNLAB_CACHE/tokenizers, else ~/.cache/attnlab/tokenizers), keyed by a sha256 of the training
texts, vocab size and kind, so a rerun on the same data loads instead of training.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import WordPiece

from attnlab.tasks.spec import DataError, TaskSpec, get_task

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CACHE_ENV = "ATTNLAB_CACHE"
TokenizerKind = Literal["wordpiece", "char"]
_FORMAT_VERSION = "attnlab-tokenizer-v2"  # bump when the training recipe changes (v2: canonical token ids)


@dataclass(frozen=True)
class SpecialIds:
    pad: int
    unk: int
    cls: int
    sep: int
    mask: int


def special_ids(tokenizer: Tokenizer) -> SpecialIds:
    ids = [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS]
    missing = [token for token, i in zip(SPECIAL_TOKENS, ids) if i is None]
    if missing:
        raise ValueError(f"tokenizer vocabulary lacks special tokens {missing}; need {list(SPECIAL_TOKENS)}")
    return SpecialIds(*(i for i in ids if i is not None))


def default_cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "attnlab") / "tokenizers"


def kind_for(spec: TaskSpec) -> TokenizerKind:
    return "char" if spec.language == "zh" else "wordpiece"


def _bert_pipeline(tokenizer: Tokenizer, lowercase: bool, chinese: bool) -> Tokenizer:
    # Accents are kept for Chinese (strip_accents=False); for English they follow `lowercase`, as in BERT.
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=False if chinese else None,
        lowercase=lowercase,
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


def _add_bert_post_processor(tokenizer: Tokenizer) -> Tokenizer:
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ValueError("tokenizer vocabulary lacks [CLS] or [SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return tokenizer


def train_tokenizer(texts: Sequence[str], vocab_size: int, kind: TokenizerKind) -> Tokenizer:
    """Train from scratch (no cache)."""
    if kind not in ("wordpiece", "char"):
        raise ValueError(f"tokenizer kind must be 'wordpiece' or 'char', got {kind!r}")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed {len(SPECIAL_TOKENS)}, got {vocab_size}")
    chinese = kind == "char"
    tokenizer = _bert_pipeline(Tokenizer(WordPiece(unk_token="[UNK]")), lowercase=True, chinese=chinese)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=1 if chinese else 2,
        special_tokens=list(SPECIAL_TOKENS),
        # Chinese: most of the budget goes to characters, the rest to Latin/digit WordPieces.
        limit_alphabet=int(0.9 * vocab_size) if chinese else 1000,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return _add_bert_post_processor(canonical_ids(tokenizer))


def canonical_ids(tokenizer: Tokenizer) -> Tokenizer:
    """Renumber a trained WordPiece vocabulary: the special tokens first (ids 0–4, as trained), then every other
    token in code-point order. The trainer numbers its subword tokens in hash-map order, which changes from process
    to process (huggingface/tokenizers#1794), and token ids index the embedding matrix: two trainings that learn
    the same tokens now give the same ids. Ties can still make it learn different tokens; `build_tokenizer`'s
    lock and cache make every run on one cache share one tokenizer, and records carry `vocabulary_hash`."""
    vocab = tokenizer.get_vocab(with_added_tokens=False)
    if [vocab.get(t) for t in SPECIAL_TOKENS] != list(range(len(SPECIAL_TOKENS))):
        raise ValueError(f"trained vocabulary does not start with {list(SPECIAL_TOKENS)}")
    order = [*SPECIAL_TOKENS, *sorted(t for t in vocab if t not in SPECIAL_TOKENS)]
    model = tokenizer.model
    tokenizer.model = WordPiece(vocab={t: i for i, t in enumerate(order)}, unk_token="[UNK]",
                                continuing_subword_prefix=model.continuing_subword_prefix,
                                max_input_chars_per_word=model.max_input_chars_per_word)
    return tokenizer


def content_hash(texts: Sequence[str], vocab_size: int, kind: str) -> str:
    digest = hashlib.sha256(f"{_FORMAT_VERSION}\0{kind}\0{vocab_size}\0{len(texts)}\0".encode())
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))  # length prefix: no two lists collide
        digest.update(encoded)
    return digest.hexdigest()


def cache_path(
    texts: Sequence[str], vocab_size: int, kind: TokenizerKind, cache_dir: str | Path | None
) -> Path:
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / f"{kind}-{vocab_size}-{content_hash(texts, vocab_size, kind)[:24]}" / "tokenizer.json"


def load_pretrained_tokenizer(path: str | Path) -> Tokenizer:
    """Load `tokenizer.json`, or a BERT `vocab.txt` (lowercasing per tokenizer_config.json, default on)."""
    path = Path(path).expanduser()
    if path.is_dir() and (path / "tokenizer.json").is_file():
        path = path / "tokenizer.json"
    if path.is_file() and path.suffix == ".json":
        return Tokenizer.from_file(str(path))
    vocab = path / "vocab.txt" if path.is_dir() else path
    folder = vocab.parent
    if not vocab.is_file():
        raise DataError(f"{path}: no tokenizer.json or vocab.txt found")
    lowercase = True
    config = folder / "tokenizer_config.json"
    if config.is_file():
        lowercase = bool(json.loads(config.read_text(encoding="utf-8")).get("do_lower_case", True))
    tokenizer = Tokenizer(WordPiece.from_file(str(vocab), unk_token="[UNK]"))
    return _add_bert_post_processor(_bert_pipeline(tokenizer, lowercase=lowercase, chinese=False))


def build_tokenizer(
    task: TaskSpec | str,
    train_texts: Iterable[str],
    vocab_size: int = 8000,
    cache_dir: str | Path | None = None,
    pretrained_dir: str | Path | None = None,
) -> Tokenizer:
    """A pretrained tokenizer if `pretrained_dir` is given, else one trained on `train_texts` (cached)."""
    if pretrained_dir is not None:
        return load_pretrained_tokenizer(pretrained_dir)
    spec = get_task(task)
    texts = [t for t in train_texts if t]
    if not texts:
        raise ValueError(f"{spec.name}: no training texts to build a tokenizer from")
    kind = kind_for(spec)
    path = cache_path(texts, vocab_size, kind, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One training per cache entry, even with several workers starting at once: the trainer is not deterministic
    # (huggingface/tokenizers#1794: ties broken in hash-map order), so two trainings can learn different
    # vocabularies, and every worker must use the one in the cache. The lock is released when the process dies.
    with open(path.with_name("train.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            try:
                return Tokenizer.from_file(str(path))
            except Exception:  # a truncated or stale cache entry: retrain and overwrite it
                pass
        tokenizer = train_tokenizer(texts, vocab_size, kind)
        tmp = path.with_name(f"tokenizer.{os.getpid()}.tmp")
        tokenizer.save(str(tmp))
        os.replace(tmp, path)  # atomic: a reader without the lock never sees a half-written file
        return tokenizer


def vocabulary_hash(tokenizer: Tokenizer) -> str:
    """A short fingerprint of a tokenizer's token → id mapping: two runs with different vocabularies (a fresh
    cache trains anew, see `build_tokenizer`) can be told apart in their records."""
    vocab = sorted(tokenizer.get_vocab(with_added_tokens=True).items())
    return hashlib.sha256(json.dumps(vocab, ensure_ascii=False).encode()).hexdigest()[:12]


class HasTokenizer:
    """Data modules that own a tokenizer (built in setup()) expose these two properties."""

    tokenizer: Tokenizer | None

    def _ready_tokenizer(self) -> Tokenizer:
        if self.tokenizer is None:
            raise RuntimeError("tokenizer is not ready: call setup() first")
        return self.tokenizer

    @property
    def special_ids(self) -> SpecialIds:
        return special_ids(self._ready_tokenizer())

    @property
    def tokenizer_vocab_size(self) -> int:
        """Size of the embedding table the model needs (may differ a little from `vocab_size`)."""
        return self._ready_tokenizer().get_vocab_size()
