from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from fakeserver import PROSE, FakeOpenAI, questions_for


def post(fake: FakeOpenAI, body: dict, key: str = "k") -> tuple[int, dict]:
    request = urllib.request.Request(f"{fake.base_url}/chat/completions", json.dumps(body).encode(),
                                     {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def ask_body(chunk: str, words: str = "Write 4 questions about it.") -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": f"{words}\n<chunk>\n{chunk}\n</chunk>"}]}


def test_plain_request_reads_n_from_the_prompt_and_reports_usage(fake_server):
    status, body = post(fake_server, ask_body("Flood cover starts after thirty days."))
    assert status == 200 and body["object"] == "chat.completion"
    content = json.loads(body["choices"][0]["message"]["content"])
    assert content == {"questions": questions_for("Flood cover starts after thirty days.", 4)}
    assert body["usage"]["prompt_tokens"] > 0 and fake_server.chunks_seen == {"Flood cover starts after thirty days.": 1}
    with urllib.request.urlopen(fake_server.base_url.removesuffix("/v1") + "/stats") as response:
        assert json.loads(response.read())["requests"] == 1


def test_wrong_key_gets_openais_401_body():
    with FakeOpenAI(api_key="good") as fake:
        status, body = post(fake, ask_body("x"), key="bad-key-1234")
        assert status == 401 and body["error"]["code"] == "invalid_api_key"
        assert post(fake, ask_body("x"), key="good")[0] == 200


def test_poison_chunk_and_unknown_fault_name():
    with FakeOpenAI(always_fail_substring="POISON") as fake:
        status, body = post(fake, ask_body("a POISON chunk"))
        assert status == 200 and body["choices"][0]["message"]["content"] == PROSE
    with pytest.raises(ValueError, match="unknown fault"):
        FakeOpenAI(faults={"explode": 1.0})
