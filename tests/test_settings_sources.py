"""One source of truth: the settings in mljob/settings.py are the ones the README, local.settings.json.example
and Terraform's app settings name."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mljob.settings import env_names

REPO = Path(__file__).resolve().parent.parent


def test_readme_settings_table_lists_every_setting():
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE)
    assert documented == env_names()


def test_local_settings_example_holds_the_settings_a_local_host_needs():
    values = json.loads((REPO / "local.settings.json.example").read_text())["Values"]
    host_settings = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage"}
    assert set(values) - host_settings <= set(env_names())
    assert {"DATA_PATH", "JOBS_PATH", "QUEUECONNECTIONSTRING", "QUEUE_NAME"} <= set(values)
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"


def test_cloud_settings_leave_out_the_dev_host_ones():
    assert set(env_names()) - set(env_names(cloud=True)) == {
        "MLJOB_FUNCTION_KEY",
        "MESSAGE_LEASE_SECONDS",
        "CORS_ALLOWED_ORIGINS",
    }
