"""Prometheus metrics of one running bot, kept in a registry of its own (not the global one)
so that several apps in one test process never mix their numbers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class _CallbackCollector(Collector):
    """Reads counters kept elsewhere (the usage writer, the outbox) at scrape time."""

    def __init__(self) -> None:
        self.counters: dict[str, tuple[str, Callable[[], float]]] = {}
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def collect(self) -> Iterator[Metric]:
        for name, (doc, read) in self.counters.items():
            yield CounterMetricFamily(name, doc, value=read())
        for name, (doc, read) in self.gauges.items():
            yield GaugeMetricFamily(name, doc, value=read())


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "persona_bot_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "persona_bot_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commands = Counter(
            "persona_bot_commands",
            "Commands handled by verb, platform and outcome",
            ["verb", "platform", "outcome"],
            registry=self.registry,
        )
        self.command_latency = Histogram(
            "persona_bot_command_seconds",
            "Time to answer a command, by verb",
            ["verb"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._callbacks = _CallbackCollector()
        self.registry.register(self._callbacks)

    def counter_from(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self._callbacks.counters[name] = (doc, read)

    def gauge_from(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self._callbacks.gauges[name] = (doc, read)

    def render(self) -> bytes:
        return generate_latest(self.registry)
