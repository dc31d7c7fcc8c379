"""Which language a text is in: chunks get one, questions are checked against their chunk's.

py3langid (a naive Bayes classifier over byte n-grams, its 5 MB model shipped in the wheel, offline) limited
to the languages with a two-letter ISO 639-1 code, so the dataset card can list them. Measured on 116 short
policy questions in seven languages (``bench/bench_langid.py``, docs/languages.md): 99 % right at about
0.5 ms a question, where lingua (100 MB) and langdetect were no more accurate and 6-25 times slower.

Pure functions over strings, safe to call from several threads once the model is loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

UNDETERMINED = "und"  # ISO 639-2 "undetermined": too little text, or no language stands out
# A chunk's best language needs this probability, else the chunk is "und" and its questions are not checked.
# Questions of ~1000-character chunks score above 0.6; a list of names or a title page scores lower.
MIN_CHUNK_PROBABILITY = 0.5
# A question is in its chunk's language when the identifier gives that language at least this probability:
# not only when it is the identifier's first choice, so that a question it reads as a close neighbour
# (Spanish/Galician, Dutch/Afrikaans, Danish/Norwegian) is not dropped. Measured on the bench set: questions
# in the language score 0.56 or more, questions in another one 0.02 or less.
MIN_QUESTION_PROBABILITY = 0.1
UNDETERMINED_NAME = "the language of the chunk"  # what a prompt says when the language is not known

NAMES = {
    "af": "Afrikaans", "am": "Amharic", "an": "Aragonese", "ar": "Arabic", "as": "Assamese", "az": "Azerbaijani",
    "ba": "Bashkir", "be": "Belarusian", "bg": "Bulgarian", "bn": "Bengali", "br": "Breton", "bs": "Bosnian",
    "ca": "Catalan", "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "dz": "Dzongkha",
    "el": "Greek", "en": "English", "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque",
    "fa": "Persian", "fi": "Finnish", "fo": "Faroese", "fr": "French", "fy": "Western Frisian", "ga": "Irish",
    "gd": "Scottish Gaelic", "gl": "Galician", "gu": "Gujarati", "ha": "Hausa", "he": "Hebrew", "hi": "Hindi",
    "hr": "Croatian", "ht": "Haitian Creole", "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian",
    "ig": "Igbo", "is": "Icelandic", "it": "Italian", "ja": "Japanese", "jv": "Javanese", "ka": "Georgian",
    "kk": "Kazakh", "km": "Khmer", "kn": "Kannada", "ko": "Korean", "ku": "Kurdish", "ky": "Kyrgyz",
    "la": "Latin", "lb": "Luxembourgish", "lg": "Ganda", "ln": "Lingala", "lo": "Lao", "lt": "Lithuanian",
    "lv": "Latvian", "mg": "Malagasy", "mk": "Macedonian", "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi",
    "ms": "Malay", "mt": "Maltese", "my": "Burmese", "ne": "Nepali", "nl": "Dutch", "nn": "Norwegian Nynorsk",
    "no": "Norwegian", "oc": "Occitan", "om": "Oromo", "or": "Odia", "pa": "Punjabi", "pl": "Polish",
    "ps": "Pashto", "pt": "Portuguese", "qu": "Quechua", "ro": "Romanian", "ru": "Russian", "rw": "Kinyarwanda",
    "sa": "Sanskrit", "se": "Northern Sami", "si": "Sinhala", "sk": "Slovak", "sl": "Slovenian", "sn": "Shona",
    "so": "Somali", "sq": "Albanian", "sr": "Serbian", "st": "Southern Sotho", "sv": "Swedish", "sw": "Swahili",
    "ta": "Tamil", "te": "Telugu", "tg": "Tajik", "th": "Thai", "tk": "Turkmen", "tl": "Tagalog", "tr": "Turkish",
    "tt": "Tatar", "ug": "Uyghur", "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese",
    "vo": "Volapük", "wa": "Walloon", "xh": "Xhosa", "yo": "Yoruba", "zh": "Chinese", "zu": "Zulu",
}

_lock = threading.Lock()
_identifier = None
_arrays = None  # the identifier's automaton as numpy arrays, made on first use
_weights = None  # the identifier's class weights as C-ordered float32, made on first use


def detect(text: str) -> str:
    """The ISO 639-1 code of the language ``text`` is written in, or ``"und"`` when none stands out."""
    code, probability = _model().classify(text)
    return code if probability >= MIN_CHUNK_PROBABILITY else UNDETERMINED


def in_language(question: str, code: str | None) -> bool:
    """Whether ``question`` is written in the language ``code`` (always true for ``"und"`` or None)."""
    return bool(in_languages([question], [code])[0])


def in_languages(questions: Sequence[str], codes: Sequence[str | None]) -> np.ndarray:
    """``in_language`` for many questions at once: True where ``questions[i]`` is in ``codes[i]``.

    The probabilities are py3langid's ``rank`` (its byte n-gram walk, naive Bayes scores, softmax at
    temperature √bytes, script aliases folded), with the scoring of every question done as one sparse product
    instead of a gather, a sort and a dict per question: the language check was most of the filter stage at
    100k chunks. Sums run in another order, so a probability can differ from ``rank``'s in the 7th digit.
    """
    model = _model()
    ok = np.ones(len(questions), dtype=bool)
    rows = [i for i, code in enumerate(codes) if code not in (UNDETERMINED, None)]
    if not rows:
        return ok
    texts = [model._encode(questions[i]) for i in rows]
    lengths = np.array([len(t) for t in texts], dtype=np.int64)
    grams = _ngram_counts(model, texts, lengths)
    scores = np.asarray(grams @ _class_weights(model), dtype=np.float32) + model.nb_pc
    scores[grams.getnnz(axis=1) == 0] = 0.0  # no n-gram at all: every language equally likely, as rank has it
    scores *= (1.0 / np.sqrt(np.maximum(lengths, 1).astype(np.float64))).astype(np.float32)[:, None]
    np.exp(scores - scores.max(axis=1, keepdims=True), out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    for first, alias in model._alias_pairs:  # a script alias (srl → sr) counts for its label, as rank folds it
        scores[:, first] += scores[:, alias]
    column = {code: i for i, code in reversed(list(enumerate(model.nb_classes)))}  # a label's first column
    probability = scores[np.arange(len(rows)), [column.get(codes[i], -1) for i in rows]]
    known = np.array([codes[i] in column for i in rows], dtype=bool)  # a code it cannot return: never in it
    ok[rows] = known & (probability >= MIN_QUESTION_PROBABILITY)
    return ok


def name(code: str | None) -> str:
    """The English name of a language code, as a prompt says it ("French"); a phrase for ``"und"``/None."""
    if code in (UNDETERMINED, None):
        return UNDETERMINED_NAME
    return NAMES.get(code, f"the language with ISO 639-1 code {code!r}")


def label(code: str) -> str:
    """How a report or card shows a language: "French (fr)", "undetermined (und)"."""
    return f"{'undetermined' if code == UNDETERMINED else name(code)} ({code})"


def codes() -> list[str]:
    """Every code ``detect`` can return besides ``"und"``."""
    return sorted(set(_model().labels))


def _ngram_counts(model, texts: list[bytes], lengths: np.ndarray):
    """log(1 + count) of each byte n-gram feature in each text (a sparse texts × features matrix).

    py3langid walks its n-gram automaton one byte at a time in Python; here all texts walk it together, one
    numpy step per byte position, and the features met are counted as ``visit_counts`` counts them."""
    from scipy.sparse import coo_matrix

    nextmove, rowbase, output = _automaton(model)
    order = np.argsort(-lengths, kind="stable")  # longest first: the texts still walking are a prefix
    width = int(lengths[order[0]]) if len(texts) else 0
    padded = np.zeros((len(texts), max(width, 1)), dtype=np.uint8)
    for row, k in enumerate(order.tolist()):
        padded[row, : lengths[k]] = np.frombuffer(texts[k], dtype=np.uint8)
    walking = np.searchsorted(-lengths[order], -np.arange(width), side="right")  # texts longer than each column
    state = np.zeros(len(texts), dtype=np.int64)
    hit_rows, hit_features = [], []
    for column, live in enumerate(walking.tolist()):
        state[:live] = nextmove[rowbase[state[:live]] + padded[:live, column]]
        feature = output[state[:live]]
        found = np.flatnonzero(feature >= 0)
        hit_rows.append(order[found])
        hit_features.append(feature[found])
    rows = np.concatenate(hit_rows) if hit_rows else np.zeros(0, dtype=np.int64)
    features = np.concatenate(hit_features) if hit_features else np.zeros(0, dtype=np.int64)
    counts = coo_matrix((np.ones(len(rows), dtype=np.float32), (rows, features)),
                        shape=(len(texts), model.nb_ptc.shape[0])).tocsr()  # duplicates summed
    counts.data = np.log1p(counts.data)
    return counts


def _automaton(model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """py3langid's n-gram automaton as arrays (next state, row offset per state, feature per state or -1)."""
    global _arrays
    with _lock:
        if _arrays is None:
            _arrays = (np.asarray(model.tk_nextmove, dtype=np.int64),
                       np.asarray(model._rowbase, dtype=np.int64), np.asarray(model.tk_output, dtype=np.int64))
    return _arrays


def _class_weights(model) -> np.ndarray:
    """The model's per-feature class weights as float32 in row order, made once. Its own float16,
    column-major copy is converted by scipy on every product: 95 ms, which made the live check of each
    answer's questions (one product per question) the asking stage's bottleneck against a fast endpoint."""
    global _weights
    with _lock:
        if _weights is None:
            _weights = np.ascontiguousarray(model.nb_ptc, dtype=np.float32)
    return _weights


def _model():
    """py3langid's identifier, loaded once (about 2 s: the model is xz-compressed) and shared by threads."""
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            # Only languages with an ISO 639-1 code: the dataset card's `language:` takes those, and the
            # three-letter minor languages of the model only catch short texts of the big ones.
            identifier.set_languages([code for code in identifier.labels if len(code) == 2])
            _identifier = identifier
    return _identifier
