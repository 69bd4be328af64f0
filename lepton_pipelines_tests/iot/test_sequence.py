"""The seq gap rules on their own: restarts, duplicates, late arrivals, partitions, quarantine, policy."""

from __future__ import annotations

import pandas as pd

from lepton_pipelines.iot.sequence import find_gaps, judge, last_message_per_device


def frame(
    device: str, seqs: list[int], boots: list[str | None] | None = None, start: str = "2026-01-05"
) -> pd.DataFrame:
    data = {"device_id": device, "seq": seqs, "ts": pd.date_range(start, periods=len(seqs), freq="s", tz="UTC")}
    if boots is not None:
        data["boot_id"] = boots
    return pd.DataFrame(data)


def ranges(report) -> dict[str, str]:
    lossy = report.devices_with_loss()
    return dict(zip(lossy["device_id"], lossy["missing_ranges"], strict=True))


def test_holes_are_named_duplicates_and_late_arrivals_are_not():
    data = pd.concat([frame("a", [0, 1, 2, 2, 5, 4, 9]), frame("b", list(range(10)))], ignore_index=True)
    report = find_gaps(data, boot_field=None)
    assert ranges(report) == {"a": "3, 6-8"}
    assert report.missing == 4 and report.received == 17
    assert report.devices.set_index("device_id").loc["b", "missing"] == 0


def test_restart_by_boot_id_or_by_reset_rule_is_not_loss_but_a_late_first_seq_is():
    with_boot = frame("a", [10, 11, 12, 0, 1, 2], ["x", "x", "x", "y", "y", "y"])
    assert find_gaps(with_boot).missing == 0
    assert find_gaps(with_boot).devices.loc[0, "restarts"] == 1
    late_start = frame("a", [10, 11, 3, 4], ["x", "x", "y", "y"])  # after the restart 0..2 never arrived
    assert ranges(find_gaps(late_start)) == {"a": "0-2 (boot y)"}
    no_boot = frame("b", [7, 8, 9, 0, 1, 3])  # reset rule: back to 0 is a restart; 2 is missing after it
    assert ranges(find_gaps(no_boot, boot_field="boot_id")) == {"b": "2"}
    dropped_low = frame("c", [7, 8, 9, 5, 6])  # falling to 5 is no restart (above restart_max_seq): late arrivals
    assert find_gaps(dropped_low).missing == 0


def test_a_hole_across_partitions_is_found_from_the_previous_message():
    yesterday = frame("a", [0, 1, 2, 3], start="2026-01-04T23:59:50")
    today = frame("a", [7, 8], start="2026-01-05")
    report = find_gaps(today, last_message_per_device(yesterday), boot_field=None)
    assert ranges(report) == {"a": "4-6"} and report.received == 2  # the context row is not counted
    assert find_gaps(today, boot_field=None).missing == 0  # without history, nothing before 7 is known


def test_quarantined_messages_are_accounted_for():
    quarantined = pd.DataFrame({"device_id": ["a", "a", "z"], "seq": ["4", "6", "5"]})  # landed text
    report = find_gaps(frame("a", [3, 8]), boot_field=None, quarantined=quarantined)
    assert ranges(report) == {"a": "5, 7"} and report.missing == 2


def test_policy_tolerance_and_description():
    report = find_gaps(frame("dev-1", list(range(0, 50)) + list(range(100, 150))), boot_field=None)
    strict = judge(report)
    assert not strict.passed and strict.missing == 50 and strict.expected == 150
    assert "dev-1: 50-99" in strict.description
    assert judge(report, max_missing_messages=50).passed
    assert judge(report, max_missing_fraction=0.4).passed and not judge(report, max_missing_fraction=0.3).passed
    assert judge(find_gaps(frame("x", [0, 1]))).passed
    assert find_gaps(frame("x", [])).devices.empty
