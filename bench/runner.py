"""The measurements: interleaved rounds of wrk runs, each with the CPU it cost the Quill workers
and PostgreSQL, then medians over the rounds."""

import statistics
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench import dataset, probes, wrk
from bench.deployment import Deployment
from bench.endpoints import (
    CREATE_POST,
    GET_SCRIPTS,
    HEALTH,
    LOGIN,
    POST_BY_ID_CACHED,
    POST_BY_ID_UNCACHED,
    Cache,
    Credentials,
    Endpoint,
)
from bench.servers import Server

HELLO = "hello (ceiling)"
STORM_READ = "post by id, cached, during login storm"
STORM_HEALTH = "health during login storm (p99 probe)"
HALF_LOAD_SUFFIX = " @ half load"
PACED_ENDPOINTS = (POST_BY_ID_CACHED, POST_BY_ID_UNCACHED, CREATE_POST)
# The /health probe during the storm: one connection, a request every 20 ms.
PROBE_LOAD_DELAY_MS = 20
WARM_UP_REQUESTS = 5
# Short enough for several requests per connection in a 1 s run (--quick).
PACED_DELAY_SECONDS = 0.25
# A login storm's leftovers take a few seconds of argon2 to drain; more than this is a hang.
SETTLE_MAX_SECONDS = 15.0
SETTLE_REPORT_SECONDS = 1.0


@dataclass(frozen=True)
class Sample:
    """One wrk run and what it cost; CPU is None where it is not attributable."""

    result: wrk.WrkResult
    worker_cpu_ms_per_request: float | None = None
    postgres_cpu_ms_per_request: float | None = None
    offered_requests_per_second: float | None = None


@dataclass(frozen=True)
class Row:
    """The medians over rounds of one endpoint on one configuration; errors are summed."""

    endpoint: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    rounds: int
    worker_cpu_ms_per_request: float | None
    postgres_cpu_ms_per_request: float | None
    offered_requests_per_second: float | None = None
    ratio_to_hello: float | None = None


@dataclass
class Measurements:
    # samples[configuration][endpoint]: one per round, in order.
    samples: dict[str, dict[str, list[Sample]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    # rss_after_round[configuration][server]: per round, each worker's RSS (MiB) after it.
    rss_after_round: dict[str, dict[str, list[list[float]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    peak_rss_per_worker: dict[str, dict[str, list[float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class RunPlan:
    rounds: int
    load: wrk.Load
    run_id: str


class Runner:
    def __init__(
        self, plan: RunPlan, hello: Server | None, deployments: Sequence[Deployment]
    ) -> None:
        self._plan = plan
        self._hello = hello
        self._deployments = deployments
        self._wrk_runs = 0
        self.measurements = Measurements()

    def warm_up(self, endpoints: Sequence[Endpoint]) -> None:
        """A few requests to every GET, so that round 1 does not measure first-request costs
        (imports, statement caches, pool connections, the cache's first fill)."""
        for deployment in self._deployments:
            for endpoint in endpoints:
                if endpoint.scripts != GET_SCRIPTS:
                    continue
                url = deployment.servers[endpoint.cache].base_url + endpoint.path
                authorization = deployment.authorizations[endpoint.credentials]
                headers = {"Authorization": authorization} if authorization else {}
                for _ in range(WARM_UP_REQUESTS):
                    request = urllib.request.Request(url, headers=headers)  # noqa: S310
                    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                        response.read()

    def _settle(self) -> None:
        """Waits for every server and PostgreSQL to go idle: what the last run left queued
        must not be paid for by the next."""
        pids = [
            pid
            for deployment in self._deployments
            for server in deployment.servers.values()
            for pid in server.worker_pids()
        ]
        for deployment in self._deployments:
            pids.extend(deployment.configuration.postgres_processes())
        waited = probes.wait_until_idle(pids, SETTLE_MAX_SECONDS)
        if waited > SETTLE_REPORT_SECONDS:
            print(f"  (waited {waited:.1f} s for the servers to go idle)", flush=True)

    def rounds(self, endpoints: Sequence[Endpoint]) -> None:
        """For each round, each endpoint, each configuration: so that a slow minute of the
        machine spreads over all of them instead of falling on one."""
        for round_number in range(1, self._plan.rounds + 1):
            print(f"round {round_number}/{self._plan.rounds}", flush=True)
            if self._hello is not None:
                self._settle()
                result = wrk.run(f"{self._hello.base_url}/", GET_SCRIPTS, self._plan.load, {})
                self._keep(HELLO, HELLO, Sample(result))
            for endpoint in endpoints:
                for deployment in self._deployments:
                    self._keep(deployment.name, endpoint.name, self._measure(deployment, endpoint))
            for deployment in self._deployments:
                if LOGIN in {endpoint.name for endpoint in endpoints}:
                    self._login_storm(deployment, endpoints)
                self._record_memory(deployment)

    def paced(self, endpoints: Sequence[Endpoint]) -> None:
        """p99 at an offered load of half the measured median throughput."""
        by_name = {endpoint.name: endpoint for endpoint in endpoints}
        for name in PACED_ENDPOINTS:
            for deployment in self._deployments:
                measured = self.measurements.samples[deployment.name].get(name)
                if not measured:
                    continue
                rate = statistics.median(s.result.requests_per_second for s in measured) / 2
                most = by_name[name].connections or self._plan.load.connections
                # Enough connections that each waits about PACED_DELAY_SECONDS: a slow write
                # (tens per second) on 64 connections would wait seconds before its first send.
                connections = min(most, max(1, round(rate * PACED_DELAY_SECONDS)))
                # Each connection waits connections/rate seconds between requests: together
                # they offer `rate`, less whatever the latency itself takes (closed loop).
                delay_ms = max(1, round(connections / rate * 1000)) if rate else 1000
                sample = self._measure(
                    deployment, by_name[name], delay_ms=delay_ms, connections=connections
                )
                paced = Sample(
                    sample.result,
                    sample.worker_cpu_ms_per_request,
                    sample.postgres_cpu_ms_per_request,
                    offered_requests_per_second=rate,
                )
                self._keep(deployment.name, name + HALF_LOAD_SUFFIX, paced)

    def _measure(
        self,
        deployment: Deployment,
        endpoint: Endpoint,
        delay_ms: int | None = None,
        connections: int | None = None,
    ) -> Sample:
        server = deployment.servers[endpoint.cache]
        load = wrk.Load(
            self._plan.load.threads,
            connections or endpoint.connections or self._plan.load.connections,
            max(self._plan.load.seconds, endpoint.min_seconds),
        )
        scripts = (*endpoint.scripts, "pacing") if delay_ms is not None else endpoint.scripts
        environment = self._script_environment(deployment, endpoint.credentials)
        if delay_ms is not None:
            environment["BENCH_DELAY_MS"] = str(delay_ms)
        run = wrk.WrkRun(server.base_url + endpoint.path, scripts, load, environment)
        workers = server.worker_pids()
        postgres_pids = deployment.configuration.postgres_processes()
        self._settle()
        workers_before = probes.cpu_by_pid(workers)
        postgres_before = probes.cpu_by_pid(postgres_pids)
        result = run.start().result()
        worker_seconds = probes.cpu_spent(workers_before, probes.cpu_by_pid(workers))
        # Backends started during the run are not in the list: the pools' connections are
        # open before it, and the few new ones cost little.
        postgres_seconds = probes.cpu_spent(postgres_before, probes.cpu_by_pid(postgres_pids))
        per_request = 1000 / result.requests if result.requests else 0.0
        return Sample(
            result,
            worker_seconds * per_request,
            postgres_seconds * per_request if postgres_pids else None,
        )

    def _login_storm(self, deployment: Deployment, endpoints: Sequence[Endpoint]) -> None:
        """Logins (argon2, CPU-bound) at full speed beside a cached read and a slow /health
        probe, all on the cached server: does hashing starve the cheap requests?"""
        by_name = {endpoint.name: endpoint for endpoint in endpoints}
        server = deployment.servers[Cache.ON]
        login, read, health = by_name[LOGIN], by_name[POST_BY_ID_CACHED], by_name[HEALTH]
        seconds = max(self._plan.load.seconds, login.min_seconds)
        self._settle()
        runs = [
            wrk.WrkRun(
                server.base_url + login.path,
                login.scripts,
                wrk.Load(self._plan.load.threads, login.connections or 16, seconds),
                self._script_environment(deployment, login.credentials),
            ),
            wrk.WrkRun(
                server.base_url + read.path,
                read.scripts,
                wrk.Load(self._plan.load.threads, self._plan.load.connections, seconds),
                self._script_environment(deployment, read.credentials),
            ),
            wrk.WrkRun(
                server.base_url + health.path,
                (*health.scripts, "pacing"),
                wrk.Load(1, 1, seconds),
                {"BENCH_DELAY_MS": str(PROBE_LOAD_DELAY_MS)},
            ),
        ]
        for run in runs:
            run.start()
        _, read_result, health_result = (run.result() for run in runs)
        self._keep(deployment.name, STORM_READ, Sample(read_result))
        self._keep(deployment.name, STORM_HEALTH, Sample(health_result))

    def _record_memory(self, deployment: Deployment) -> None:
        for cache, server in deployment.servers.items():
            memories = [probes.memory(pid) for pid in server.worker_pids()]
            known = [memory for memory in memories if memory is not None]
            self.measurements.rss_after_round[deployment.name][str(cache)].append(
                [round(memory.rss_mib, 1) for memory in known]
            )
            self.measurements.peak_rss_per_worker.setdefault(deployment.name, {})[str(cache)] = [
                round(memory.peak_rss_mib, 1) for memory in known
            ]

    def _script_environment(
        self, deployment: Deployment, credentials: Credentials
    ) -> dict[str, str]:
        """What the Lua scripts read; a new BENCH_RUN_ID for each wrk run, so that no two
        requests of the whole benchmark post the same body."""
        self._wrk_runs += 1
        return {
            "BENCH_AUTHORIZATION": deployment.authorizations[credentials],
            "BENCH_RUN_ID": f"{self._plan.run_id}-{self._wrk_runs}",
            "BENCH_USERNAME": dataset.BENCH_USERNAME,
            "BENCH_PASSWORD": dataset.BENCH_PASSWORD,
        }

    def _keep(self, configuration: str, endpoint: str, sample: Sample) -> None:
        self.measurements.samples[configuration][endpoint].append(sample)
        result = sample.result
        print(
            f"  {configuration:<22} {endpoint:<44} {result.requests_per_second:9.0f} req/s "
            f"p99 {result.p99_ms:7.1f} ms errors {result.errors}",
            flush=True,
        )


def summarize(measurements: Measurements) -> dict[str, list[Row]]:
    """Medians per configuration and endpoint, with the ratio to the ceiling's median."""
    hello_samples = measurements.samples.get(HELLO, {}).get(HELLO, [])
    hello_rps = (
        statistics.median(s.result.requests_per_second for s in hello_samples)
        if hello_samples
        else None
    )
    rows: dict[str, list[Row]] = {}
    for configuration, by_endpoint in measurements.samples.items():
        rows[configuration] = [
            _row(endpoint, samples, hello_rps) for endpoint, samples in by_endpoint.items()
        ]
    return rows


def _row(endpoint: str, samples: list[Sample], hello_rps: float | None) -> Row:
    rps = statistics.median(s.result.requests_per_second for s in samples)
    # A paced run's or the probe's req/s is what was offered, not what the server can do.
    at_full_speed = not endpoint.endswith(HALF_LOAD_SUFFIX) and endpoint != STORM_HEALTH
    return Row(
        endpoint=endpoint,
        requests_per_second=rps,
        p50_ms=statistics.median(s.result.p50_ms for s in samples),
        p99_ms=statistics.median(s.result.p99_ms for s in samples),
        errors=sum(s.result.errors for s in samples),
        rounds=len(samples),
        worker_cpu_ms_per_request=_median_or_none([s.worker_cpu_ms_per_request for s in samples]),
        postgres_cpu_ms_per_request=_median_or_none(
            [s.postgres_cpu_ms_per_request for s in samples]
        ),
        offered_requests_per_second=_median_or_none(
            [s.offered_requests_per_second for s in samples]
        ),
        ratio_to_hello=rps / hello_rps if hello_rps and at_full_speed else None,
    )


def _median_or_none(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None
