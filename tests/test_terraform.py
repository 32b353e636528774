"""Offline checks of the Azure infrastructure in Terraform/ (parsed with python-hcl2; no provider, no Azure).

`terraform fmt -check` runs only where a terraform binary is on PATH. checkov runs separately (scripts/checkov.sh):
its bc-python-hcl2 would replace the `hcl2` module imported here.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import hcl2
import pytest

from mljob.settings import Settings, env_names

ROOT = Path(__file__).resolve().parent.parent
TF_DIR = ROOT / "Terraform"
TF_FILES = sorted(TF_DIR.glob("*.tf"))

# Settings read only by `mljob serve`, the local development host: in Azure the Functions host checks function keys
# and leases queue messages itself, so they do not belong in the function app. mljob/settings.py has no marker for
# them yet; once its field metadata carries "local_only": True, the marker is used instead of these two names.
_MARKED = {f.metadata["env"] for f in fields(Settings) if f.metadata.get("local_only")}
DEV_HOST_ONLY = _MARKED or {"MLJOB_FUNCTION_KEY", "MESSAGE_LEASE_SECONDS"}
CLOUD_SETTINGS = [name for name in env_names() if name not in DEV_HOST_ONLY]

EXPECTED_RESOURCES = {
    ("azurerm_resource_group", "main"),
    ("azurerm_storage_account", "main"),
    ("azurerm_storage_account", "files"),
    ("azurerm_storage_account_queue_properties", "main"),
    ("azurerm_storage_queue", "jobs"),
    ("azurerm_storage_queue", "poison"),
    ("azurerm_storage_share", "main"),
    ("azurerm_storage_share_directory", "data"),
    ("azurerm_storage_share_directory", "jobs"),
    ("azurerm_log_analytics_workspace", "main"),
    ("azurerm_application_insights", "main"),
    ("azurerm_service_plan", "main"),
    ("azurerm_linux_function_app", "main"),
}
EXPECTED_VARIABLES = {
    "project", "env", "location", "plan_sku", "share_quota_gb", "mount_path", "python_version",
    "queue_name", "max_input_genes", "max_input_bytes", "lease_stale_seconds", "log_retention_days", "tags",
    # scale (defaults from docs/capacity.md) and the share's tier
    "maximum_elastic_worker_count", "app_scale_limit", "elastic_instance_minimum", "pre_warmed_instance_count",
    "share_tier",
}  # fmt: skip
EXPECTED_OUTPUTS = {"AZRG", "AZSA", "AZFN", "share_name", "share_account", "function_app_hostname", "enqueue_url"}


# --- reading python-hcl2's output -------------------------------------------------------------------------------------
# python-hcl2 8.x (pyproject: >=8.1,<9) keeps the quotes of block labels, keys and string values, wraps expressions in
# "${...}" and adds "__is_block__"/"__comments__" entries; 8.1.0-8.1.1 give booleans as the strings true/false.
# All of it is reduced to plain keys, unquoted strings and real booleans; expressions stay "${...}". Versions before 8
# drop the quotes of strings inside expressions (contains([EP1, EP2], ...)), which the condition tests cannot read.


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {_unquote(k): _clean(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value, _unquote(value))  # a quoted "true" stays a string
    return value


def _expr(value: str) -> str:
    """The expression inside "${...}" when the whole value is one interpolation; else the value itself."""
    if not value.startswith("${"):
        return value
    depth = 0
    for i, char in enumerate(value):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return value[2:i] if i == len(value) - 1 else value
    return value


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return _clean(hcl2.load(fh))


@pytest.fixture(scope="module")
def tf() -> dict[str, Any]:
    """All .tf files merged: resources by (type, name), variables, outputs, locals, provider, terraform."""
    merged: dict[str, list[Any]] = {}
    for path in TF_FILES:
        for key, blocks in _load(path).items():
            merged.setdefault(key, []).extend(blocks)
    resources = {(rtype, name): body for block in merged.get("resource", []) for rtype, named in block.items()
                 for name, body in named.items()}  # fmt: skip
    return {
        "resources": resources,
        "data": merged.get("data", []),
        "variables": {name: body for block in merged.get("variable", []) for name, body in block.items()},
        "outputs": {name: body for block in merged.get("output", []) for name, body in block.items()},
        "locals": {k: v for block in merged.get("locals", []) for k, v in block.items()},
        "provider": merged.get("provider", []),
        "terraform": merged.get("terraform", []),
    }


def _one(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    assert isinstance(blocks, list) and len(blocks) == 1, blocks
    return blocks[0]


def _default(name: str) -> Any:
    field = next(f for f in fields(Settings) if f.metadata["env"] == name)
    assert field.default is not MISSING
    return field.default


# --- a tiny evaluator for the validation and precondition conditions ------------------------------------------------
# It understands exactly what the .tf files use: can(regex(...)), length, contains, floor, var./local. references,
# comparisons, &&, || and !, and one (unnested) `cond ? a : b`. Anything else makes it fail loudly, so a new kind of
# condition gets a test, not a pass.

_FUNCTIONS = {
    "regex": lambda pattern, text: re.search(pattern, text).group(0),  # Terraform's regex errors when nothing matches
    "length": len,
    "contains": lambda items, item: item in items,
    "floor": math.floor,
    "join": lambda separator, items: separator.join(items),
}
_ALLOWED_WORDS = {"and", "or", "not", "lambda", "True", "False", "can", "if", "else", *_FUNCTIONS}


def _can(thunk) -> bool:
    try:
        thunk()
    except Exception:
        return False
    return True


def _evaluate(condition: str, values: dict[str, Any]) -> bool:
    """Evaluate an HCL condition; `values` maps "var.x" / "local.y" to Python values."""
    return bool(_value(condition, values))


def _value(expression: str, values: dict[str, Any]) -> Any:
    """The value of an HCL expression made of what _evaluate understands."""
    text = _expr(expression)
    namespace: dict[str, Any] = {"can": _can, **_FUNCTIONS}

    def literal(match: re.Match[str]) -> str:
        key = f"_s{len(namespace)}"
        namespace[key] = match.group(1).replace('\\"', '"').replace("\\\\", "\\")
        return key

    text = re.sub(r'"((?:[^"\\]|\\.)*)"', literal, text)

    def reference(match: re.Match[str]) -> str:
        key = f"_r{len(namespace)}"
        namespace[key] = values[match.group(0)]
        return key

    text = re.sub(r"\b(?:var|local)\.[a-z_][a-z0-9_]*", reference, text)
    text = text.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"!(?!=)", " not ", text)
    text = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", text))
    if "?" in text:  # string literals are out of the text by now: this is HCL's conditional operator
        test, _, branches = text.partition("?")
        chosen, colon, other = branches.partition(":")
        assert colon and "?" not in branches, f"the test's evaluator reads one unnested `c ? a : b`: {expression!r}"
        text = f"({chosen}) if ({test}) else ({other})"
    text = text.replace("can(", "can(lambda: ")
    unknown = {w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text) if w not in _ALLOWED_WORDS and w not in namespace}
    assert not unknown, f"the test's evaluator does not know {sorted(unknown)} in {expression!r}"
    # The names go in the globals: the lambdas made for can() look their names up there.
    return eval(text, {"__builtins__": {}, **namespace})


def _validations(tf: dict[str, Any], name: str) -> list[str]:
    return [v["condition"] for v in tf["variables"][name].get("validation", [])]


def _accepts(tf: dict[str, Any], name: str, value: Any) -> bool:
    return all(_evaluate(c, {f"var.{name}": value}) for c in _validations(tf, name))


def _render(template: str, tf: dict[str, Any], variables: dict[str, Any]) -> str:
    """A local's string template with ${var.x} and ${local.y} filled in."""

    def fill(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        if kind == "var":
            return str(variables[name])
        return _render(tf["locals"][name], tf, variables)

    rendered = re.sub(r"\$\{(var|local)\.([a-z_][a-z0-9_]*)\}", fill, template)
    assert "${" not in rendered, f"cannot render {template!r}"
    return rendered


# --- files ---------------------------------------------------------------------------------------------------------


def test_terraform_folder_has_its_files():
    names = {p.name for p in TF_DIR.iterdir()}
    assert {"versions.tf", "main.tf", "variables.tf", "outputs.tf", "example.tfvars", "README.md"} <= names


@pytest.mark.parametrize("path", [*TF_FILES, TF_DIR / "example.tfvars"], ids=lambda p: p.name)
def test_every_file_parses(path):
    assert _load(path), f"{path.name} parsed to nothing"


def test_versions(tf):
    terraform = _one(tf["terraform"])
    assert terraform["required_version"] == ">= 1.5"
    azurerm = _one(terraform["required_providers"])["azurerm"]
    assert azurerm["source"] == "hashicorp/azurerm"
    assert re.fullmatch(r"~> 4\.\d+", azurerm["version"]), azurerm["version"]
    assert any("azurerm" in block for block in tf["provider"])


# --- resources, variables, outputs ----------------------------------------------------------------------------------


def test_resources_present(tf):
    assert EXPECTED_RESOURCES <= set(tf["resources"]), EXPECTED_RESOURCES - set(tf["resources"])


def test_variables_present_and_validated(tf):
    assert set(tf["variables"]) >= EXPECTED_VARIABLES, EXPECTED_VARIABLES - set(tf["variables"])
    unvalidated = {name for name, body in tf["variables"].items() if not body.get("validation")}
    assert unvalidated <= {"tags"}, f"variables without a validation block: {sorted(unvalidated)}"
    for name, body in tf["variables"].items():
        assert body.get("description"), f"variable {name} has no description"


def test_variable_defaults(tf):
    variables = tf["variables"]
    assert "default" not in variables["env"], "env must be chosen for every environment"
    expected = {
        "project": "geneplexus",
        "plan_sku": "EP2",
        "mount_path": "/mnt/geneplexus",
        "python_version": "3.11",
        "queue_name": _default("QUEUE_NAME"),
        "max_input_genes": _default("MAX_INPUT_GENES"),
        "max_input_bytes": _default("MAX_INPUT_BYTES"),
        "lease_stale_seconds": _default("LEASE_STALE_SECONDS"),
        "job_timeout_seconds": _default("JOB_TIMEOUT_SECONDS"),
        "job_memory_mb": _default("JOB_MEMORY_MB"),
        "preload": "",  # none, as in the code
        "fast_path": _default("FAST_PATH"),
        "web_wait_seconds": _default("WEB_WAIT_SECONDS"),
        "web_max_waiting": _default("WEB_MAX_WAITING"),
        "cors_allowed_origins": [],  # no origin until one is named
        # scale: benchmarks/capacity.py's figures (tests/test_capacity.py checks that the model still gives these)
        "maximum_elastic_worker_count": 16,
        "app_scale_limit": 16,
        "elastic_instance_minimum": 1,
        "pre_warmed_instance_count": 1,
        "share_tier": "Standard",
    }
    assert {name: variables[name]["default"] for name in expected} == expected
    for name in ("plan_sku", "maximum_elastic_worker_count", "app_scale_limit", "elastic_instance_minimum",
                 "pre_warmed_instance_count", "share_tier"):  # fmt: skip
        assert "docs/capacity.md" in variables[name]["description"], f"{name}: say why its default (docs/capacity.md)"
    for name, body in variables.items():
        if "default" in body and body.get("validation"):
            assert _accepts(tf, name, body["default"]), f"the default of {name} fails its own validation"


def test_outputs(tf):
    outputs = tf["outputs"]
    assert set(outputs) >= EXPECTED_OUTPUTS, EXPECTED_OUTPUTS - set(outputs)
    assert _expr(outputs["AZRG"]["value"]) == "azurerm_resource_group.main.name"
    assert _expr(outputs["AZFN"]["value"]) == "azurerm_linux_function_app.main.name"
    assert _expr(outputs["share_name"]["value"]) == "azurerm_storage_share.main.name"
    assert _expr(outputs["function_app_hostname"]["value"]) == "azurerm_linux_function_app.main.default_hostname"
    assert outputs["enqueue_url"]["value"] == "https://${azurerm_linux_function_app.main.default_hostname}/api/enqueue"
    # AZSA is the account that holds the queue (the predecessor's README built the string from another account).
    assert _expr(outputs["AZSA"]["value"]) == "azurerm_storage_account.main.name"
    queue = tf["resources"][("azurerm_storage_queue", "jobs")]
    assert _expr(queue["storage_account_id"]) == "azurerm_storage_account.main.id"
    for name, body in outputs.items():
        assert not body.get("sensitive"), f"output {name} is a secret: get secrets with the Azure CLI instead"


# --- the function app ----------------------------------------------------------------------------------------------


def test_function_app_security(tf):
    app = tf["resources"][("azurerm_linux_function_app", "main")]
    assert _one(app["identity"])["type"] == "SystemAssigned"
    assert app["https_only"] is True
    assert app.get("ftp_publish_basic_authentication_enabled") is False
    site = _one(app["site_config"])
    assert site["minimum_tls_version"] == "1.2"
    assert site["scm_minimum_tls_version"] == "1.2"
    assert site["ftps_state"] == "Disabled"
    assert site.get("remote_debugging_enabled", False) is False
    assert _expr(_one(site["application_stack"])["python_version"]) == "var.python_version"
    insights = _expr(site["application_insights_connection_string"])
    assert insights == "azurerm_application_insights.main.connection_string"
    # the web app calls gpz-convert-ids and gpz-ml from the browser: the platform's CORS, origins from a variable
    cors = _one(site["cors"])
    assert _expr(cors["allowed_origins"]) == "var.cors_allowed_origins" and cors["support_credentials"] is False


def test_plan_is_linux_elastic_premium(tf):
    plan = tf["resources"][("azurerm_service_plan", "main")]
    assert plan["os_type"] == "Linux"
    assert _expr(plan["sku_name"]) == "var.plan_sku"
    assert _expr(plan["maximum_elastic_worker_count"]) == "var.maximum_elastic_worker_count"
    app = tf["resources"][("azurerm_linux_function_app", "main")]
    assert _expr(app["service_plan_id"]) == "azurerm_service_plan.main.id"
    insights = tf["resources"][("azurerm_application_insights", "main")]
    assert _expr(insights["workspace_id"]) == "azurerm_log_analytics_workspace.main.id"


def test_health_check_uses_the_anonymous_health_route(tf):
    site = _one(tf["resources"][("azurerm_linux_function_app", "main")]["site_config"])
    assert site["health_check_path"] == "/api/health"
    assert 2 <= site["health_check_eviction_time_in_min"] <= 10
    # The platform's health probe sends no function key: the route must stay ANONYMOUS, or every instance is evicted.
    source = (ROOT / "function_app.py").read_text(encoding="utf-8")
    assert re.search(r'route="health".*auth_level=func\.AuthLevel\.ANONYMOUS', source), "health must stay anonymous"


def test_share_is_mounted(tf):
    app = tf["resources"][("azurerm_linux_function_app", "main")]
    mount = _one(app["storage_account"])
    assert mount["type"] == "AzureFiles"
    assert _expr(mount["mount_path"]) == "var.mount_path"
    assert _expr(mount["share_name"]) == "azurerm_storage_share.main.name"
    assert _expr(mount["account_name"]) == "local.share_account_name"
    assert _expr(mount["access_key"]) == "local.share_account_key"
    share = tf["resources"][("azurerm_storage_share", "main")]
    assert _expr(share["quota"]) == "var.share_quota_gb"
    assert _expr(share["storage_account_id"]) == "local.share_account_id"
    assert _expr(tf["outputs"]["share_account"]["value"]) == "local.share_account_name"


def _premium(tf: dict[str, Any], tier: str) -> bool:
    return bool(_value(tf["locals"]["premium_share"], {"var.share_tier": tier}))


@pytest.mark.parametrize("tier", ["Standard", "Premium"])
def test_share_account_follows_the_tier(tf, tier):
    """Standard: the share is in the main account (queue, host storage). Premium: in its own FileStorage account,
    created only then; the queue and the app's own storage stay on the main account either way."""
    premium = _premium(tf, tier)
    assert premium is (tier == "Premium")
    files = tf["resources"][("azurerm_storage_account", "files")]
    assert _value(files["count"], {"local.premium_share": premium}) == (1 if premium else 0)
    for attribute in ("id", "name", "primary_access_key"):
        local = {"id": "share_account_id", "name": "share_account_name", "primary_access_key": "share_account_key"}
        match = re.fullmatch(r"(\S+) \? (\S+) : (\S+)", _expr(tf["locals"][local[attribute]]))
        assert match, tf["locals"][local[attribute]]
        test, if_premium, if_standard = match.groups()
        assert test == "local.premium_share"
        assert if_premium == f"azurerm_storage_account.files[0].{attribute}"
        assert if_standard == f"azurerm_storage_account.main.{attribute}"
    app = tf["resources"][("azurerm_linux_function_app", "main")]
    assert _expr(app["storage_account_name"]) == "azurerm_storage_account.main.name"
    assert _expr(app["storage_account_access_key"]) == "azurerm_storage_account.main.primary_access_key"
    settings = app["app_settings"]
    assert _expr(settings["QUEUECONNECTIONSTRING"]) == "azurerm_storage_account.main.primary_connection_string"
    # a premium share is provisioned at 100 GiB at least
    precondition = _one(_one(tf["resources"][("azurerm_storage_share", "main")]["lifecycle"])["precondition"])
    for quota, ok in ((100, True), (99, not premium), (1, not premium), (5000, True)):
        values = {"local.premium_share": premium, "var.share_quota_gb": quota}
        assert _evaluate(precondition["condition"], values) is ok, (tier, quota)


def test_premium_files_account(tf):
    files = tf["resources"][("azurerm_storage_account", "files")]
    assert files["account_kind"] == "FileStorage" and files["account_tier"] == "Premium"
    assert files["account_replication_type"] == "LRS"
    assert files["https_traffic_only_enabled"] is True and files["min_tls_version"] == "TLS1_2"
    assert files["allow_nested_items_to_be_public"] is False and files["local_user_enabled"] is False
    assert files["infrastructure_encryption_enabled"] is True
    assert _one(_one(files["share_properties"])["retention_policy"])["days"] == 7
    # the standard account's share gets 20,000 requests/s instead of 1,000 (docs/capacity.md)
    assert tf["resources"][("azurerm_storage_account", "main")]["large_file_share_enabled"] is True


def test_share_folders_are_created_from_the_path_locals(tf):
    """data/ and jobs/ exist after apply (/api/health answers 503 without them), named by the locals that build
    DATA_PATH and JOBS_PATH."""
    for folder in ("data", "jobs"):
        directory = tf["resources"][("azurerm_storage_share_directory", folder)]
        assert _expr(directory["name"]) == f"local.{folder}_dir"
        assert tf["locals"][f"{folder}_dir"] == folder
        assert _expr(directory["storage_share_url"]) == "azurerm_storage_share.main.url"
        assert tf["locals"][f"{folder}_path"] == f"${{var.mount_path}}/${{local.{folder}_dir}}"
    settings = tf["resources"][("azurerm_linux_function_app", "main")]["app_settings"]
    assert _expr(settings["DATA_PATH"]) == "local.data_path" and _expr(settings["JOBS_PATH"]) == "local.jobs_path"


def test_scale_settings_are_wired(tf):
    app = tf["resources"][("azurerm_linux_function_app", "main")]
    site = _one(app["site_config"])
    for name in ("elastic_instance_minimum", "pre_warmed_instance_count", "app_scale_limit"):
        assert _expr(site[name]) == f"var.{name}"
    conditions = [p["condition"] for p in _one(app["lifecycle"])["precondition"]]
    scale = next(c for c in conditions if "app_scale_limit" in c)
    for app_limit, minimum, maximum, ok in ((30, 1, 30, True), (31, 1, 30, False), (5, 6, 5, False), (1, 1, 1, True)):
        values = {"var.app_scale_limit": app_limit, "var.elastic_instance_minimum": minimum,
                  "var.maximum_elastic_worker_count": maximum}  # fmt: skip
        assert _evaluate(scale, values) is ok, values


def test_app_settings_are_the_settings_the_code_reads(tf):
    assert DEV_HOST_ONLY <= set(env_names()), "a dev-host-only setting was renamed in mljob/settings.py"
    settings = tf["resources"][("azurerm_linux_function_app", "main")]["app_settings"]
    assert sorted(settings) == sorted(CLOUD_SETTINGS)
    assert not DEV_HOST_ONLY & set(settings)


def test_app_setting_values(tf):
    settings = tf["resources"][("azurerm_linux_function_app", "main")]["app_settings"]
    mount = tf["variables"]["mount_path"]["default"]
    defaults = {name: body.get("default") for name, body in tf["variables"].items()}
    assert _render(settings["DATA_PATH"], tf, defaults) == f"{mount}/data"
    assert _render(settings["JOBS_PATH"], tf, defaults) == f"{mount}/jobs"
    # The account-key connection string of the queue's account: no SAS token, nothing that runs out.
    assert _expr(settings["QUEUECONNECTIONSTRING"]) == "azurerm_storage_account.main.primary_connection_string"
    assert _expr(settings["QUEUE_NAME"]) == "azurerm_storage_queue.jobs.name"
    for env, variable in [("MAX_INPUT_GENES", "max_input_genes"), ("MAX_INPUT_BYTES", "max_input_bytes"),
                          ("LEASE_STALE_SECONDS", "lease_stale_seconds")]:  # fmt: skip
        assert _expr(settings[env]) == f"tostring(var.{variable})"


def test_queue_and_poison_queue(tf):
    jobs = tf["resources"][("azurerm_storage_queue", "jobs")]
    poison = tf["resources"][("azurerm_storage_queue", "poison")]
    assert _expr(jobs["name"]) == "var.queue_name"
    assert _render(poison["name"], tf, {"queue_name": "jobprocessing"}) == "jobprocessing-poison"
    for queue in (jobs, poison):
        assert _expr(queue["storage_account_id"]) == "azurerm_storage_account.main.id"


def test_storage_account_hardening(tf):
    account = tf["resources"][("azurerm_storage_account", "main")]
    assert account["https_traffic_only_enabled"] is True
    assert account["min_tls_version"] == "TLS1_2"
    assert account["allow_nested_items_to_be_public"] is False
    # Functions needs shared keys (content share, Azure Files mount, the queue connection string): see main.tf.
    assert account["shared_access_key_enabled"] is True
    assert account["local_user_enabled"] is False
    logging = _one(tf["resources"][("azurerm_storage_account_queue_properties", "main")]["logging"])
    assert logging["read"] is logging["write"] is logging["delete"] is True
    assert _expr(tf["resources"][("azurerm_storage_account_queue_properties", "main")]["storage_account_id"]) == (
        "azurerm_storage_account.main.id"
    )


# --- validations and names ------------------------------------------------------------------------------------------

VALIDATION_CASES = [
    ("env", "dev1", True),
    ("env", "a", True),
    ("env", "x" * 10, True),
    ("env", "prod", True),
    ("env", "Dev_1", False),
    ("env", "dev-1", False),
    ("env", "Dev1", False),
    ("env", "", False),
    ("env", "x" * 11, False),
    ("env", "x" * 20, False),
    ("project", "geneplexus", True),
    ("project", "gp3", True),
    ("project", "gp", False),
    ("project", "1geneplexus", False),
    ("project", "GenePlexus", False),
    ("project", "gene-plexus", False),
    ("project", "x" * 13, False),
    ("plan_sku", "EP1", True),
    ("plan_sku", "EP2", True),
    ("plan_sku", "EP3", True),
    ("plan_sku", "Y1", False),
    ("plan_sku", "FC1", False),
    ("plan_sku", "ep2", False),
    ("plan_sku", "P1v3", False),
    ("queue_name", "jobprocessing", True),
    ("queue_name", "job-processing", True),
    ("queue_name", "x" * 56, True),
    ("queue_name", "x" * 57, False),
    ("queue_name", "jo", False),
    ("queue_name", "jobs--x", False),
    ("queue_name", "-jobs", False),
    ("queue_name", "jobs-", False),
    ("queue_name", "Jobs", False),
    ("mount_path", "/mnt/geneplexus", True),
    ("mount_path", "/mounts/data", True),
    ("mount_path", "/homework", True),
    ("mount_path", "mnt/geneplexus", False),
    ("mount_path", "/mnt/geneplexus/", False),
    ("mount_path", "/", False),
    ("mount_path", "/home", False),
    ("mount_path", "/home/site", False),
    ("mount_path", "/tmp/x", False),
    ("python_version", "3.11", True),
    ("python_version", "3.10", False),
    ("share_quota_gb", 100, True),
    ("share_quota_gb", 5120, True),
    ("share_quota_gb", 0, False),
    ("share_quota_gb", 5121, True),
    ("share_quota_gb", 102400, True),
    ("share_quota_gb", 102401, False),
    ("share_quota_gb", 1.5, False),
    ("maximum_elastic_worker_count", 1, True),
    ("maximum_elastic_worker_count", 30, True),
    ("maximum_elastic_worker_count", 100, True),
    ("maximum_elastic_worker_count", 0, False),
    ("maximum_elastic_worker_count", 101, False),
    ("maximum_elastic_worker_count", 2.5, False),
    ("app_scale_limit", 1, True),
    ("app_scale_limit", 100, True),
    ("app_scale_limit", 0, False),
    ("app_scale_limit", 101, False),
    ("app_scale_limit", 7.5, False),
    ("elastic_instance_minimum", 1, True),
    ("elastic_instance_minimum", 20, True),
    ("elastic_instance_minimum", 0, False),
    ("elastic_instance_minimum", 21, False),
    ("elastic_instance_minimum", 1.5, False),
    ("pre_warmed_instance_count", 0, True),
    ("pre_warmed_instance_count", 1, True),
    ("pre_warmed_instance_count", 10, True),
    ("pre_warmed_instance_count", -1, False),
    ("pre_warmed_instance_count", 11, False),
    ("pre_warmed_instance_count", 0.5, False),
    ("share_tier", "Standard", True),
    ("share_tier", "Premium", True),
    ("share_tier", "premium", False),
    ("share_tier", "Hot", False),
    ("share_tier", "", False),
    ("plan_sku", "EP4", False),
    ("preload", "", True),
    ("preload", "Human:STRING:Combined", True),
    ("preload", "Human:STRING:Combined,Mouse:IMP:GO", True),
    ("preload", "Human:STRING", False),
    ("preload", "Human:STRING:Combined,", False),
    ("preload", "Human STRING Combined", False),
    ("fast_path", 1, True),
    ("fast_path", 0, True),
    ("fast_path", 2, False),
    ("fast_path", 0.5, False),
    ("max_input_genes", 0, False),
    ("lease_stale_seconds", 120, True),
    ("lease_stale_seconds", 0, False),
    ("location", "eastus", True),
    ("location", "East US", False),
    ("log_retention_days", 7, False),
    ("job_timeout_seconds", 3000, True),
    ("job_timeout_seconds", 3600, False),
    ("job_memory_mb", 0, True),
    ("job_memory_mb", -1, False),
    ("web_wait_seconds", 200, True),
    ("web_wait_seconds", 230, False),
    ("web_max_waiting", 0, False),
    ("cors_allowed_origins", ["https://geneplexus.example.org", "http://localhost:5173"], True),
    ("cors_allowed_origins", ["*"], True),
    ("cors_allowed_origins", ["https://app.example.org/path"], False),
    ("cors_allowed_origins", ["app.example.org"], False),
]


@pytest.mark.parametrize(("name", "value", "ok"), VALIDATION_CASES, ids=lambda v: repr(v)[:24])
def test_validation(tf, name, value, ok):
    assert _accepts(tf, name, value) is ok


NAME_RULES = {
    # local: (Azure's rule for the name, shortest, longest)
    "storage_account_name": (r"[a-z0-9]+", 3, 24),
    "function_app_name": (r"[a-z0-9]([a-z0-9]|-(?!-))*[a-z0-9]", 2, 32),  # <= 32: the host id is cut at 32
    "resource_group_name": (r"[-\w.()]*[-\w()]", 1, 90),
    "plan_name": (r"[A-Za-z0-9-]+", 1, 60),
    "log_analytics_name": (r"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]", 4, 63),
    "app_insights_name": (r"[^%&\\?/]+", 1, 260),
    "files_account_name": (r"[a-z0-9]+", 3, 24),
    "share_name": (r"[a-z0-9](-?[a-z0-9])*", 3, 63),
    "poison_queue_name": (r"[a-z0-9](-?[a-z0-9])*", 3, 63),
}
EXTREMES = [
    {"project": "geneplexus", "env": "dev1", "queue_name": "jobprocessing"},
    {"project": "abc", "env": "1", "queue_name": "job"},
    {"project": "a" + "9" * 11, "env": "z" * 10, "queue_name": "q" * 56},
]


@pytest.mark.parametrize("variables", EXTREMES, ids=lambda v: f"{v['project']}-{v['env']}")
def test_derived_names_follow_azure_rules(tf, variables):
    for name, value in variables.items():
        assert _accepts(tf, name, value), f"{name}={value!r} should be accepted"
    for local, (pattern, shortest, longest) in NAME_RULES.items():
        rendered = _render(tf["locals"][local], tf, variables)
        assert re.fullmatch(pattern, rendered), f"{local} = {rendered!r} breaks Azure's naming rule"
        assert shortest <= len(rendered) <= longest, f"{local} = {rendered!r} has {len(rendered)} characters"
    # The preconditions on the derived names agree (the others, on defaults, too).
    defaults = {f"var.{name}": body["default"] for name, body in tf["variables"].items() if "default" in body}
    for key in (("azurerm_storage_account", "main"), ("azurerm_storage_account", "files"),
                ("azurerm_linux_function_app", "main")):  # fmt: skip
        for precondition in _one(tf["resources"][key]["lifecycle"])["precondition"]:
            condition = precondition["condition"]
            names = set(re.findall(r"\blocal\.([a-z_][a-z0-9_]*)", condition))
            values = {f"local.{name}": _render(tf["locals"][name], tf, variables) for name in names}
            assert _evaluate(condition, {**defaults, **values}), condition


def test_the_evaluator_refuses_what_it_does_not_know():
    with pytest.raises(AssertionError, match="does not know"):
        _evaluate('${startswith(var.x, "a")}', {"var.x": "abc"})
    with pytest.raises(AssertionError, match="unnested"):
        _value("${var.a ? var.b ? 1 : 2 : 3}", {"var.a": True, "var.b": True})


def test_the_evaluator_reads_the_conditional_operator():
    assert _value('${var.x == "Premium" ? 1 : 0}', {"var.x": "Premium"}) == 1
    assert _value('${var.x == "Premium" ? 1 : 0}', {"var.x": "Standard"}) == 0
    assert _value('${var.x ? "a:b" : "c"}', {"var.x": True}) == "a:b"  # a colon inside a string is not the operator


# --- secrets, SAS, checkov skips, fmt --------------------------------------------------------------------------------


def _walk(value: Any):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def test_no_sas_and_nothing_that_expires(tf):
    data_sources = {rtype for block in tf["data"] for rtype in block}
    assert not {d for d in data_sources if "sas" in d}, "no SAS tokens: they carry an expiry date"
    assert not {t for t, _ in tf["resources"] if "sas" in t}
    for path in TF_FILES:
        text = path.read_text(encoding="utf-8")
        assert "expiry" not in text.lower(), f"{path.name} mentions an expiry"
        assert "_sas" not in text, f"{path.name} uses a SAS data source"
    assert not {k for k in _walk(tf["resources"]) if k in {"expiry", "start"}}


SECRET_PATTERNS = [
    re.compile(r"AccountKey=", re.IGNORECASE),
    re.compile(r"SharedAccessSignature=|[?&]sig=", re.IGNORECASE),
    re.compile(r"InstrumentationKey=[0-9a-f-]{8}", re.IGNORECASE),
    re.compile(r"[A-Za-z0-9+/]{60,}={0,2}"),  # a storage key or any long base64 blob
    re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),  # subscription/tenant ids
]


# The files that go into git (state, .terraform/ and local *.tfvars are git-ignored; the lock file holds only hashes).
COMMITTED = [*TF_FILES, TF_DIR / "example.tfvars", TF_DIR / "README.md", TF_DIR / ".gitignore"]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_no_literal_secret(path):
    text = path.read_text(encoding="utf-8")
    for pattern in SECRET_PATTERNS:
        assert not pattern.search(text), f"{path.name} holds what looks like a secret ({pattern.pattern})"


def test_example_tfvars_sets_only_declared_variables(tf):
    example = _load(TF_DIR / "example.tfvars")
    assert set(example) <= set(tf["variables"]), set(example) - set(tf["variables"])
    for name, value in example.items():
        if tf["variables"][name].get("validation"):
            assert _accepts(tf, name, value), f"example.tfvars: {name}={value!r} fails validation"


def test_state_and_real_tfvars_are_git_ignored():
    ignored = (TF_DIR / ".gitignore").read_text(encoding="utf-8").split()
    assert {"*.tfstate", "*.tfstate.*", ".terraform/", "*.tfvars", "!example.tfvars"} <= set(ignored)


def test_every_checkov_skip_has_a_reason():
    skips = []  # (resource, check): a check may be skipped on two resources, each with its own reason
    for path in TF_FILES:
        resource = None
        for line in path.read_text(encoding="utf-8").splitlines():
            header = re.match(r'resource "([a-z0-9_]+)" "([a-z0-9_]+)"', line)
            if header:
                resource = header.groups()
            if "checkov:skip" in line:
                match = re.fullmatch(r"\s*#checkov:skip=(CKV2?_AZURE_\d+):(.+)", line)
                assert match, f"{path.name}: malformed skip {line.strip()!r} (#checkov:skip=CKV_AZURE_N:reason)"
                assert len(match.group(2).split()) >= 8, f"{path.name}: give {match.group(1)} a real reason"
                assert resource, f"{path.name}: {match.group(1)} is skipped outside a resource"
                skips.append((resource, match.group(1)))
    assert len(skips) == len(set(skips)), "a check is skipped twice on one resource"


def test_readme_documents_the_steps():
    readme = (TF_DIR / "README.md").read_text(encoding="utf-8")
    for needle in [
        "terraform init",
        "terraform apply",
        "-var-file",
        "az storage account show-connection-string",
        "$AZSA",
        "az functionapp keys list",
        "mljob share upload",
        "az storage file upload-batch",
        "func azure functionapp publish $AZFN --python",
        "x-functions-key",
        "terraform destroy",
        "MLJOB_FUNCTION_KEY",
        "MESSAGE_LEASE_SECONDS",
    ]:
        assert needle in readme, f"Terraform/README.md does not mention {needle!r}"


def test_terraform_fmt():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("no terraform binary on PATH: `terraform fmt -check` not run (python-hcl2 checks still ran)")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TF_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"
