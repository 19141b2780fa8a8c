"""The printed table: every number of results.json that a reader needs, with targets and verdicts."""

from __future__ import annotations

from typing import Any


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _tools_block(block: dict[str, Any]) -> list[str]:
    tools = block["tools"]
    names = {
        "aria2c": f"(a) raw: aria2c -j {block['jobs']} -x 1",
        "curl": f"    raw: curl --parallel-max {block['jobs']}",
        "harvest": "(b) harvest serve, Create->Completed",
        "harvest_dash": "(b) the same from a DASH endpoint (MPD)",
        "ffmpeg": f"(c) ffmpeg -c copy ({block['ffmpeg_mode']})",
    }
    lines = [
        f"  origin latency {block['latency_ms']:g} ms: {block['segments']} segments, {block['mb']:,.1f} MB",
        f"    {'tool':<38}{'time s':>8}{'MB/s':>9}{'seg/s':>9}{'peak RSS MB':>13}{'CPU s':>8}"
        f"{'origin CPU s':>14}",
    ]
    for key, label in names.items():
        row = tools.get(key)
        if row is None:
            lines.append(f"    {label:<38}  (not installed)")
            continue
        lines.append(
            f"    {label:<38}{row['seconds']:>8.2f}{row['mb_per_s']:>9.1f}{row['segments_per_s']:>9.1f}"
            f"{row['peak_rss_mb']:>13.1f}{row['cpu_seconds']:>8.2f}{row['origin_cpu_seconds']:>14.2f}"
        )
        if "durable_seconds" in row:
            synced = f"      then syncing its files ({row['sync_seconds']:.2f} s)"
            lines.append(f"    {synced:<38}{row['durable_seconds']:>8.2f}")
    labels = {
        "harvest_over_raw": "harvest / raw (aria2c) time",
        "harvest_over_fastest_raw": "harvest / fastest raw time",
        "harvest_over_fastest_durable_raw": "harvest / fastest raw + sync",
        "harvest_cpu_over_curl": "harvest / curl CPU seconds",
        "ffmpeg_over_harvest": "ffmpeg / harvest time",
    }
    for key, label in labels.items():
        ratio = block["ratios"].get(key)
        if ratio is None:
            continue
        target = f"   target {ratio['target']:<8} {_verdict(ratio['pass'])}" if ratio["target"] else ""
        lines.append(f"    {label:<32}{ratio['value']:>6.2f}x{target}")
    return lines


def _harvest_rows(title: str, rows: list[dict[str, Any]], key: str, label: str) -> list[str]:
    lines = [
        title,
        f"    {label:<16}{'segments':>10}{'MB':>10}{'time s':>9}{'MB/s':>9}{'seg/s':>9}{'peak RSS MB':>13}"
        f"{'CPU s':>8}",
    ]
    for row in rows:
        lines.append(
            f"    {row[key]!s:<16}{row['segments']:>10}{row['mb']:>10,.1f}{row['seconds']:>9.2f}"
            f"{row['mb_per_s']:>9.1f}{row['segments_per_s']:>9.1f}{row['peak_rss_mb']:>13.1f}{row['cpu_seconds']:>8.2f}"
        )
    return lines


def render(results: dict[str, Any]) -> str:
    """The run's text report: one section per measurement the run holds, in a fixed order."""
    sections = (
        _header,
        _comparison_lines,
        _planning_lines,
        _api_lines,
        _throughput_lines,
        _run_rows,
        lambda r: _scf_lines(r["scf_cost"]) if r.get("scf_cost") else [],
        _target_lines,
    )
    lines = [line for section in sections for line in section(results)]
    for problem in results.get("errors", []):
        lines.append(f"\nERROR in {problem['stage']}: {problem['error']}")
    lines.append("")
    return "\n".join(lines)


def _header(results: dict[str, Any]) -> list[str]:
    config = results["config"]
    machine = results["machine"]
    return [
        "",
        f"harvest benchmark, {results['finished_at']}",
        f"machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gb']} GB RAM,"
        f" {machine['kernel']}; {machine['tools']}",
        f"machine speed: a 10-million-step Python loop takes {machine.get('python_loop_10m_s', '?')} s"
        " at the run's start (it moves between runs; absolute rates move with the machine)",
        f"window: {config['renditions']} renditions x {config['window_s']} s of {config['segment_seconds']} s"
        f" segments of {config['segment_kb']} KB (real H.264/AAC MPEG-TS, null-padded to size)",
        f"harvest serve: {config['harvest_setup']}",
    ]


def _comparison_lines(results: dict[str, Any]) -> list[str]:
    if not results.get("comparison"):
        return []
    lines = ["", "(a)(b)(c) the same window: raw download, harvest, ffmpeg"]
    for block in results["comparison"]:
        lines += _tools_block(block)
    return lines


def _planning_lines(results: dict[str, Any]) -> list[str]:
    planning = results.get("planning")
    if not planning:
        return []
    lines = ["", "planning (harvest.engine.plan.build_plan: parse, select, write)"]
    cases = (("media_playlist", "media playlist"), ("master_all_renditions", "master, every rendition"))
    for key, label in cases:
        row = planning[key]
        verdict = f"target <= {planning['target_s']} s {_verdict(row['pass'])}" if "pass" in row else ""
        lines.append(
            f"    {label:<26}{row['segments']:>8} segments  best {row['best_s']:.3f} s"
            f"  median {row['median_s']:.3f} s  {verdict}"
        )
    lines.append(
        f"    (parse alone {planning['media_playlist']['parse_only_best_s']:.3f} s; chunking + JSON"
        f" of the master plan {planning['master_all_renditions']['chunk_and_json_s']:.3f} s)"
    )
    return lines


def _api_lines(results: dict[str, Any]) -> list[str]:
    api = results.get("api")
    if not api:
        return []
    lines = ["", f"API load against harvest serve, rate limiting off ({api['load_generator']})"]
    keys = [k for k in api if k.startswith(("describe", "create")) and isinstance(api[k], dict)]
    for key in keys:
        row = api[key]
        lines.append(
            f"    {_api_label(key):<22}{row['requests_per_s']:>8.0f} req/s  p50 {row['p50_ms']:.1f} ms"
            f"  p99 {row['p99_ms']:.1f} ms  errors {row['errors']}  target {row['target']}"
            f"  {_verdict(row['pass'])}   CPU: server {row['server_cores']} cores,"
            f" load generator {row['loadgen_cores']} cores"
        )
        if row["first_error"]:
            lines.append(f"      first error: {row['first_error']}")
    return lines


def _throughput_lines(results: dict[str, Any]) -> list[str]:
    sweep = results.get("throughput")
    if not sweep:
        return []
    levels = [row["download_concurrency"] for row in sweep[0]["rows"]]
    lines = ["", "harvest MB/s vs HARVEST_DOWNLOAD_CONCURRENCY (same window as above)"]
    lines.append(f"    {'origin latency':<16}" + "".join(f"{level:>9}" for level in levels) + "   aria2c")
    for series in sweep:
        cells = "".join(f"{row['mb_per_s']:>9.1f}" for row in series["rows"])
        name = f"{series['latency_ms']:g} ms"
        lines.append(f"    {name:<16}{cells}   {series['aria2c_mb_per_s']:.1f}")
    if results.get("plot"):
        lines.append(f"    plot: {results['plot']}")
    return lines


def _run_rows(results: dict[str, Any]) -> list[str]:
    """The memory run, the window-length scaling and the workers scaling, as harvest rows."""
    lines: list[str] = []
    memory = results.get("memory_run")
    if memory:
        lines += _harvest_rows(
            f"\nmemory run: {memory['renditions']} renditions x {memory['window_s']} s,"
            f" {memory['segment_kb']} KB segments; peak RSS of the serve process tree"
            f" {memory['peak_rss_mb']:.1f} MB (idle {memory['idle_rss_mb']:.1f} MB)",
            [memory],
            "window_s",
            "window s",
        )
    scaling = results.get("scaling")
    if scaling:
        lines += _harvest_rows(
            f"\nscaling: harvest time vs window length ({scaling['segment_kb']} KB segments)",
            scaling["rows"],
            "window_s",
            "window s",
        )
    workers = results.get("workers_scaling")
    if workers:
        lines += _harvest_rows(
            f"\nworkers scaling: N harvest serve processes on one PostgreSQL, {workers['window_s']} s window,"
            f" {workers['segment_kb']} KB segments, origin latency {workers.get('latency_ms', 0):g} ms",
            workers["rows"],
            "processes",
            "processes",
        )
    return lines


def _target_lines(results: dict[str, Any]) -> list[str]:
    targets = results.get("targets")
    if not targets:
        return []
    lines = ["", "targets (issue 17), measured in this run"]
    for row in targets:
        target = f"target {row['target']:<14}{_verdict(row['pass'])}"
        lines.append(f"    {row['name']:<58}{row['measured']:>12}   {target}")
    return lines


def _api_label(key: str) -> str:
    action, _, rate = key.partition("_at_")
    return f"{action.capitalize()} paced {rate}/s" if rate else f"{action.capitalize()} closed loop"


def _scf_lines(scf: dict[str, Any]) -> list[str]:
    source = scf["prices"]["source"]
    lines = ["", f"SCF cost per harvested hour, worker {scf['worker_memory_mb']} MB (prices: {source})"]
    for run in scf["measured"]:
        wall, cpu = 1000 * run["worker_s_per_segment"], 1000 * run["cpu_s_per_segment"]
        lines.append(
            f"    measured: 1 worker, 20 ms origin, {run['segment_seconds']} s segments of"
            f" {run['segment_kb']} KB: {wall:.1f} ms wall, {cpu:.2f} ms CPU per segment;"
            f" plan {run['plan_seconds']:.2f} s;"
            f" peak RSS {run['peak_rss_mb']:.0f} MB"
        )
    header = ("renditions", "segment s", "segments", "chunks", "invocations", "GB-s", "USD")
    widths = (12, 10, 10, 8, 13, 9, 11)
    lines.append("    " + "".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for row in scf["rows"]:
        cells = (
            row["renditions"], row["segment_seconds"], row["segments"], row["chunks"], row["invocations"],
            f"{row['gb_s']:.2f}", f"{row['usd']:.6f}",
        )  # fmt: skip
        lines.append("    " + "".join(f"{c!s:>{w}}" for c, w in zip(cells, widths, strict=True)))
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The README's benchmark tables from one run (written to bench/out/README-tables.md)."""
    names = {"aria2c": "(a) aria2c -j 16", "curl": "curl --parallel-max 16", "harvest": "(b) harvest serve",
             "ffmpeg": "(c) ffmpeg -c copy"}  # fmt: skip
    lines = [
        "| origin latency | tool | time (runs) | MB/s | seg/s | peak RSS | CPU s |",
        "|---|---|---|---|---|---|---|",
    ]
    for block in results.get("comparison", []):
        for key, label in names.items():
            row = block["tools"].get(key)
            if row is None:
                continue
            runs = ", ".join(f"{value:.2f}" for value in row.get("runs_s", []))
            lines.append(
                f"| {block['latency_ms']:g} ms | {label} | {row['seconds']:.2f} s ({runs})"
                f" | {row['mb_per_s']:.0f} | {row['segments_per_s']:.0f} | {row['peak_rss_mb']:.0f} MB"
                f" | {row['cpu_seconds']:.2f} |"
            )
            if "durable_seconds" in row:
                lines.append(
                    f"| {block['latency_ms']:g} ms | {label}, then `sync -f` | {row['durable_seconds']:.2f} s"
                    f" (sync {row['sync_seconds']:.2f} s) | | | | |"
                )
    lines += ["", "| target | measured | |", "|---|---|---|"]
    for row in results.get("targets", []):
        lines.append(f"| {row['name']}: {row['target']} | {row['measured']} | {_verdict(row['pass'])} |")
    workers = results.get("workers_scaling")
    if workers:
        lines += ["", "| processes | segments | time | seg/s | CPU s |", "|---|---|---|---|---|"]
        for row in workers["rows"]:
            lines.append(
                f"| {row['processes']} | {row['segments']:,} | {row['seconds']:.2f} s"
                f" | {row['segments_per_s']:.0f} | {row['cpu_seconds']:.2f} |"
            )
    scf = results.get("scf_cost")
    if scf:
        lines += [
            "",
            "| renditions | segment length | segments per hour | chunks | invocations | GB-s | USD |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in scf["rows"]:
            lines.append(
                f"| {row['renditions']} | {row['segment_seconds']} s | {row['segments']:,} | {row['chunks']}"
                f" | {row['invocations']} | {row['gb_s']:.2f} | {row['usd']:.6f} |"
            )
    return "\n".join(lines) + "\n"
