"""Reading a `harvest serve`'s /metrics as Prometheus would: every sample, by name and labels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import requests
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    text: str
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 when the series does not exist (yet)."""
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every series of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(
            value for (sample, have), value in self.samples.items() if sample == name and wanted <= set(have)
        )

    def label_values(self) -> dict[str, set[str]]:
        """label name -> every value it takes in this scrape."""
        found: dict[str, set[str]] = {}
        for _name, labels in self.samples:
            for label, value in labels:
                found.setdefault(label, set()).add(value)
        return found


def parse(text: str) -> Scrape:
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return Scrape(text, samples)


def scrape(base_url: str, headers: Mapping[str, str] | None = None) -> Scrape:
    response = requests.get(f"{base_url}/metrics", headers=dict(headers or {}), timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)
