from pathlib import Path

import pytest

from synthqa.config import GenerateConfig
from synthqa.errors import ConfigError


def cfg(**kw):
    return GenerateConfig(inputs=("corpora",), out="out", **kw)


@pytest.mark.parametrize(
    "kw, needle",
    [
        (dict(chunk_size=0), "--chunk-size"),
        (dict(chunk_overlap=-1), "--chunk-overlap"),
        (dict(chunk_size=500, chunk_overlap=500), "smaller than --chunk-size 500"),
        (dict(eval_fraction=0.0), "--eval-fraction"),
        (dict(eval_fraction=1.0), "--eval-fraction"),
        (dict(questions_per_chunk=0), "--questions-per-chunk"),
        (dict(concurrency=0), "--concurrency"),
        (dict(temperature=3.0), "--temperature"),
        (dict(limit=0), "--limit"),
        (dict(response_format="xml"), "--response-format"),
        (dict(model=" "), "--model"),
    ],
)
def test_invalid_values_name_the_option(kw, needle):
    with pytest.raises(ConfigError, match=needle.replace("-", r"\-")):
        cfg(**kw)


def test_out_that_is_a_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        GenerateConfig(inputs=("x",), out=f)


def test_public_options_hold_no_password():
    opts = cfg(pdf_password="hunter2").public_options()
    assert "hunter2" not in repr(opts) and opts.pdf_password_given is True
    assert "hunter2" not in repr(cfg(pdf_password="hunter2"))


def test_base_url_credentials_never_reach_the_manifest_options():
    opts = cfg(base_url="https://user:s3cret@gw.example:8443/v1?api-key=K#frag").public_options()
    assert opts.base_url == "https://gw.example:8443/v1"


def test_out_under_a_file_is_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(ConfigError, match="which is a file"):
        GenerateConfig(inputs=("x",), out=f / "out")


def test_public_options_name_inputs_and_prompt_without_their_folders(tmp_path):
    prompt = tmp_path / "home" / "alice" / "my-prompt.txt"
    opts = GenerateConfig(inputs=(str(tmp_path / "home" / "alice" / "policies"), "corpora/NIST.pdf"),
                          prompt_path=prompt, out=tmp_path / "home" / "alice" / "out").public_options()
    assert opts.inputs == ("policies", "NIST.pdf") and opts.prompt_path == "my-prompt.txt"
    assert "alice" not in repr(opts)


def test_the_manifest_options_record_every_setting_of_a_run():
    """Options mirrors GenerateConfig: a new setting cannot be forgotten in the manifest (or leak a secret)."""
    from dataclasses import fields

    from synthqa.manifest import Options

    not_recorded = {"pdf_password", "out", "dry_run", "overwrite", "retry_failed", "push_to_hub", "private",
                    "remote_only", "batch", "wait", "poll_interval"}
    config_fields = {f.name for f in fields(GenerateConfig)}
    assert {f.name for f in fields(Options)} == (config_fields - not_recorded) | {"pdf_password_given"}


def test_run_settings_keep_absolute_paths_for_reruns(tmp_path):
    settings = GenerateConfig(inputs=("docs",), out="out", base_url="http://u:p@h/v1").run_settings()
    assert settings.inputs == (str(Path("docs").resolve()),) and settings.base_url_had_credentials
    assert not cfg(base_url="http://h:8000/v1").run_settings().base_url_had_credentials
