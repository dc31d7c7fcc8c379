import random
from pathlib import Path

import pytest
from e2e import spans
from pdfmaker import make_pdf

from synthqa.chunks import split_pages
from synthqa.pdfs import load_pages
from synthqa.records import Chunk
from synthqa.splits import EVAL, TRAIN, assign_splits, group_chunks, shares_text


def chunks_for(pages: int, per_page: int = 3, source: str = "a.pdf", overlap: bool = True) -> list[Chunk]:
    """Chunks of short PDF pages; with ``overlap`` each begins with the last words of the one before it, as the
    splitter's chunks of one page do."""

    def tail(p: int, i: int) -> str:
        return f"the closing words of part {i} on page {p} of {source}, carried into the next part"

    return [
        Chunk(id=f"{source}-{p}-{i}", source=source, page=p, index=i,
              text=(tail(p, i - 1) + " " if overlap and i else "") + f"body of part {i}, " + tail(p, i))
        for p in range(1, pages + 1)
        for i in range(per_page)
    ]


def test_same_seed_same_split_other_seed_other_split():
    chunks = chunks_for(40)
    a = assign_splits(chunks, 0.15, 42)
    assert a == assign_splits(list(chunks), 0.15, 42)
    assert a != assign_splits(chunks, 0.15, 7)


def test_fraction_is_respected_within_one_page_group():
    chunks = chunks_for(40, per_page=3)
    a = assign_splits(chunks, 0.15, 42)
    n_eval = sum(1 for v in a.values() if v == EVAL)
    assert abs(n_eval - 0.15 * len(chunks)) <= 3
    assert set(a.values()) == {TRAIN, EVAL}


def test_a_page_never_straddles_the_splits():
    chunks = chunks_for(30, per_page=4) + chunks_for(20, per_page=2, source="b.pdf")
    a = assign_splits(chunks, 0.3, 1)
    for page in {(c.source, c.page) for c in chunks}:
        assert len({a[c.id] for c in chunks if (c.source, c.page) == page}) == 1


def test_pages_sharing_a_chunk_text_go_together():
    chunks = chunks_for(10, per_page=2)
    text = next(c.text for c in chunks if c.id == "a.pdf-3-1")
    dup = Chunk(id="dup", source="b.pdf", page=9, index=0, text=f"  {text} ".replace(" ", "  "))
    groups = group_chunks([*chunks, dup])
    together = next(g for g in groups if dup in g)
    assert {(c.source, c.page) for c in together} == {("a.pdf", 3), ("b.pdf", 9)}
    for seed in range(20):
        a = assign_splits([*chunks, dup], 0.3, seed)
        assert a["dup"] == a["a.pdf-3-1"]


def test_adding_a_document_keeps_most_assignments():
    base = chunks_for(60)
    a = assign_splits(base, 0.15, 42)
    b = assign_splits(base + chunks_for(10, source="new.pdf"), 0.15, 42)
    moved = sum(1 for c in base if a[c.id] != b[c.id])
    assert moved <= 0.1 * len(base)


def test_tiny_input_still_has_an_eval_split():
    chunks = chunks_for(2, per_page=1)
    assert set(assign_splits(chunks, 0.15, 42).values()) == {TRAIN, EVAL}


def test_a_single_section_is_never_split():
    chunks = chunks_for(1, per_page=5)  # one page of one section: a short PDF page
    assert set(assign_splits(chunks, 0.15, 42).values()) == {TRAIN}


def test_neighbours_that_share_no_text_may_go_to_either_side():
    # Paragraphs longer than the overlap: the splitter's chunks share nothing, so each is its own group.
    chunks = chunks_for(1, per_page=4, overlap=False)
    assert len(group_chunks(chunks)) == 4
    assert set(assign_splits(chunks, 0.25, 42).values()) == {TRAIN, EVAL}
    # Two that overlap stay together, the others are free.
    joined = [chunks[0], Chunk("x", "a.pdf", 1, 1, chunks[0].text[-60:] + " and more"), *chunks[2:]]
    assert sorted(map(len, group_chunks(joined))) == [1, 1, 2]


def test_shares_text_is_the_splitters_overlap():
    long_end = "the insurer pays flood damage above the deductible of the policy"  # 64 characters
    assert shares_text("alpha beta. " + long_end, long_end + " and more")
    assert not shares_text("alpha beta. " + long_end, "epsilon " + long_end)  # not at its start
    assert not shares_text("alpha beta\nArticle 3 – Durées", "Article 3 – Durées\ntext")  # a heading line


# --- documents without pages, and long pages: sections are the units (real files, real splitter) -----------

WORDS = ("policy employee record retention breach report vendor audit contract notice period board review "
         "consent data access storage deletion transfer security incident officer training request appeal "
         "complaint fee premium claim coverage exclusion deductible renewal cancellation refund benefit leave "
         "salary overtime travel expense approval manager director committee annual quarterly monthly written "
         "electronic signature archive backup encryption password device laptop phone network server cloud "
         "supplier invoice payment deadline penalty warning dismissal hearing evidence witness").split()


def prose(n_sentences: int, seed: int) -> list[str]:
    """Sentences of seeded random words: no 50-character span of one repeats in another by chance."""
    rng = random.Random(seed)
    return [f"Rule {seed}.{i}: the " + " ".join(rng.choice(WORDS) for _ in range(14)) + "." for i in range(n_sentences)]


def markdown_with_five_headings(path: Path) -> Path:
    parts = [f"## Part {h + 1}\n\n" + "\n".join(prose(12, seed=h)) for h in range(5)]
    path.write_text("# Staff handbook\n\n" + "\n\n".join(parts) + "\n", encoding="utf-8")
    return path


def text_of_forty_chunks(path: Path) -> Path:
    # One sentence a paragraph: short pieces, so neighbouring chunks carry overlap text.
    path.write_text("\n\n".join(prose(242, seed=100)) + "\n", encoding="utf-8")
    return path


def one_page_pdf(path: Path) -> Path:
    return make_pdf(path, [" ".join(prose(15, seed=7))])


@pytest.mark.parametrize(
    ("make", "name", "size", "overlap", "n_chunks"),
    [
        (markdown_with_five_headings, "handbook.md", 1000, 200, None),
        (text_of_forty_chunks, "manual.txt", 1000, 200, 40),
        (one_page_pdf, "leaflet.pdf", 500, 100, 6),
    ],
    ids=["md-five-headings", "txt-40-chunks", "pdf-one-page-6-chunks"],
)
def test_a_single_document_yields_both_splits_without_shared_text(tmp_path, make, name, size, overlap, n_chunks):
    chunks = list(split_pages(load_pages([make(tmp_path / name)]), size, overlap))
    if n_chunks is not None:
        assert len(chunks) == n_chunks
    assert len({c.page for c in chunks}) == 1  # one page: the old page-group rule put it all in train
    for fraction in (0.15, 0.3):
        assignment = assign_splits(chunks, fraction, 42)
        sides = {side: [c for c in chunks if assignment[c.id] == side] for side in (TRAIN, EVAL)}
        assert sides[TRAIN] and sides[EVAL]
        biggest = max(len(g) for g in group_chunks(chunks))
        assert abs(len(sides[EVAL]) - round(fraction * len(chunks))) <= biggest  # the fraction, ±1 group
        train_spans = set().union(*(spans(c.text) for c in sides[TRAIN]))
        for chunk in sides[EVAL]:
            assert not spans(chunk.text) & train_spans, chunk  # no chunk text, no 50-character overlap span
    # Neighbouring chunks of a section do share overlap text: the sections are what keeps the splits apart.
    assert any(spans(a.text) & spans(b.text) for a, b in zip(chunks, chunks[1:]) if a.section == b.section)


def test_markdown_sections_begin_at_headings(tmp_path):
    chunks = list(split_pages(load_pages([markdown_with_five_headings(tmp_path / "handbook.md")])))
    starts = [c for i, c in enumerate(chunks) if i == 0 or c.section != chunks[i - 1].section]
    assert len(starts) >= 3
    assert all(c.text.startswith("#") for c in starts)


def test_a_short_french_policy_of_two_chunks_gets_an_eval_split(tmp_path):
    # Issue 16's report: one French .txt, four articles, two chunks, and no eval split at all. Its articles
    # are longer than the overlap, so its chunks share no text and can go to either side.
    french = (Path(__file__).resolve().parents[1] / "bench" / "texts" / "policy-fr.md").read_text(encoding="utf-8")
    doc = tmp_path / "politique.txt"
    doc.write_text(french.split("## Article 5")[0].replace("## ", "").replace("# ", ""), encoding="utf-8")
    chunks = list(split_pages(load_pages([doc])))
    assert len(chunks) == 2
    assignment = assign_splits(chunks, 0.15, 42)
    assert sorted(assignment.values()) == [EVAL, TRAIN]
    assert not spans(chunks[0].text) & spans(chunks[1].text)


def _groups_by_hand(units: list[int], texts: list[int]) -> list[int]:
    """group_units the plain way: union the units of every two chunks with one text, number by first chunk."""
    parent = list(range(max(units) + 1))

    def root(u):
        while parent[u] != u:
            u = parent[u]
        return u

    first_unit_of_text = {}
    for unit, text in zip(units, texts):
        parent[root(unit)] = root(first_unit_of_text.setdefault(text, unit))
    numbers = {}
    return [numbers.setdefault(root(unit), len(numbers)) for unit in units]


def test_group_units_joins_runs_that_share_a_text_and_numbers_groups_by_first_chunk():
    import numpy as np

    from synthqa.splits import group_units

    rng = random.Random(7)
    for _ in range(500):
        n = rng.randint(1, 40)
        units = sorted(rng.randrange(n) for _ in range(n))
        units = [sorted(set(units)).index(u) for u in units]  # input order, every number used
        texts = [rng.randrange(rng.randint(1, n + 1)) for _ in range(n)]
        keys = np.array([t.to_bytes(16, "big") for t in texts], dtype="S16")
        assert group_units(np.array(units, dtype=np.int32), keys).tolist() == _groups_by_hand(units, texts)
    with pytest.raises(ValueError, match="input order"):
        group_units(np.array([0, 1, 0]), np.array([b"a", b"b", b"c"], dtype="S16"))


def _random_runs(rng: random.Random, max_chunks: int, unique_share: float, repeated: int) -> tuple[list, list]:
    """Units of up to ``max_chunks`` chunks in input order (every number used), and their text keys: a 64-bit
    key of its own for ``unique_share`` of them, else one of ``repeated`` shared keys."""
    n = rng.randint(1, max_chunks)
    units = sorted(rng.randrange(n) for _ in range(n))
    units = [sorted(set(units)).index(u) for u in units]
    texts = [rng.randrange(2**64) if rng.random() < unique_share else rng.randrange(repeated) for _ in range(n)]
    return units, texts


def test_group_units_takes_64_bit_keys_as_it_takes_byte_keys():
    import numpy as np

    from synthqa.splits import group_units

    rng = random.Random(11)
    for _ in range(200):
        units, texts = _random_runs(rng, 60, unique_share=0.6, repeated=4)
        wide = group_units(np.array(units), np.array([t.to_bytes(8, "big") for t in texts], dtype="S8"))
        assert group_units(np.array(units), np.array(texts, dtype=np.uint64)).tolist() == wide.tolist()
        assert wide.tolist() == _groups_by_hand(units, texts)


def _assign_by_hand(units: list[int], texts: list[int], unit_ranks: list[int], fraction: float) -> list[bool]:
    """assign_units the plain way: every group in rank order, taken while eval is short by half its size."""
    group = _groups_by_hand(units, texts)
    members: dict[int, list[int]] = {}
    for unit, g in zip(units, group):
        members.setdefault(g, []).append(unit)
    sizes = {g: len(m) for g, m in members.items()}
    target, in_eval, taken = round(fraction * len(units)), 0, set()
    for g in sorted(members, key=lambda g: (unit_ranks[min(members[g])], g)):
        if in_eval < target and (target - in_eval) * 2 >= sizes[g]:
            taken.add(g)
            in_eval += sizes[g]
    if not taken and len(members) > 1:
        taken.add(min(members, key=lambda g: (sizes[g], g)))
    return [g in taken for g in group]


def test_assign_units_fills_eval_group_by_group_in_rank_order():
    import numpy as np

    from synthqa.splits import assign_units

    rng = random.Random(5)
    for _ in range(300):
        units, texts = _random_runs(rng, 80, unique_share=0.7, repeated=5)
        ranks = [rng.randrange(2**64) for _ in range(units[-1] + 1)]
        fraction = rng.choice([0.1, 0.15, 0.3, 0.5])
        got = assign_units(np.array(units, dtype=np.int32), np.array(texts, dtype=np.uint64),
                           np.array(ranks, dtype=np.uint64), fraction)
        assert got.tolist() == _assign_by_hand(units, texts, ranks, fraction)


def test_run_keys_order_runs_as_the_whole_digest_did():
    """Runs are ranked by 64 bits of their SHA-256: the order (and so every split made before) is the one the
    whole 32-byte digest gave."""
    import hashlib

    from synthqa.splits import unit_key

    runs = [(seed, f"doc-{d}.pdf", page, index) for seed in (0, 42) for d in range(20) for page in range(1, 6)
            for index in (0, 3, 7)]
    digest = {run: hashlib.sha256("{}\0{}\0{}\0{}".format(*run).encode()).digest() for run in runs}
    assert sorted(runs, key=lambda run: unit_key(*run)) == sorted(runs, key=digest.__getitem__)
    assert all(0 <= unit_key(*run) < 2**64 for run in runs)
