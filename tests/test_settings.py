"""Settings read from the environment (given as a dict here, never the real os.environ)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mljob.errors import SettingsError
from mljob.settings import Settings, env_names


def test_env_names():
    assert env_names() == [
        "DATA_PATH",
        "JOBS_PATH",
        "MAX_INPUT_GENES",
        "MAX_INPUT_BYTES",
        "QUEUECONNECTIONSTRING",
        "QUEUE_NAME",
        "LEASE_STALE_SECONDS",
        "MLJOB_FUNCTION_KEY",
        "MESSAGE_LEASE_SECONDS",
        "DATA_CACHE_MB",
        "PRELOAD",
        "FAST_PATH",
        "CALLBACK_ALLOWED_HOSTS",
        "JOB_TIMEOUT_SECONDS",
        "JOB_MEMORY_MB",
        "PLAN_PRICE_PER_HOUR",
        "WEB_WAIT_SECONDS",
        "WEB_MAX_WAITING",
        "CORS_ALLOWED_ORIGINS",
    ]


def test_preload_is_read_as_job_parameters_and_refused_in_words():
    assert Settings.from_env({}).preload_targets() == []
    settings = Settings.from_env({"PRELOAD": " Human:STRING:Combined , Mouse:IMP:GO "})
    assert settings.preload_targets() == [
        {"sp_trn": "Human", "net_type": "STRING", "gsc": "Combined"},
        {"sp_trn": "Mouse", "net_type": "IMP", "gsc": "GO"},
    ]
    for bad, words in (
        ("Human:STRING", "is not SPECIES:NETWORK:GSC"),
        ("Human:Foo:GO", "unknown network 'Foo'"),
        ("Martian:STRING:GO", "unknown species 'Martian'"),
        ("Human:STRING:KEGG", "unknown GSC 'KEGG'"),
        ("Zebrafish:BioGRID:GO", "GenePlexus has no BioGRID/GO for Zebrafish"),
    ):
        with pytest.raises(SettingsError, match=f"^PRELOAD: .*{words}"):
            Settings.from_env({"PRELOAD": bad})


def test_data_cache_may_be_turned_off_with_zero():
    assert Settings.from_env({}).data_cache_mb == 2048
    assert Settings.from_env({"DATA_CACHE_MB": "0"}).data_cache_mb == 0
    with pytest.raises(SettingsError, match="DATA_CACHE_MB must be at least 0"):
        Settings.from_env({"DATA_CACHE_MB": "-1"})


def test_fast_path_is_on_by_default_and_zero_or_one():
    assert Settings.from_env({}).fast_path == 1
    assert Settings.from_env({"FAST_PATH": "0"}).fast_path == 0
    assert Settings.from_env({"FAST_PATH": "0"}, fast_path=1).fast_path == 1  # an override wins
    with pytest.raises(SettingsError, match="FAST_PATH must be at most 1, got 2"):
        Settings.from_env({"FAST_PATH": "2"})
    with pytest.raises(SettingsError, match="FAST_PATH must be at least 0"):
        Settings.from_env({"FAST_PATH": "-1"})


def test_queue_settings():
    settings = Settings.from_env({"QUEUECONNECTIONSTRING": " UseDevelopmentStorage=true ", "QUEUE_NAME": "q1"})
    assert settings.queue_connection_string == "UseDevelopmentStorage=true" and settings.queue_name == "q1"
    assert settings.require_queue_connection_string() == "UseDevelopmentStorage=true"
    assert Settings.from_env({}).queue_name == "jobprocessing"
    with pytest.raises(SettingsError, match="QUEUECONNECTIONSTRING is not set"):
        Settings.from_env({}).require_queue_connection_string()


def test_defaults_with_an_empty_environment():
    settings = Settings.from_env({})
    assert settings.data_path is None
    assert settings.jobs_path is None
    assert settings.max_input_genes == 10_000
    assert settings.max_input_bytes == 1_000_000


def test_values_come_from_the_given_environment(tmp_path):
    environ = {
        "DATA_PATH": str(tmp_path / "data"),
        "JOBS_PATH": str(tmp_path / "jobs"),
        "MAX_INPUT_GENES": "500",
        "MAX_INPUT_BYTES": "2048",
    }
    settings = Settings.from_env(environ)
    assert settings.data_path == tmp_path / "data"
    assert settings.jobs_path == tmp_path / "jobs"
    assert settings.max_input_genes == 500
    assert settings.max_input_bytes == 2048


def test_the_real_environment_is_not_read_when_a_dict_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_PATH", str(tmp_path))
    assert Settings.from_env({}).data_path is None
    assert Settings.from_env().data_path == tmp_path


def test_values_are_trimmed(tmp_path):
    settings = Settings.from_env({"DATA_PATH": f"  {tmp_path}\n", "MAX_INPUT_GENES": " 12 "})
    assert settings.data_path == tmp_path
    assert settings.max_input_genes == 12


def test_home_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings.from_env({"JOBS_PATH": "~/jobs"}).jobs_path == tmp_path / "jobs"


def test_overrides_win(tmp_path):
    environ = {"DATA_PATH": "/from/env", "JOBS_PATH": "/jobs/env", "MAX_INPUT_GENES": "5"}
    settings = Settings.from_env(environ, data_path=tmp_path, jobs_path=str(tmp_path / "j"), max_input_genes=7)
    assert settings.data_path == tmp_path
    assert settings.jobs_path == tmp_path / "j"
    assert settings.max_input_genes == 7


def test_none_overrides_fall_back_to_the_environment():
    settings = Settings.from_env({"DATA_PATH": "/from/env"}, data_path=None, jobs_path=None)
    assert settings.data_path == Path("/from/env")
    assert settings.jobs_path is None


@pytest.mark.parametrize("blank", ["", " ", "\t\n"])
def test_blank_environment_values_count_as_unset(blank):
    environ = dict.fromkeys(env_names(), blank)
    settings = Settings.from_env(environ)
    assert settings == Settings()


@pytest.mark.parametrize("blank", ["", "  "])
def test_blank_overrides_count_as_unset(blank):
    settings = Settings.from_env({"DATA_PATH": "/from/env"}, data_path=blank, jobs_path=blank)
    assert settings.data_path == Path("/from/env")
    assert settings.jobs_path is None


@pytest.mark.parametrize("env", ["MAX_INPUT_GENES", "MAX_INPUT_BYTES"])
@pytest.mark.parametrize("raw", ["abc", "1.5", "10k", "1e3", "0x10"])
def test_integer_settings_reject_non_numbers(env, raw):
    with pytest.raises(SettingsError) as exc:
        Settings.from_env({env: raw})
    message = str(exc.value)
    assert f"{env} must be a whole number" in message
    assert repr(raw) in message


@pytest.mark.parametrize("env", ["MAX_INPUT_GENES", "MAX_INPUT_BYTES"])
@pytest.mark.parametrize("raw", ["0", "-1", "-1000"])
def test_integer_settings_reject_values_below_one(env, raw):
    with pytest.raises(SettingsError) as exc:
        Settings.from_env({env: raw})
    message = str(exc.value)
    assert f"{env} must be at least 1" in message
    assert raw in message


@pytest.mark.parametrize(("override", "message"), [("many", "must be a whole number"), (0, "must be at least 1")])
def test_integer_overrides_are_checked_too(override, message):
    with pytest.raises(SettingsError) as exc:
        Settings.from_env({}, max_input_genes=override)
    assert f"MAX_INPUT_GENES {message}" in str(exc.value)


def test_integer_setting_of_one_is_accepted():
    assert Settings.from_env({"MAX_INPUT_BYTES": "1"}).max_input_bytes == 1


@pytest.mark.parametrize(("method", "env"), [("require_data_path", "DATA_PATH"), ("require_jobs_path", "JOBS_PATH")])
def test_require_an_unset_folder(method, env):
    with pytest.raises(SettingsError) as exc:
        getattr(Settings.from_env({}), method)()
    message = str(exc.value)
    assert f"{env} is not set" in message
    assert f"--{env.lower().replace('_', '-')}" in message


@pytest.mark.parametrize(("method", "env"), [("require_data_path", "DATA_PATH"), ("require_jobs_path", "JOBS_PATH")])
def test_require_a_missing_folder(tmp_path, method, env):
    missing = tmp_path / "missing"
    with pytest.raises(SettingsError) as exc:
        getattr(Settings.from_env({env: str(missing)}), method)()
    message = str(exc.value)
    assert f"{env}={missing} does not exist" in message
    assert not missing.exists()


@pytest.mark.parametrize(("method", "env"), [("require_data_path", "DATA_PATH"), ("require_jobs_path", "JOBS_PATH")])
def test_require_a_file_instead_of_a_folder(tmp_path, method, env):
    path = tmp_path / "a-file"
    path.write_text("x")
    with pytest.raises(SettingsError) as exc:
        getattr(Settings.from_env({env: str(path)}), method)()
    assert f"{env}={path} is not a folder" in str(exc.value)


@pytest.mark.parametrize(("method", "env"), [("require_data_path", "DATA_PATH"), ("require_jobs_path", "JOBS_PATH")])
def test_require_an_existing_folder(tmp_path, method, env):
    assert getattr(Settings.from_env({env: str(tmp_path)}), method)() == tmp_path


def test_settings_are_frozen():
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.max_input_genes = 5  # type: ignore[misc]
