"""`python -m dashboard` keeps the server on this machine from any folder; the app warns otherwise."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import AppServer
from dashboard import __main__ as launcher
from dashboard import common

REPO = Path(__file__).resolve().parent.parent


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on `port`, from /proc/net/tcp and tcp6."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr_hex, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(addr_hex)
            # /proc prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.add(socket.inet_ntop(family, raw))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux's /proc/net/tcp to read listening sockets")
def test_started_from_another_folder_the_server_listens_on_loopback_only(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert not (elsewhere / ".streamlit").exists()  # nothing here for Streamlit to read
    server = AppServer(dict(os.environ), tmp_path / "streamlit.log", cwd=elsewhere)
    try:
        addresses = _listening_addresses(server.port)
    finally:
        server.stop()
    assert addresses and addresses <= {"127.0.0.1", "::1"}, addresses


def test_the_launcher_passes_the_safe_settings_and_the_project_config():
    cmd = launcher.command(["--server.port", "8600"])
    flags = dict(zip(cmd[5::2], cmd[6::2]))
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]) == REPO / "dashboard" / "server.py"
    assert flags["--server.address"] == "localhost"
    assert flags["--browser.gatherUsageStats"] == "false"
    assert flags["--server.headless"] == "true"
    assert flags["--server.maxUploadSize"] == "5" and flags["--theme.primaryColor"] == "#2563eb"
    assert cmd[-2:] == ["--server.port", "8600"]  # the user's own options come last and win


def test_a_config_file_cannot_loosen_the_floor(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[server]\naddress = "0.0.0.0"\nport = 9000\n[browser]\ngatherUsageStats = true\n')
    options = launcher.streamlit_options(config)
    assert options["server.address"] == "localhost" and options["browser.gatherUsageStats"] is False
    assert options["server.port"] == 9000


@pytest.mark.parametrize("address, warned", [("localhost", False), ("127.0.0.1", False), ("::1", False),
                                             ("", True), (None, True), ("0.0.0.0", True), ("192.168.1.5", True)])
def test_the_exposure_warning_names_where_the_server_listens(address, warned):
    message = common.exposure_warning(address)
    assert (message is not None) == warned
    if warned:
        assert ("every network interface" if not address else address) in message
        assert "python -m dashboard" in message


def test_the_app_warns_on_its_pages_when_it_listens_beyond_localhost():
    from streamlit import config

    previous = config.get_option("server.address")
    try:
        config.set_option("server.address", "0.0.0.0")
        at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=60).run()
        assert any("address `0.0.0.0`" in w.value for w in at.warning), [w.value for w in at.warning]
        config.set_option("server.address", "localhost")
        at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=60).run()
        assert not any("listens on" in w.value for w in at.warning)
    finally:
        config.set_option("server.address", previous)
