"""`make bench` shows the local runtime's figures beside the previous run's."""

from __future__ import annotations

from bench import run

PREVIOUS = """# Benchmark results

- date: 2026-11-29T13:13:05+00:00

## 5. The local runtime at interactive speed (idle settle; 1,000 orders from 10 clients)

| figure | result | target |
|---|---|---|
| sustained: 1000 orders from 10 clients offered at 5/s | 4.35 orders/s settled | ≥ 5 |
| POST /orders p50 / p95 | 258 ms / 494 ms | p95 ≤ 300 ms |

## 6. One DynamoDB request against the local moto server

0.78 ms per GetItem
"""


def test_each_figure_is_shown_beside_the_previous_runs_even_when_its_parameters_changed():
    body = "\n".join(["| figure | result | target |", "|---|---|---|",
                      "| sustained: 1000 orders from 10 clients offered at 5.5/s | 5.47 orders/s settled | ≥ 5 |",
                      "| POST /orders p50 / p95 | 31 ms / 76 ms | p95 ≤ 300 ms |",
                      "| a new figure | 1 | 2 |", "", "Requests per order by action: x"])
    shown = run.with_previous(body, run.previous_section(PREVIOUS, "5"), "2026-11-29T13:13").splitlines()
    assert shown[0] == "| figure | result | previous run (2026-11-29T13:13) | target |"
    assert shown[2] == ("| sustained: 1000 orders from 10 clients offered at 5.5/s | 5.47 orders/s settled "
                        "| 4.35 orders/s settled | ≥ 5 |")
    assert shown[3] == "| POST /orders p50 / p95 | 31 ms / 76 ms | 258 ms / 494 ms | p95 ≤ 300 ms |"
    assert shown[4] == "| a new figure | 1 | – | 2 |"
    assert shown[-1] == "Requests per order by action: x"
    assert run.previous_section(PREVIOUS, "7") == ""
