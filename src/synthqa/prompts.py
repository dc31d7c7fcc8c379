"""Prompt templates: a file with an optional system part, a line ``---``, and a user part.

Variables are ``string.Template`` placeholders: ``$chunk`` and ``$n_questions`` (both required),
``$language`` (optional: the chunk's language by name, "French") and ``$openers`` (optional: which word each
question should start with, chosen per chunk, see ``opener_hint``). A template that names ``$language`` has its
questions checked against the chunk's language; one without it (written before the variable existed, or
asking for questions in a fixed language on purpose) is sent as it is and not checked. Every problem with a
template is found when it is loaded, so a bad ``--prompt`` fails before any request is paid for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from string import Template

from .errors import PromptError
from .language import UNDETERMINED_NAME

VARIABLES = ("chunk", "n_questions", "language", "openers")
# The first words $openers rotates through. A small model asked with one prompt for every chunk starts nearly
# every question with "What" and the next with "How" whatever the prompt says; a different pair per chunk
# spreads them the way searchers' queries are spread. "What" stays one of them: it is a real opener. Wh-words
# and yes/no openers mostly alternate, so one chunk's pair is of two kinds. No "Who" or "When": forced on a
# chunk without a person or a date, the 0.5B model wrote "Who is the sensitive domain data?" (docs/queries.md).
OPENERS = ("How", "Can", "Why", "Does", "Which", "Is", "What")
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
DEFAULT_NAME = "default.txt"
SEPARATOR = "---"


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A loaded template. ``sha256`` is of the whole file text, so the manifest pins the exact prompt."""

    name: str
    system: str
    user: str
    sha256: str
    uses_language: bool = False  # it names $language, so questions are checked against the chunk's language
    uses_openers: bool = False  # it names $openers: the request differs per chunk beyond the chunk's text


def default_template_path() -> Path:
    """Where the default template lives: inside the installed package, else the checkout's ``prompts/``."""
    return bundled_template_path(DEFAULT_NAME)


def bundled_template_path(name: str) -> Path:
    """Where the bundled template ``name`` lives (the default, or a query style's)."""
    here = Path(__file__).resolve()
    for folder in (here.parent / "prompts", here.parents[2] / "prompts"):
        if (folder / name).is_file():
            return folder / name
    fix = " or pass --prompt FILE" if name == DEFAULT_NAME else ""
    raise PromptError(f"the bundled prompt {name} is missing from {here.parent / 'prompts'}: reinstall synthqa{fix}")


def load_template(path: Path | None = None) -> PromptTemplate:
    """Read and validate a template; ``None`` loads the default. Raises ``PromptError`` naming the problem."""
    path = Path(path) if path is not None else default_template_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"prompt template {path} does not exist: pass an existing file to --prompt") from None
    except IsADirectoryError:
        raise PromptError(f"prompt template {path} is a folder: pass a template file to --prompt") from None
    except UnicodeDecodeError:
        raise PromptError(f"prompt template {path} is not UTF-8 text: save it as UTF-8") from None
    except OSError as err:
        raise PromptError(f"cannot read prompt template {path}: {err.strerror or err}") from None
    if not text.strip():
        raise PromptError(f"prompt template {path} is empty: write a prompt with $chunk and $n_questions")
    system, user = _split(text)
    if not user.strip():
        raise PromptError(f"prompt template {path} has nothing after its '---' line: put the user prompt there")
    found: set[str] = set()
    for part, part_name in ((system, "system"), (user, "user")):
        found |= _identifiers(part, path, part_name)
    unknown = sorted(found - set(VARIABLES))
    if unknown:
        raise PromptError(
            f"prompt template {path} uses unknown variable ${unknown[0]}: only $chunk, $n_questions,"
            " $language and $openers exist"
            " (write $$ for a literal $)"
        )
    if "chunk" not in _identifiers(user, path, "user"):
        where = "its system part" if "chunk" in found else "it"
        raise PromptError(
            f"prompt template {path} lacks $chunk in its user part ({where} has none): add $chunk between"
            " lines <chunk> and </chunk>"
        )
    if "n_questions" not in found:
        raise PromptError(f"prompt template {path} lacks $n_questions: say how many questions to write with it")
    return PromptTemplate(
        name=path.stem, system=system, user=user, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        uses_language="language" in found, uses_openers="openers" in found,
    )


def render(template: PromptTemplate, *, chunk: str, n_questions: int,
           language: str | None = None) -> tuple[str, str]:
    """Return ``(system, user)`` with the variables filled in. The chunk cannot close its own delimiter.

    ``language`` is the chunk's language by name ("French"); unknown, ``$language`` says "the language of the
    chunk"."""
    values = {"chunk": chunk.replace("</chunk>", "</ chunk>"), "n_questions": str(n_questions),
              "language": language or UNDETERMINED_NAME,
              "openers": request_openers(template, chunk, n_questions, language)}
    return Template(template.system).substitute(values), Template(template.user).substitute(values)


def request_openers(template: PromptTemplate, chunk: str, n_questions: int, language: str | None) -> str:
    """What ``$openers`` says in one request ("" when ``template`` has no ``$openers``). The chunk's language
    counts only where the template names it: a template without ``$language`` asks in its own words."""
    if not template.uses_openers:
        return ""
    return opener_hint(chunk, n_questions, language if template.uses_language else None)


def openers_for(chunk: str, n_questions: int) -> tuple[str, ...]:
    """The words ``chunk``'s questions should start with: ``n_questions`` consecutive ``OPENERS`` from a place
    chosen by the chunk's text, so a rerun renders the same request (and the cache answers it)."""
    start = int.from_bytes(hashlib.sha256(chunk.encode("utf-8")).digest()[:8], "big") % len(OPENERS)
    return tuple(OPENERS[(start + i) % len(OPENERS)] for i in range(n_questions))


def opener_hint(chunk: str, n_questions: int, language: str | None = None) -> str:
    """The sentence ``$openers`` becomes: 'Start the first question with "Why" and the second with "Does".'

    The words are English; for a chunk in another language (``language`` by name) it asks only for different
    first words, as an English word would pull the questions out of their language."""
    if language not in (None, "English"):
        return "Start each question with a different word."
    words = openers_for(chunk, n_questions)
    if len(words) == 1:
        return f'Start the question with "{words[0]}".'
    parts = [f'the {_ordinal(i)} {"question " if i == 0 else ""}with "{w}"' for i, w in enumerate(words)]
    return f"Start {', '.join(parts[:-1])} and {parts[-1]}."


def _ordinal(i: int) -> str:
    return _ORDINALS[i] if i < len(_ORDINALS) else f"{i + 1}th"


def _split(text: str) -> tuple[str, str]:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == SEPARATOR:
            return "\n".join(lines[:i]).strip(), "\n".join(lines[i + 1 :]).strip()
    return "", text.strip()


def _identifiers(part: str, path: Path, part_name: str) -> set[str]:
    template = Template(part)
    for match in template.pattern.finditer(part):
        if match.group("invalid") is not None:
            line = part.count("\n", 0, match.start("invalid")) + 1
            raise PromptError(
                f"prompt template {path} has a stray '$' on line {line} of its {part_name} part:"
                " write $$ for a literal $, or use $chunk / $n_questions / $language"
            )
    return set(template.get_identifiers())
