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
    assert "hunter2" not in repr(opts) and opts["pdf_password_given"] is True
    assert "hunter2" not in repr(cfg(pdf_password="hunter2"))


def test_base_url_credentials_never_reach_the_manifest_options():
    opts = cfg(base_url="https://user:s3cret@gw.example:8443/v1?api-key=K#frag").public_options()
    assert opts["base_url"] == "https://gw.example:8443/v1"


def test_out_under_a_file_is_refused(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(ConfigError, match="which is a file"):
        GenerateConfig(inputs=("x",), out=f / "out")
