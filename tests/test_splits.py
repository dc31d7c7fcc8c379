from synthqa.records import Chunk
from synthqa.splits import EVAL, TRAIN, assign_splits, group_chunks


def chunks_for(pages: int, per_page: int = 3, source: str = "a.pdf") -> list[Chunk]:
    return [
        Chunk(id=f"{source}-{p}-{i}", source=source, page=p, index=i, text=f"{source} page {p} part {i}")
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
    dup = Chunk(id="dup", source="b.pdf", page=9, index=0, text="  a.pdf page 3 part 1 ")
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


def test_a_single_page_is_never_split():
    chunks = chunks_for(1, per_page=5)
    assert set(assign_splits(chunks, 0.15, 42).values()) == {TRAIN}
