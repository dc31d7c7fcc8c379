"""memory.release: freed memory that the C heap and Arrow's pool keep resident goes back to the system."""

import json
import subprocess
import sys
import textwrap

import pytest

# Run in a fresh interpreter: the test measures that process's own resident memory, which nothing else touches.
SCRIPT = textwrap.dedent("""
    import json, sys
    from synthqa import memory

    def anon_mb():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) >> 10

    if sys.argv[1] == "heap":
        # A freed 8 MB block raises glibc's mmap threshold, so the 1 MB blocks after it come from the heap;
        # the last one stays, so freeing the others leaves holes below the heap's top that free() keeps.
        bytes(8 << 20)
        blocks = [b"x" * (1 << 20) for _ in range(150)]
        last = blocks.pop()
        del blocks
    else:
        import pyarrow as pa
        table = pa.array(["x" * 1000] * 150_000)  # 150 MB of strings in Arrow's default pool
        del table
    before = anon_mb()
    memory.release()
    print(json.dumps({"before": before, "after": anon_mb()}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and glibc's malloc_trim")
@pytest.mark.parametrize("kind", ["heap", "arrow"])
def test_release_gives_freed_memory_back(kind):
    out = subprocess.run([sys.executable, "-c", SCRIPT, kind], capture_output=True, text=True, check=True).stdout
    mb = json.loads(out)
    # freed but resident before: at least 100 of the 150 MB; gone after
    assert mb["before"] - mb["after"] >= 100, mb
