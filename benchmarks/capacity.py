"""Capacity and cost of mljob on an Azure Functions Elastic Premium plan: where it saturates, and a burst.

    .venv/bin/python benchmarks/capacity.py                      # the figures measured on 2 December 2026 (below)
    .venv/bin/python benchmarks/capacity.py --measured /tmp/cap-run.json --measured /tmp/cap-concurrency.json
    .venv/bin/python benchmarks/capacity.py --doc docs/capacity.md --plot docs/capacity.png

It runs offline in a second or two: no Azure call. Its inputs are of three kinds, kept apart below:

- MEASURED on this project's code (benchmarks/run.py's JSON, `--measured FILE`, any number of them; without one,
  the figures measured on 2 December 2026 that are written in `MEASURED` below): a job's time, CPU time and memory,
  two jobs at once against one after the other, and (with strace, see docs/capacity.md) the file operations a job
  makes on the share;
- PUBLISHED by Microsoft (`AZURE`, each with the page it comes from): instance sizes, prices, the plan's maximum
  instance count, the scale controller's rate, queue and Azure Files limits;
- ASSUMED where nothing is published or measurable here (`ASSUMED`): how long a new instance takes to start, how
  long an idle instance stays billed, and how fast an Azure vCPU is against this machine's cores.

docs/capacity.md explains the model and gives the tables this script prints (`--doc` rewrites them there).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import statistics
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOC_BEGIN = "<!-- capacity.py: begin (generated, do not edit by hand) -->"
DOC_END = "<!-- capacity.py: end -->"

# --- what Microsoft publishes ---------------------------------------------------------------------------------------

URL_PREMIUM = "https://learn.microsoft.com/en-us/azure/azure-functions/functions-premium-plan"
URL_SCALE = "https://learn.microsoft.com/en-us/azure/azure-functions/functions-scale"
URL_PRICING = "https://azure.microsoft.com/en-us/pricing/details/functions/"
URL_EVENT_SCALING = "https://learn.microsoft.com/en-us/azure/azure-functions/event-driven-scaling"
URL_TARGET_SCALING = "https://learn.microsoft.com/en-us/azure/azure-functions/functions-target-based-scaling"
URL_QUEUE_HOST_JSON = "https://learn.microsoft.com/en-us/azure/azure-functions/functions-bindings-storage-queue"
URL_QUEUE_TARGETS = "https://learn.microsoft.com/en-us/azure/storage/queues/scalability-targets"
URL_FILES_TARGETS = "https://learn.microsoft.com/en-us/azure/storage/files/storage-files-scale-targets"
URL_FILES_BILLING = "https://learn.microsoft.com/en-us/azure/storage/files/understanding-billing"


@dataclass(frozen=True)
class Plan:
    name: str
    cores: int
    memory_gb: float
    price_per_hour: float  # USD per instance-hour

    @property
    def price_per_second(self) -> float:
        return self.price_per_hour / 3600


@dataclass(frozen=True)
class Share:
    """What one Azure Files share allows (the published targets for its kind and size)."""

    name: str
    iops: float  # requests per second to the share
    mib_per_second: float  # ingress + egress of the share
    file_mib_per_second: float  # read rate of one file (a job reads its backend files one after another)


AZURE: dict[str, Any] = {
    # Available instance SKUs: cores and memory of an Elastic Premium instance (URL_PREMIUM, "Available instance SKUs").
    "skus": {"EP1": (1, 3.5), "EP2": (2, 7.0), "EP3": (4, 14.0)},
    # Premium plan list price, pay-as-you-go, USD, East US (URL_PRICING, "Premium plan": vCPU duration and memory
    # duration; Linux and Windows share the meter). Read 2 December 2026 from copies of that page: the live page
    # renders prices per region with a script. Re-check it for your region before budgeting.
    "price_per_vcpu_hour": 0.173,
    "price_per_gb_hour": 0.0123,
    "price_region": "East US",
    "price_date": "2 December 2026",
    # Maximum instances of one Elastic Premium plan on Linux: 100 in East US, 20 to 100 by region (URL_PREMIUM,
    # "Region max scale-out"; URL_SCALE, "Scale": "Linux: 20-100").
    "max_instances_linux": 100,
    "max_instances_linux_low": 20,
    # Scale-out for queue triggers: target-based scaling adds up to four instances at a time (URL_TARGET_SCALING);
    # for non-HTTP triggers new instances are allocated at most once every 30 seconds (URL_EVENT_SCALING,
    # "Understanding scaling behaviors"). Desired instances = queue length / target executions per instance, which
    # for Storage queues is host.json's batchSize (URL_TARGET_SCALING, "Storage Queues").
    "scale_step_instances": 4,
    "scale_interval_seconds": 30,
    # Premium plan: an execution gets up to 60 minutes to finish when its instance is scaled in (URL_EVENT_SCALING,
    # "Scale-in behaviors"); the always-ready maximum per app is 20 and the default pre-warmed count 1 (URL_PREMIUM).
    "scale_in_grace_minutes": 60,
    "always_ready_max": 20,
    # Queue Storage: up to 2,000 messages per second per queue, 20,000 per storage account, 1-KiB messages
    # (URL_QUEUE_TARGETS).
    "queue_messages_per_second": 2000,
    "account_requests_per_second": 20000,
    # Azure Files (URL_FILES_TARGETS): a standard share allows 1,000 IOPS and 60 MiB/s by default, 20,000 IOPS and up
    # to the account's limits with large file shares (East US LRS is in the "other" row: 2,980 MiB/s in, 5,960 out);
    # a file in a standard share 60 MiB/s, in a premium share 300 MiB/s. A premium (provisioned v1) share gets
    # 3,000 + 1 IOPS per GiB (bursting to max(10,000, 3 per GiB)) and 100 + ceil(0.04 GiB) + ceil(0.06 GiB) MiB/s
    # (URL_FILES_TARGETS, URL_FILES_BILLING); it is 100 GiB at least.
    "files_standard_iops": 1000,
    "files_standard_mib": 60,
    "files_standard_lfs_iops": 20000,
    "files_standard_lfs_mib": 5960,
    "files_standard_file_mib": 60,
    "files_premium_file_mib": 300,
    "files_premium_min_gib": 100,
    # host.json queues: at most batchSize + newBatchThreshold messages at once per instance; a new batch when the
    # number in progress drops to newBatchThreshold (URL_QUEUE_HOST_JSON, "host.json settings").
}


def plans(azure: dict[str, Any] = AZURE) -> dict[str, Plan]:
    """EP1/EP2/EP3 with their list price per instance-hour (vCPU-hours + GB-hours)."""
    return {
        name: Plan(name, cores, memory, cores * azure["price_per_vcpu_hour"] + memory * azure["price_per_gb_hour"])
        for name, (cores, memory) in azure["skus"].items()
    }


def premium_share(gib: int, azure: dict[str, Any] = AZURE) -> Share:
    """A premium (provisioned v1) share of `gib` GiB: baseline IOPS and throughput by the published formulas."""
    gib = max(gib, azure["files_premium_min_gib"])
    iops = min(3000 + gib, 102_400)
    mib = 100 + math.ceil(0.04 * gib) + math.ceil(0.06 * gib)
    return Share(f"premium {gib} GiB", iops, mib, azure["files_premium_file_mib"])


def shares(quota_gib: int = 100, azure: dict[str, Any] = AZURE) -> dict[str, Share]:
    return {
        "standard": Share(
            "standard, large file shares",
            azure["files_standard_lfs_iops"],
            azure["files_standard_lfs_mib"],
            azure["files_standard_file_mib"],
        ),
        "standard-default": Share(
            "standard, default (no large file shares)",
            azure["files_standard_iops"],
            azure["files_standard_mib"],
            azure["files_standard_file_mib"],
        ),
        "premium": premium_share(quota_gib, azure),
    }


# --- what is measured here -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """This project's figures, on this machine (2 cores). Defaults: measured on 2 December 2026 (docs/capacity.md)."""

    # All with FAST_PATH=1 (the default), `benchmarks/run.py --only memory,fast,concurrency`, medians of 3.
    # `fast path: first job`: a fresh job process's first job (it reads and parses every backend file).
    job_seconds_cold: float = 4.539
    # `concurrency`: two warm jobs one after the other (median 3.63 s, so 1.82 s a job; each keeps 1.67 cores busy:
    # the model fits use both cores' BLAS threads) and two at once (median 3.80 s for both: each has one core).
    job_seconds_warm: float = 1.8155
    pair_seconds: float = 3.80
    job_cpu_seconds: float = 3.026
    # `memory`: peak RSS of a job's process with the warm cache on (holding one network's files) and with
    # DATA_CACHE_MB=0.
    peak_memory_mb: float = 543.95
    peak_memory_cache_off_mb: float = 462.65
    # strace -f of `mljob run` for one job (docs/capacity.md): file system calls on JOBS_PATH that reach the share
    # (open, close, stat, read, write, rename, fsync, mkdir, unlink, getdents; lseek left out). Every call is counted
    # as one request: an upper bound, the Linux SMB client caches attributes and gathers writes.
    share_ops_per_job: int = 1632
    share_write_bytes_per_job: int = 4_181_352
    # The same trace on DATA_PATH (a job process's first job; later ones hit the warm cache).
    data_ops_first_job: int = 366
    # Backend files a Human/STRING/Combined job reads (mljob.backend_data.required_files, job_info.json's
    # backend_files) on the realistic synthetic data: 90.5 MB. The real PreTrainedWeights file is 52 MB against the
    # synthetic 38.3 MB (the GenePlexus reference), so the real total is taken as 104.3 MB.
    backend_bytes: int = 104_252_073
    # docs/benchmarks.md (this machine): `import geneplexus` in a fresh interpreter (a new job process) and the
    # enqueue throughput of POST /api/enqueue (Azurite).
    job_process_start_seconds: float = 1.151
    enqueue_jobs_per_second: float = 379.0
    sources: tuple[str, ...] = ("defaults in benchmarks/capacity.py (measured 2 December 2026)",)

    @property
    def cores_used_alone(self) -> float:
        """Average cores a lone warm job keeps busy (CPU time / wall time)."""
        return self.job_cpu_seconds / self.job_seconds_warm

    @property
    def concurrency_gain(self) -> float:
        """Throughput of two jobs at once over two in a row, on 2 cores."""
        return 2 * self.job_seconds_warm / self.pair_seconds


@dataclass(frozen=True)
class Assumed:
    """Neither published nor measurable here."""

    # A new (not pre-warmed) instance: from allocation to a running Functions host with our Python worker.
    instance_start_seconds: float = 30.0
    # An instance with no work left stays allocated (billed) this long before the scale controller removes it.
    idle_release_seconds: float = 300.0
    # Speed of an Azure vCPU against one core of this machine (1.0: the same).
    cpu_speed: float = 1.0
    # Memory of the Functions host and the Python worker beside the job processes.
    host_memory_gb: float = 1.0
    # A running job's queue transactions: put, get, delete.
    queue_ops_per_job: int = 3
    # The instance that was running before the burst notices it within host.json's maxPollingInterval.
    poll_seconds: float = 2.0


def load_measured(paths: list[Path]) -> Measured:
    """The defaults, overridden by every figure found in benchmarks/run.py JSON files (later files win)."""
    measured = Measured()
    if not paths:
        return measured
    changes: dict[str, Any] = {}
    for path in paths:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = {row["what"]: row for row in data.get("rows", [])}
        if "fast path: first job" in rows:  # a job process's first job, as deployed (FAST_PATH=1)
            changes["job_seconds_cold"] = rows["fast path: first job"]["median_a"]
        if "memory" in rows:
            changes["peak_memory_mb"] = rows["memory"]["median_a"]
        if "memory (cache off)" in rows:
            changes["peak_memory_cache_off_mb"] = rows["memory (cache off)"]["median_a"]
        if "cold start" in rows:
            changes["job_process_start_seconds"] = rows["cold start"]["median_b"]
        if "concurrency (2 jobs)" in rows:
            row = rows["concurrency (2 jobs)"]
            changes["pair_seconds"] = row["median_a"]
            changes["job_seconds_warm"] = row["median_b"] / 2
        extra = data.get("concurrency", {}).get("jobs_in_a_row", {})
        if extra.get("cpu_seconds"):
            changes["job_cpu_seconds"] = statistics.median(extra["cpu_seconds"])
    used = (*(str(p) for p in paths), "defaults for what they lack")
    return replace(measured, sources=used, **changes)


def backend_bytes_from(data_path: Path) -> int:
    """Bytes of the files a default job (Human, STRING, Combined) reads, from a backend-data folder."""
    sys.path.insert(0, str(REPO))
    from mljob.backend_data import preload_files

    names = preload_files({"sp_trn": "Human", "net_type": "STRING", "gsc": "Combined"})
    return sum((data_path / name).stat().st_size for name in names)


# --- one instance -----------------------------------------------------------------------------------------------------


def job_seconds(measured: Measured, assumed: Assumed, cores_per_job: float) -> float:
    """Wall time of one warm job given the cores it has: measured with 2 cores (alone) and 1 core (two at once on
    two cores), linear in between, CPU-bound below one core; divided by the assumed vCPU speed."""
    if cores_per_job >= 2:
        seconds = measured.job_seconds_warm
    elif cores_per_job >= 1:
        share = cores_per_job - 1
        seconds = measured.pair_seconds + share * (measured.job_seconds_warm - measured.pair_seconds)
    else:
        seconds = measured.pair_seconds / cores_per_job
    return seconds / assumed.cpu_speed


@dataclass(frozen=True)
class HostJson:
    batch_size: int
    new_batch_threshold: int

    @property
    def concurrency(self) -> int:
        return self.batch_size + self.new_batch_threshold

    def __str__(self) -> str:
        return f"{self.batch_size}/{self.new_batch_threshold}"


def deployed_host_json(path: Path = REPO / "host.json") -> HostJson:
    queues = json.loads(path.read_text(encoding="utf-8"))["extensions"]["queues"]
    return HostJson(queues["batchSize"], queues["newBatchThreshold"])


def recommended_host_json(plan: Plan, measured: Measured, assumed: Assumed) -> HostJson:
    """The number of jobs at once (1 to one per core) that gives the instance the most jobs per hour, the fewest
    on a tie, fetched as a batch (newBatchThreshold 0): the scale controller's target (batchSize) is then what an
    instance runs at once."""
    options = [HostJson(m, 0) for m in range(1, plan.cores + 1)]
    return max(options, key=lambda host: (round(instance_rate(plan, host, measured, assumed), 9), -host.batch_size))


def instance_rate(plan: Plan, host: HostJson, measured: Measured, assumed: Assumed) -> float:
    """Jobs per second of one busy instance running host.concurrency jobs at once."""
    m = host.concurrency
    return m / job_seconds(measured, assumed, plan.cores / m)


def memory_gb(plan: Plan, host: HostJson, measured: Measured, assumed: Assumed, cache_budget_mb: float) -> dict:
    """Memory of a busy instance: typical (each job process's cache holds one network) and worst case (each cache
    full to DATA_CACHE_MB), against the instance's memory."""
    m = host.concurrency
    typical = assumed.host_memory_gb + m * measured.peak_memory_mb / 1024
    worst = assumed.host_memory_gb + m * (measured.peak_memory_cache_off_mb + cache_budget_mb) / 1024
    return {"typical": typical, "worst": worst, "worst_fraction": worst / plan.memory_gb}


def cost_per_job(plan: Plan, host: HostJson, measured: Measured, assumed: Assumed) -> float:
    return plan.price_per_second / instance_rate(plan, host, measured, assumed)


# --- many instances ---------------------------------------------------------------------------------------------------


def saturation(
    plan: Plan, host: HostJson, share: Share, measured: Measured, assumed: Assumed, azure: dict[str, Any] = AZURE
) -> dict[str, float]:
    """Instances at which each shared resource is used up, every instance busy (steady state)."""
    rate = instance_rate(plan, host, measured, assumed)  # jobs/s per instance
    share_ops = measured.share_ops_per_job
    return {
        "share requests": share.iops / (share_ops * rate),
        "share throughput": share.mib_per_second * 2**20 / (measured.share_write_bytes_per_job * rate),
        "queue": azure["queue_messages_per_second"] / (assumed.queue_ops_per_job * rate),
        "storage account requests": azure["account_requests_per_second"]
        / ((share_ops + assumed.queue_ops_per_job) * rate),
        "plan maximum (Linux, East US)": float(azure["max_instances_linux"]),
    }


def first_saturation(sat: dict[str, float]) -> tuple[str, float]:
    name = min(sat, key=lambda k: sat[k])
    return name, sat[name]


def load_seconds(share: Share, measured: Measured, loaders: int) -> float:
    """Time for each of `loaders` job processes starting together to read a first job's backend data from the share:
    each reads one file at a time (the per-file rate) and together they share the share's throughput."""
    rate = min(share.file_mib_per_second, share.mib_per_second / loaders) * 2**20
    return measured.backend_bytes / rate + loaders * measured.data_ops_first_job / share.iops


def steady(
    plan: Plan, host: HostJson, share: Share, instances: int, measured: Measured, assumed: Assumed
) -> dict[str, Any]:
    """Jobs per hour and cost per job with `instances` busy instances; past a saturated resource jobs/hour stays
    flat while every instance is still billed."""
    sat = saturation(plan, host, share, measured, assumed)
    limit_name, limit = first_saturation(sat)
    useful = min(instances, limit)
    jobs_per_hour = useful * instance_rate(plan, host, measured, assumed) * 3600
    cost_per_hour = instances * plan.price_per_hour
    return {
        "plan": plan.name,
        "host": str(host),
        "instances": instances,
        "jobs_per_hour": jobs_per_hour,
        "cost_per_hour": cost_per_hour,
        "cost_per_job": cost_per_hour / jobs_per_hour,
        "limited_by": "CPU of each instance" if instances <= limit else limit_name,
    }


# --- a burst ----------------------------------------------------------------------------------------------------------


@dataclass
class _Instance:
    ready_at: float
    allocated_at: float
    processes: int = 0  # job processes started (each loads the backend data on its first job)
    running: list[float] = field(default_factory=list)  # end times of running jobs
    last_end: float = 0.0


@dataclass(frozen=True)
class BurstResult:
    jobs: int
    seconds_to_last_result: float
    cost: float
    instance_seconds: float
    peak_instances: int
    timeline: list[tuple[float, int, int, int]]  # (t, instances allocated, queue length, jobs done)


def simulate_burst(
    plan: Plan,
    host: HostJson,
    share: Share,
    measured: Measured,
    assumed: Assumed,
    *,
    jobs: int = 1000,
    max_instances: int = 100,
    always_ready: int = 1,
    pre_warmed: int = 1,
    scale_step: int = AZURE["scale_step_instances"],
    scale_interval: float = AZURE["scale_interval_seconds"],
) -> BurstResult:
    """`jobs` messages arrive at t=0 (as fast as POST /api/enqueue sends them). Every scale_interval the scale
    controller wants ceil(queue length / batchSize) instances and adds up to scale_step of them, up to
    max_instances; pre-warmed instances are ready at once (and refilled), new ones after the assumed start time.
    Each instance takes batchSize messages whenever its running jobs drop to newBatchThreshold; each new job process
    first starts (import) and reads the backend data from the share. The share's request rate stretches jobs when
    exceeded. Cost: every allocated instance (pre-warmed ones too) from allocation until it has been idle for the
    assumed release time; the always-ready ones only until the last result (they are billed anyway)."""
    t_enqueued = jobs / measured.enqueue_jobs_per_second
    queue = jobs
    done = 0
    instances: list[_Instance] = [
        _Instance(ready_at=assumed.poll_seconds, allocated_at=0.0, processes=host.concurrency)
        for _ in range(always_ready)
    ]
    buffer: list[_Instance] = [
        _Instance(ready_at=assumed.instance_start_seconds, allocated_at=0.0) for _ in range(pre_warmed)
    ]
    events: list[tuple[float, int, str, int]] = []  # (time, order, kind, instance index)
    order = 0

    def push(t: float, kind: str, index: int) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (t, order, kind, index))

    for i, inst in enumerate(instances):
        push(inst.ready_at, "fetch", i)
    push(scale_interval, "scale", -1)
    share_demand: list[tuple[float, float]] = []  # (end time, requests/s) of running jobs
    loaders: list[float] = []  # end times of running backend-data loads
    timeline: list[tuple[float, int, int, int]] = [(0.0, len(instances) + len(buffer), queue, 0)]
    last_result = 0.0

    def start_jobs(t: float, index: int) -> None:
        nonlocal queue
        inst = instances[index]
        inst.running = [end for end in inst.running if end > t]
        if len(inst.running) > host.new_batch_threshold or queue == 0:
            return
        enqueued = jobs if t >= t_enqueued else int((t + 1e-9) * measured.enqueue_jobs_per_second)
        visible = min(queue, enqueued - (jobs - queue))
        take = min(host.batch_size, visible, host.concurrency - len(inst.running))
        if take <= 0:
            push(t + 0.1, "fetch", index)
            return
        queue -= take
        at_once = len(inst.running) + take
        base = job_seconds(measured, assumed, plan.cores / at_once)
        for _ in range(take):
            extra = 0.0
            if inst.processes < at_once:  # a new job process: starts, then reads the backend data from the share
                inst.processes += 1
                loaders[:] = [end for end in loaders if end > t]
                rate = min(share.file_mib_per_second, share.mib_per_second / (len(loaders) + 1)) * 2**20
                load = measured.backend_bytes / rate + measured.data_ops_first_job / share.iops
                parse = max(0.0, measured.job_seconds_cold - measured.job_seconds_warm) / assumed.cpu_speed
                extra = measured.job_process_start_seconds + load + parse
                loaders.append(t + measured.job_process_start_seconds + load)
            share_demand[:] = [(end, r) for end, r in share_demand if end > t]
            demand = sum(r for _, r in share_demand) + measured.share_ops_per_job / base
            stretch = max(1.0, demand / share.iops)
            seconds = base * stretch + extra
            end = t + seconds
            share_demand.append((end, measured.share_ops_per_job / seconds))
            inst.running.append(end)
            push(end, "end", index)

    while events:
        t, _, kind, index = heapq.heappop(events)
        if kind == "end":
            done += 1
            last_result = max(last_result, t)
            instances[index].last_end = max(instances[index].last_end, t)
            start_jobs(t, index)
            timeline.append((t, len(instances) + len(buffer), queue, done))
        elif kind == "fetch":
            start_jobs(t, index)
        elif kind == "scale" and queue > 0:
            wanted = min(max_instances, math.ceil(queue / host.batch_size))
            active = len(instances)
            add = max(0, min(scale_step, wanted - active))
            for _ in range(add):
                if buffer:
                    inst = buffer.pop(0)
                    inst.ready_at = max(inst.ready_at, t)
                else:
                    inst = _Instance(ready_at=t + assumed.instance_start_seconds, allocated_at=t)
                instances.append(inst)
                push(inst.ready_at, "fetch", len(instances) - 1)
            room = max_instances - len(instances) - len(buffer)
            for _ in range(min(pre_warmed - len(buffer), room)):  # refill the pre-warmed buffer
                buffer.append(_Instance(ready_at=t + assumed.instance_start_seconds, allocated_at=t))
            timeline.append((t, len(instances) + len(buffer), queue, done))
            push(t + scale_interval, "scale", -1)

    seconds = 0.0
    for i, inst in enumerate(instances):
        if i < always_ready:
            seconds += last_result
        else:
            seconds += max(inst.last_end, inst.ready_at) + assumed.idle_release_seconds - inst.allocated_at
    for inst in buffer:
        seconds += last_result + assumed.idle_release_seconds - inst.allocated_at
    timeline.append((last_result, len(instances) + len(buffer), 0, done))
    return BurstResult(
        jobs=done,
        seconds_to_last_result=last_result,
        cost=seconds * plan.price_per_second,
        instance_seconds=seconds,
        peak_instances=len(instances) + len(buffer),
        timeline=timeline,
    )


def knee(
    plan: Plan,
    host: HostJson,
    share: Share,
    measured: Measured,
    assumed: Assumed,
    *,
    within: float = 0.05,
    jobs: int = 1000,
    top: int = 100,
) -> int:
    """The fewest maximum instances whose burst ends within `within` of the time with `top` instances."""
    best = simulate_burst(plan, host, share, measured, assumed, jobs=jobs, max_instances=top).seconds_to_last_result
    for n in range(1, top + 1):
        result = simulate_burst(plan, host, share, measured, assumed, jobs=jobs, max_instances=n)
        if result.seconds_to_last_result <= best * (1 + within):
            return n
    return top


# --- the Terraform defaults -------------------------------------------------------------------------------------------


def terraform_defaults(measured: Measured, assumed: Assumed, azure: dict[str, Any] = AZURE) -> dict[str, Any]:
    """The scale settings Terraform/variables.tf takes its defaults from, and why (docs/capacity.md)."""
    all_plans = plans(azure)
    host = deployed_host_json()
    cache_mb = 2048  # DATA_CACHE_MB's default
    # plan: the smallest plan on which a lone job runs at full speed (it keeps more than one core busy) and that
    # holds its recommended number of jobs, every warm cache full, in at most 90 % of its memory.
    plan_sku = next(
        p.name
        for p in all_plans.values()
        if p.cores >= measured.cores_used_alone
        and memory_gb(p, recommended_host_json(p, measured, assumed), measured, assumed, cache_mb)["worst_fraction"]
        <= 0.9
    )
    plan = all_plans[plan_sku]
    share = shares()["standard"]
    # share: standard with large file shares unless the premium share of the default quota allows more.
    premium = shares()["premium"]
    share_tier = "Premium" if premium.iops > share.iops else "Standard"
    # maximum instances: where a 1,000-job burst stops getting faster (within 5 %) with the deployed host.json,
    # and never past the share's request limit.
    burst_knee = knee(plan, host, share, measured, assumed)
    share_limit = math.floor(saturation(plan, host, share, measured, assumed)["share requests"])
    maximum = min(burst_knee, share_limit, azure["max_instances_linux"])
    return {
        "plan_sku": plan_sku,
        "share_tier": share_tier,
        "maximum_elastic_worker_count": maximum,
        "app_scale_limit": maximum,
        "elastic_instance_minimum": 1,
        "pre_warmed_instance_count": 1,
        "burst_knee": burst_knee,
        "share_limit_instances": share_limit,
    }


# --- report -----------------------------------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"${value:.5f}" if value < 0.01 else f"${value:,.2f}"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.0f} s"


def report(measured: Measured, assumed: Assumed) -> tuple[str, dict[str, Any]]:
    """The markdown tables of docs/capacity.md and the figures behind them."""
    all_plans = plans()
    all_shares = shares()
    share = all_shares["standard"]
    deployed = deployed_host_json()
    cache_mb = 2048
    figures: dict[str, Any] = {"plans": {}, "bursts": {}}
    out: list[str] = []
    out.append(
        f"Inputs: {'; '.join(measured.sources)}. A warm job takes **{measured.job_seconds_warm:.2f} s** alone "
        f"(keeping {measured.cores_used_alone:.2f} cores busy), a job process's first job "
        f"{measured.job_seconds_cold:.2f} s; two at once take {measured.pair_seconds:.2f} s for both: "
        f"**x{measured.concurrency_gain:.2f}** the throughput of one at a time on 2 cores. Peak memory of a job's "
        f"process {measured.peak_memory_mb:.0f} MB (warm cache holding one network). A first job reads "
        f"{measured.backend_bytes / 1e6:.1f} MB of backend data. host.json deploys batchSize/newBatchThreshold "
        f"**{deployed}**. Prices: {AZURE['price_region']} list price, {AZURE['price_date']}."
    )
    out.append("")
    out.append("### One instance, per plan")
    out.append("")
    out.append(
        "| plan | cores, memory | price/hour | host.json | jobs at once | job time | jobs/hour | cost/job | "
        "memory typical / worst case | "
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    for plan in all_plans.values():
        for host in dict.fromkeys([HostJson(1, 0), recommended_host_json(plan, measured, assumed)]):
            rate = instance_rate(plan, host, measured, assumed)
            mem = memory_gb(plan, host, measured, assumed, cache_mb)
            seconds = job_seconds(measured, assumed, plan.cores / host.concurrency)
            tag = " (recommended)" if host == recommended_host_json(plan, measured, assumed) else ""
            out.append(
                f"| {plan.name} | {plan.cores} vCPU, {plan.memory_gb:g} GB | ${plan.price_per_hour:.4f} | {host}{tag} "
                f"| {host.concurrency} | {seconds:.2f} s | {rate * 3600:,.0f} | "
                f"{_money(cost_per_job(plan, host, measured, assumed))} | {mem['typical']:.1f} / {mem['worst']:.1f} GB "
                f"({mem['worst_fraction']:.0%}) |"
            )
            figures["plans"].setdefault(plan.name, {})[str(host)] = {
                "jobs_per_hour": rate * 3600,
                "cost_per_job": cost_per_job(plan, host, measured, assumed),
                "job_seconds": seconds,
                "memory_worst_fraction": mem["worst_fraction"],
            }
    out.append("")
    out.append(
        "Memory: Functions host and Python worker (assumed "
        f"{assumed.host_memory_gb:g} GB) plus, per job at once, the job process's peak; the worst case fills each job "
        f"process's warm cache to DATA_CACHE_MB ({cache_mb} MB). Memory never limits before the cores do."
    )
    out.append("")
    out.append("### Where it saturates (every instance busy, recommended host.json)")
    out.append("")
    names = list(saturation(all_plans["EP2"], HostJson(2, 0), share, measured, assumed))
    out.append("| plan | share | " + " | ".join(names) + " | first |")
    out.append("|---|---|" + "---|" * len(names) + "---|")
    for plan in all_plans.values():
        host = recommended_host_json(plan, measured, assumed)
        for key in ("standard", "standard-default", "premium"):
            sat = saturation(plan, host, all_shares[key], measured, assumed)
            first, value = first_saturation(sat)
            cells = " | ".join(f"{sat[n]:,.0f}" for n in names)
            out.append(f"| {plan.name} {host} | {all_shares[key].name} | {cells} | **{first}** at {value:,.0f} |")
            figures["plans"][plan.name].setdefault("saturation", {})[key] = {"first": first, "instances": value}
    out.append("")
    out.append(
        "Instances at which each resource is used up. Share requests: "
        f"{measured.share_ops_per_job:,} file operations per job on jobs/ (an upper bound, see below); queue: "
        f"{assumed.queue_ops_per_job} transactions per job against {AZURE['queue_messages_per_second']:,} messages/s."
    )
    out.append("")
    out.append("### Jobs per hour and cost per job against instances (standard share, large file shares)")
    out.append("")
    counts = [1, 2, 5, 10, 20, 50, 100]
    out.append("| plan, host.json | " + " | ".join(f"{n} inst." for n in counts) + " |")
    out.append("|---|" + "---|" * len(counts))
    figures["steady"] = {}
    for plan in all_plans.values():
        for host in dict.fromkeys([deployed, recommended_host_json(plan, measured, assumed)]):
            rows = [steady(plan, host, share, n, measured, assumed) for n in counts]
            figures["steady"][f"{plan.name} {host}"] = rows
            cells = " | ".join(
                f"{r['jobs_per_hour']:,.0f}/h, {_money(r['cost_per_job'])}"
                + ("" if r["limited_by"].startswith("CPU") else f" ({r['limited_by']})")
                for r in rows
            )
            out.append(f"| {plan.name} {host}{' (deployed)' if host == deployed else ''} | {cells} |")
    out.append("")
    out.append(
        "Past the first saturated resource jobs/hour stays flat while every instance is still billed, so the cost "
        "of a job rises."
    )
    out.append("")
    out.append("### New instances loading the backend data from the share")
    out.append("")
    out.append(
        "A job process's first job reads the backend data (above) from `data/`; later jobs find it in the warm "
        "cache. The scale controller adds at most "
        f"{AZURE['scale_step_instances']} instances every {AZURE['scale_interval_seconds']} s."
    )
    out.append("")
    out.append(
        "| share | throughput of the share / of one file | one instance alone | 4 at once (a scale-out step) "
        "| 100 at once (e.g. all restarted) |"
    )
    out.append("|---|---|---|---|---|")
    for key in ("standard", "standard-default", "premium"):
        item = all_shares[key]
        loads = [load_seconds(item, measured, n) for n in (1, 4, 100)]
        out.append(
            f"| {item.name} | {item.mib_per_second:,.0f} / {item.file_mib_per_second:,.0f} MiB/s | {loads[0]:.1f} s | "
            f"{loads[1]:.1f} s each | {loads[2]:.0f} s each |"
        )
        figures.setdefault("loads", {})[key] = loads
    out.append("")
    out.append("### A burst: 1,000 jobs submitted at once")
    out.append("")
    defaults = terraform_defaults(measured, assumed)
    out.append(
        f"Maximum {defaults['maximum_elastic_worker_count']} instances (the Terraform default) and 100 (East US's "
        "Linux maximum); one always-ready and one pre-warmed instance; the scale controller adds up to "
        f"{AZURE['scale_step_instances']} instances every {AZURE['scale_interval_seconds']} s; a new instance starts "
        f"in {assumed.instance_start_seconds:.0f} s (assumed); an idle one is released after "
        f"{assumed.idle_release_seconds:.0f} s (assumed); standard share with large file shares."
    )
    out.append("")
    out.append("| plan | host.json | max instances | last result after | cost | peak instances | cost/job |")
    out.append("|---|---|---|---|---|---|---|")
    for plan in all_plans.values():
        for host in dict.fromkeys([deployed, recommended_host_json(plan, measured, assumed)]):
            for top in (defaults["maximum_elastic_worker_count"], 100):
                result = simulate_burst(plan, host, share, measured, assumed, max_instances=top)
                figures["bursts"][f"{plan.name} {host} max {top}"] = result
                out.append(
                    f"| {plan.name} | {host}{' (deployed)' if host == deployed else ''} | {top} | "
                    f"**{_duration(result.seconds_to_last_result)}** | **{_money(result.cost)}** | "
                    f"{result.peak_instances} | {_money(result.cost / result.jobs)} |"
                )
    out.append("")
    out.append("Sensitivity (EP2, deployed host.json, Terraform default maximum):")
    out.append("")
    out.append("| variant | last result after | cost |")
    out.append("|---|---|---|")
    ep2 = all_plans["EP2"]
    top = defaults["maximum_elastic_worker_count"]
    variants = [
        ("as above", {}, assumed, share),
        ("no pre-warmed instance", {"pre_warmed": 0}, assumed, share),
        ("new instance starts in 60 s", {}, replace(assumed, instance_start_seconds=60), share),
        ("incremental scaling (1 instance per 30 s)", {"scale_step": 1}, assumed, share),
        ("idle instances released after 60 s", {}, replace(assumed, idle_release_seconds=60), share),
        ("Azure vCPU half as fast as this machine's core", {}, replace(assumed, cpu_speed=0.5), share),
        ("standard share without large file shares", {}, assumed, all_shares["standard-default"]),
        ("premium share, 100 GiB", {}, assumed, all_shares["premium"]),
    ]
    for label, kwargs, variant_assumed, variant_share in variants:
        result = simulate_burst(ep2, deployed, variant_share, measured, variant_assumed, max_instances=top, **kwargs)
        out.append(f"| {label} | {_duration(result.seconds_to_last_result)} | {_money(result.cost)} |")
    out.append("")
    out.append("### The Terraform defaults this gives")
    out.append("")
    out.append("| variable | default | from |")
    out.append("|---|---|---|")
    plan = all_plans[defaults["plan_sku"]]
    out.append(
        f"| `plan_sku` | {defaults['plan_sku']} | the smallest plan with more cores than a lone job keeps busy "
        f"({measured.cores_used_alone:.2f}) whose recommended jobs at once, each with a full {cache_mb} MB cache, fit "
        "in 90 % of its memory |"
    )
    out.append(
        f"| `maximum_elastic_worker_count` | {defaults['maximum_elastic_worker_count']} | the burst stops getting "
        f"faster (within 5 %) past {defaults['burst_knee']} instances ({plan.name}, host.json {deployed}); the "
        f"share's requests would run out at {defaults['share_limit_instances']} |"
    )
    out.append(
        f"| `app_scale_limit` | {defaults['app_scale_limit']} | the same: one app in the plan, and the share "
        "allows more |"
    )
    out.append(
        f"| `elastic_instance_minimum` | 1 | one instance serves "
        f"{instance_rate(plan, deployed, measured, assumed) * 3600:,.0f} jobs/hour; each more costs "
        f"{_money(plan.price_per_hour * 730)} a month |"
    )
    out.append(
        "| `pre_warmed_instance_count` | 1 | the first instance added by a scale-out is ready at once (see the "
        "sensitivity table); Azure's default |"
    )
    out.append(
        f"| `share_tier` | {defaults['share_tier']} | large file shares give {AZURE['files_standard_lfs_iops']:,} "
        f"requests/s; a premium share of 100 GiB gives {all_shares['premium'].iops:,.0f} |"
    )
    figures["defaults"] = defaults
    return "\n".join(out), figures


def plot(measured: Measured, assumed: Assumed, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    all_plans = plans()
    share = shares()["standard"]
    deployed = deployed_host_json()
    defaults = terraform_defaults(measured, assumed)
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    (jobs_ax, cost_ax), (burst_ax, knee_ax) = axes
    counts = list(range(1, 101))
    colours = {"EP1": "#0072B2", "EP2": "#D55E00", "EP3": "#009E73"}
    for plan in all_plans.values():
        for host, style in ((recommended_host_json(plan, measured, assumed), "-"), (HostJson(1, 0), ":")):
            if style == ":" and host == recommended_host_json(plan, measured, assumed):
                continue
            rows = [steady(plan, host, share, n, measured, assumed) for n in counts]
            label = f"{plan.name}, batchSize {host}"
            jobs_ax.plot(counts, [r["jobs_per_hour"] for r in rows], style, color=colours[plan.name], label=label)
            cost_ax.plot(counts, [r["cost_per_job"] * 1000 for r in rows], style, color=colours[plan.name], label=label)
        limit = saturation(plan, recommended_host_json(plan, measured, assumed), share, measured, assumed)[
            "share requests"
        ]
        if limit <= 100:
            jobs_ax.axvline(limit, color=colours[plan.name], alpha=0.3, linewidth=4)
    jobs_ax.set(xlabel="busy instances", ylabel="jobs per hour", title="Throughput (thick lines: share saturates)")
    cost_ax.set(xlabel="busy instances", ylabel="USD per 1,000 jobs", title="Cost per job", ylim=(0, None))
    for plan in all_plans.values():
        host = recommended_host_json(plan, measured, assumed)
        result = simulate_burst(
            plan, host, share, measured, assumed, max_instances=defaults["maximum_elastic_worker_count"]
        )
        ts = [p[0] / 60 for p in result.timeline]
        burst_ax.step(
            ts,
            [p[2] for p in result.timeline],
            where="post",
            color=colours[plan.name],
            label=f"{plan.name} {host}: queue",
        )
        burst_ax.step(
            ts,
            [p[1] * 10 for p in result.timeline],
            where="post",
            color=colours[plan.name],
            alpha=0.5,
            linestyle="--",
            label=f"{plan.name}: instances x10",
        )
    burst_ax.set(
        xlabel="minutes after 1,000 jobs were submitted",
        ylabel="messages / instances x10",
        title=f"Burst, max {defaults['maximum_elastic_worker_count']} instances, recommended host.json",
    )
    tops = [1, 2, 4, 6, 8, 10, 15, 20, 25, 30, 35, 40, 50, 60, 80, 100]
    for plan in all_plans.values():
        for host, style in ((recommended_host_json(plan, measured, assumed), "-"), (deployed, ":")):
            if host == deployed and host == recommended_host_json(plan, measured, assumed) and style == ":":
                continue
            results = [simulate_burst(plan, host, share, measured, assumed, max_instances=n) for n in tops]
            knee_ax.plot(
                tops,
                [r.seconds_to_last_result / 60 for r in results],
                style,
                color=colours[plan.name],
                marker="o",
                markersize=3,
                label=f"{plan.name}, batchSize {host}",
            )
    knee_ax.axvline(defaults["maximum_elastic_worker_count"], color="grey", linestyle="--", label="Terraform default")
    knee_ax.set(
        xlabel="maximum instances",
        ylabel="minutes to the last result",
        yscale="log",
        title="Burst of 1,000 jobs against the maximum instance count",
    )
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("mljob on Elastic Premium: measured job figures x Azure's published limits (docs/capacity.md)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


def write_doc(path: Path, tables: str) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = text.index(DOC_BEGIN) + len(DOC_BEGIN), text.index(DOC_END)
    path.write_text(text[:start] + "\n\n" + tables + "\n\n" + text[end:], encoding="utf-8")
    print(f"tables written into {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--measured",
        type=Path,
        action="append",
        default=[],
        help="benchmarks/run.py --json output (overhead, memory, concurrency, cold); repeatable",
    )
    parser.add_argument("--data-path", type=Path, help="take the backend bytes of a default job from this data folder")
    parser.add_argument("--doc", type=Path, help="rewrite the generated tables in this markdown file")
    parser.add_argument("--plot", type=Path, help="write the figure (PNG; needs matplotlib)")
    args = parser.parse_args(argv)
    measured = load_measured(args.measured)
    if args.data_path:
        measured = replace(measured, backend_bytes=backend_bytes_from(args.data_path))
    assumed = Assumed()
    tables, _ = report(measured, assumed)
    print(tables)
    if args.doc:
        write_doc(args.doc, tables)
    if args.plot:
        plot(measured, assumed, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
