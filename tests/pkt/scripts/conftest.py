"""`pytest tests/pkt/scripts` (netemu's pytest plugin, docs/pytest.md) runs every script
here as `netemu run FILE` does, with the options each script gives itself. None is a
deliberate failure: each passes on its own. Two scripts of live/ need packetdrill's
command line, which tests/pkt/test_live.py gives them (`-D PAYLOAD_LEN=300`;
`-D DATA_FILE=...`, a file it makes): without it they are bad input (unknown symbol),
so they are left out here."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

collect_ignore = ["live/define.pkt", "live/sendfile.pkt"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The scripts' items are held to packetdrill's 4 ms as tests/pkt's runs are: marked
    `timing` as those, so that `-m "not timing"` leaves them to a run of their own."""
    for item in items:
        if item.get_closest_marker("netemu") and item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.timing)
