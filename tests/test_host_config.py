"""host.json read as the Functions host reads it (mljob.host_config): one reader for function_app and `mljob serve`."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from mljob.errors import DevHostError, HostJsonError
from mljob.host_config import HostConfig
from mljob.queue_trigger import max_dequeue_count
from mljob.tools.devhost import DevHost

REPO = Path(__file__).resolve().parent.parent


def host_json(folder: Path, data: object) -> Path:
    path = folder / "host.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_keys_in_any_case_and_numbers_as_text(tmp_path: Path):
    path = host_json(
        tmp_path,
        {
            "Extensions": {
                "QUEUES": {"MaxDequeueCount": "7", "batchsize": 2, "MESSAGEENCODING": "None"},
                "Http": {"ROUTEPREFIX": "/v1/"},
            }
        },
    )
    config = HostConfig.load(path)
    assert (config.queues.max_dequeue_count, config.queues.batch_size, config.queues.message_encoding) == (7, 2, "none")
    assert config.queues.new_batch_threshold == (os.cpu_count() or 1) * 2 // 2  # the host's default for batchSize 2
    assert config.route_prefix == "v1"
    assert max_dequeue_count(path) == 7


def test_the_deployed_host_json(tmp_path: Path):
    queues = json.loads((REPO / "host.json").read_text(encoding="utf-8"))["extensions"]["queues"]
    config = HostConfig.load(REPO / "host.json")
    assert config.queues.max_dequeue_count == queues["maxDequeueCount"] == max_dequeue_count(REPO / "host.json")
    assert (config.queues.batch_size, config.queues.new_batch_threshold) == (queues["batchSize"], 0)
    assert (config.queues.visibility_timeout, config.queues.max_polling_interval) == (60, 2)
    assert HostConfig.load(tmp_path / "absent.json").queues.max_dequeue_count == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "is not valid JSON"),
        ([1, 2], "the top level must be an object, not [1, 2]"),
        ({"extensions": {"queues": [3]}}, "extensions.queues must be an object, not [3]"),
    ],
)
def test_a_file_that_is_not_host_json_is_named(tmp_path: Path, data: object, message: str):
    path = host_json(tmp_path, data)
    with pytest.raises(HostJsonError) as raised:
        HostConfig.load(path)
    assert str(raised.value).startswith(str(path)) and message in str(raised.value)


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ({"maxDequeueCount": 0}, "maxDequeueCount must be a whole number from 1 to 10000, not 0"),
        ({"batchSize": "lots"}, "batchSize must be a whole number from 1 to 32, not 'lots'"),
        ({"maxDequeueCount": True}, "maxDequeueCount must be a whole number from 1 to 10000, not True"),
        ({"messageEncoding": "utf8"}, "messageEncoding must be base64 or none, not 'utf8'"),
        ({"visibilityTimeout": "30s"}, "'30s' is not a time span like 00:00:30 or 00:00:00.500"),
    ],
)
def test_a_wrong_queue_value_is_named_in_words(tmp_path: Path, queues: dict, message: str):
    path = host_json(tmp_path, {"extensions": {"queues": queues}})
    with pytest.raises(HostJsonError) as raised:
        HostConfig.load(path)
    assert str(raised.value) == f"{path}: extensions.queues: {message}"


def test_function_app_counts_tries_against_the_default_when_host_json_is_wrong(tmp_path: Path, caplog):
    path = host_json(tmp_path, {"extensions": {"queues": {"maxDequeueCount": -1}}})
    with caplog.at_level(logging.WARNING, logger="mljob.queue_trigger"):
        assert max_dequeue_count(path) == 5
    [record] = caplog.records
    assert "maxDequeueCount must be a whole number from 1 to 10000, not -1" in record.getMessage()
    assert "the Functions default, 5" in record.getMessage()


def test_mljob_serve_refuses_a_wrong_host_json(tmp_path: Path):
    path = host_json(tmp_path, {"extensions": {"queues": {"batchSize": 64}}})
    with pytest.raises(DevHostError) as raised:
        DevHost(tmp_path, port=0)
    assert str(raised.value) == f"{path}: extensions.queues: batchSize must be a whole number from 1 to 32, not 64"
