"""The capacity and cost model (benchmarks/capacity.py, docs/capacity.md): the page is what the script prints,
Terraform's scale defaults are the ones the model derives, every published figure names its page, and the model
behaves as a model of queues and instances must (more instances never slow a burst down, a saturated resource caps
throughput, the time limits stay in order)."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import hcl2
import pytest

from mljob.settings import Settings
from mljob.supervisor import GRACE_SECONDS

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "capacity.md"


def _load_capacity():
    spec = importlib.util.spec_from_file_location("capacity", REPO / "benchmarks" / "capacity.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["capacity"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


cap = _load_capacity()


@pytest.fixture(scope="module")
def model():
    measured, assumed = cap.Measured(), cap.Assumed()
    tables, figures = cap.report(measured, assumed)
    return measured, assumed, tables, figures


def _tf_defaults() -> dict[str, object]:
    with (REPO / "Terraform" / "variables.tf").open(encoding="utf-8") as handle:
        blocks = hcl2.load(handle)["variable"]
    out = {}
    for block in blocks:
        for name, body in block.items():
            if "default" in body:
                value = body["default"]
                out[name.strip('"')] = value.strip('"') if isinstance(value, str) else value
    return out


def test_the_page_holds_what_the_script_prints(model):
    """docs/capacity.md is current: regenerate it with `benchmarks/capacity.py --doc docs/capacity.md`."""
    _, _, tables, _ = model
    text = DOC.read_text(encoding="utf-8")
    start = text.index(cap.DOC_BEGIN) + len(cap.DOC_BEGIN)
    assert text[start : text.index(cap.DOC_END)].strip() == tables.strip()
    assert (REPO / "docs" / "capacity.png").stat().st_size > 10_000


def test_terraform_scale_defaults_are_the_model_s(model):
    measured, assumed, _, _ = model
    derived = cap.terraform_defaults(measured, assumed)
    defaults = _tf_defaults()
    for name in ("plan_sku", "share_tier", "maximum_elastic_worker_count", "app_scale_limit",
                 "elastic_instance_minimum", "pre_warmed_instance_count"):  # fmt: skip
        assert defaults[name] == derived[name], name
    assert derived["maximum_elastic_worker_count"] <= derived["share_limit_instances"]
    # PLAN_PRICE_PER_HOUR's default is the model's EP2 list price
    assert Settings().plan_price_per_hour == pytest.approx(cap.plans()["EP2"].price_per_hour, abs=0.001)
    assert defaults["plan_price_per_hour"] == pytest.approx(cap.plans()["EP2"].price_per_hour, abs=0.001)


def test_every_published_figure_names_its_page():
    source = (REPO / "benchmarks" / "capacity.py").read_text(encoding="utf-8")
    block = source[source.index("AZURE: dict") : source.index("\n}\n", source.index("AZURE: dict"))]
    keys = re.findall(r'^    "([a-z_]+)":', block, flags=re.M)
    assert len(keys) >= 15
    urls = {name: getattr(cap, name) for name in dir(cap) if name.startswith("URL_")}
    assert len(urls) >= 8 and all(u.startswith("https://") for u in urls.values())
    for name in urls:  # every page the model relies on is cited next to a figure and listed on the page
        assert name in block, f"{name} is cited by no figure"
    page = DOC.read_text(encoding="utf-8")
    for url in urls.values():
        assert url in page, f"docs/capacity.md does not cite {url}"


def test_plans_and_prices():
    plans = cap.plans()
    assert [(p.cores, p.memory_gb) for p in plans.values()] == [(1, 3.5), (2, 7.0), (4, 14.0)]
    assert plans["EP2"].price_per_hour == pytest.approx(2 * plans["EP1"].price_per_hour)
    assert plans["EP3"].price_per_hour == pytest.approx(2 * plans["EP2"].price_per_hour)


def test_premium_share_follows_the_published_formula():
    share = cap.premium_share(100)
    assert share.iops == 3100 and share.mib_per_second == 100 + 4 + 6
    assert cap.premium_share(10).iops == 3100  # provisioned at 100 GiB at least


def test_recommended_host_json_is_the_fastest_that_fits(model):
    """The recommended jobs at once give the most jobs per hour (the fewest on a tie) and fit in memory."""
    measured, assumed, _, figures = model
    for plan in cap.plans().values():
        host = cap.recommended_host_json(plan, measured, assumed)
        rates = {m: cap.instance_rate(plan, cap.HostJson(m, 0), measured, assumed) for m in range(1, plan.cores + 1)}
        assert rates[host.concurrency] == max(rates.values())
        assert all(rates[m] < rates[host.concurrency] for m in rates if m < host.concurrency)
        if host.concurrency > 1:  # more than one job at once only where every warm cache, full, still fits
            assert cap.memory_gb(plan, host, measured, assumed, 2048)["worst_fraction"] <= 0.9
    # with a job keeping 1.67 of 2 cores busy, a second job at once gains nothing on EP2; EP3 runs two
    assert measured.concurrency_gain < 1
    assert str(cap.recommended_host_json(cap.plans()["EP2"], measured, assumed)) == "1/0"
    assert str(cap.recommended_host_json(cap.plans()["EP3"], measured, assumed)) == "2/0"
    assert figures["plans"]["EP3"]["2/0"]["jobs_per_hour"] == pytest.approx(
        2 * figures["plans"]["EP3"]["1/0"]["jobs_per_hour"]
    )
    # a job that gains from sharing (as before the fast path: x1.45) is recommended two at once on EP2
    older = replace(measured, job_seconds_warm=6.24, pair_seconds=8.61, job_cpu_seconds=7.65)
    assert str(cap.recommended_host_json(cap.plans()["EP2"], older, assumed)) == "2/0"


def test_a_saturated_resource_caps_throughput(model):
    measured, assumed, _, _ = model
    plan, host, share = cap.plans()["EP2"], cap.HostJson(2, 0), cap.shares()["standard-default"]
    name, limit = cap.first_saturation(cap.saturation(plan, host, share, measured, assumed))
    assert name == "share requests" and 1 < limit < 10
    rows = [cap.steady(plan, host, share, n, measured, assumed) for n in (1, 10, 50)]
    assert rows[0]["limited_by"].startswith("CPU")
    assert rows[1]["jobs_per_hour"] == rows[2]["jobs_per_hour"]
    assert rows[2]["cost_per_job"] == pytest.approx(5 * rows[1]["cost_per_job"])


def test_burst_more_instances_never_slower(model):
    measured, assumed, _, _ = model
    plan, host, share = cap.plans()["EP2"], cap.HostJson(1, 0), cap.shares()["standard"]
    times = [
        cap.simulate_burst(plan, host, share, measured, assumed, max_instances=n).seconds_to_last_result
        for n in (1, 4, 10, 30, 100)
    ]
    assert times == sorted(times, reverse=True)
    one = cap.simulate_burst(plan, host, share, measured, assumed, max_instances=1, pre_warmed=0)
    assert one.jobs == 1000
    # one instance alone: 1,000 warm jobs one after the other, plus its first job's load
    assert 1000 * measured.job_seconds_warm <= one.seconds_to_last_result <= 1000 * measured.job_seconds_warm + 60
    assert one.cost == pytest.approx(one.seconds_to_last_result * plan.price_per_second)


def test_burst_is_paced_by_the_scale_controller(model):
    measured, assumed, _, _ = model
    plan, host, share = cap.plans()["EP2"], cap.HostJson(1, 0), cap.shares()["standard"]
    result = cap.simulate_burst(plan, host, share, measured, assumed, max_instances=100)
    for (t0, n0, _, _), (t1, n1, _, _) in zip(result.timeline, result.timeline[1:], strict=False):
        if t1 - t0 < cap.AZURE["scale_interval_seconds"] - 1e-9:
            assert n1 - n0 <= cap.AZURE["scale_step_instances"]
    slower = cap.simulate_burst(plan, host, share, measured, assumed, max_instances=100, scale_step=1)
    assert slower.seconds_to_last_result > result.seconds_to_last_result
    slow_cpu = cap.simulate_burst(plan, host, share, measured, replace(assumed, cpu_speed=0.5), max_instances=30)
    assert slow_cpu.seconds_to_last_result > result.seconds_to_last_result


def test_measured_figures_come_from_benchmark_json(tmp_path):
    run = {
        "rows": [
            {"what": "runner overhead", "median_a": 99.0, "median_b": 8.9},  # FAST_PATH=0: not what is deployed
            {"what": "fast path: first job", "median_a": 9.0, "median_b": 30.0},
            {"what": "memory", "median_a": 600.0, "median_b": 590.0},
            {"what": "concurrency (2 jobs)", "median_a": 10.0, "median_b": 14.0},
        ],
        "concurrency": {"jobs_in_a_row": {"cpu_seconds": [8.0, 9.0, 10.0]}},
    }
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run), encoding="utf-8")
    measured = cap.load_measured([path])
    assert measured.job_seconds_cold == 9.0 and measured.peak_memory_mb == 600.0
    assert measured.pair_seconds == 10.0 and measured.job_seconds_warm == 7.0
    assert measured.job_cpu_seconds == 9.0
    assert str(path) in measured.sources[0]


def test_the_script_runs_offline_and_rewrites_only_its_part(tmp_path, capsys):
    doc = tmp_path / "page.md"
    doc.write_text(f"intro\n{cap.DOC_BEGIN}\nSTALE TABLES\n{cap.DOC_END}\noutro\n", encoding="utf-8")
    assert cap.main(["--doc", str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("outro\n") and "STALE TABLES" not in text
    assert "### A burst: 1,000 jobs submitted at once" in text
    assert "### A burst" in capsys.readouterr().out


def test_time_limits_stay_in_order():
    """JOB_TIMEOUT_SECONDS plus the kill grace ends a run before the Premium plan's scale-in grace, and host.json's
    functionTimeout stays above both (docs/capacity.md, "Time limits, in one place")."""
    host = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    hours, minutes, seconds = (int(x) for x in host["functionTimeout"].split(":"))
    function_timeout = hours * 3600 + minutes * 60 + seconds
    grace = cap.AZURE["scale_in_grace_minutes"] * 60
    job_timeout = Settings().job_timeout_seconds
    assert job_timeout + GRACE_SECONDS < grace < function_timeout
    assert _tf_defaults()["job_timeout_seconds"] == job_timeout
    page = DOC.read_text(encoding="utf-8")
    assert f"{job_timeout} s" in page and host["functionTimeout"] in page
