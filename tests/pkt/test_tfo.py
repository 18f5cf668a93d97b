"""Fast Open cookies: SipHash-2-4 against the paper's vectors, the kernel's key parsing and
byte orders against packetdrill's published cookies, translate(); and, as root, against
the cookie the running kernel hands out in a throw-away network namespace."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from netemu.pkt.tfo import cookie, key_from_sysctl, siphash24, translate

KEY = "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"
# packetdrill's run_all.py: -D TFO_COOKIE=... for its remote -> local addresses.
PD4 = ("192.0.2.1", "192.168.0.1")
PD6 = ("fd3d:fa7b:d17d::1", "fd3d:0a0b:17d6::1")
LAB = ("198.18.0.1", "198.18.0.2")

# The SipHash paper (Aumasson, Bernstein), key 00..0f, message 00 01 .. (n-1): its worked
# example (n=15, Appendix A) and entries of the reference implementation's vector table.
PAPER = {
    0: "310e0edd47db6f72",
    8: "6224939a79f5f593",
    15: "e545be4961ca29a1",
    63: "724506eb4c328a95",
}


@pytest.mark.parametrize("n", sorted(PAPER))
def test_siphash24_reference_vectors(n):
    out = siphash24(bytes(range(16)), bytes(range(n)))
    assert out.to_bytes(8, "little").hex() == PAPER[n]


def test_siphash24_paper_example_as_integer():
    assert siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5


def test_siphash24_rejects_short_key():
    with pytest.raises(ValueError):
        siphash24(b"short", b"")


def test_packetdrill_cookies():
    assert cookie(KEY, *PD4).hex() == "3021b9d889017eeb"
    assert cookie(KEY, *PD6).hex() == "c1d1e9742a47a9bc"


def test_cookie_is_directional():
    assert cookie(KEY, PD4[1], PD4[0]) != cookie(KEY, *PD4)


def test_key_from_sysctl_is_little_endian_words():
    assert key_from_sysctl("00010203-04050607-08090a0b-0c0d0e0f") == bytes.fromhex(
        "03020100070605040b0a09080f0e0d0c"
    )
    assert key_from_sysctl(KEY) == bytes.fromhex("a1a1a1a1b2b2b2b2c3c3c3c3d4d4d4d4")


def test_key_from_sysctl_forms():
    # %x takes short words and a 0x prefix; a backup key after the comma is not used.
    assert key_from_sysctl("1-2-3-4") == key_from_sysctl("00000001-00000002-00000003-00000004")
    assert key_from_sysctl("0x1-0X2-3-4\n") == key_from_sysctl("1-2-3-4")
    assert key_from_sysctl(f"{KEY},1-2-3-4") == key_from_sysctl(KEY)
    assert cookie(f"{KEY},1-2-3-4", *PD4) == cookie(KEY, *PD4)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "a1a1a1a1-b2b2b2b2-c3c3c3c3",
        "1-2-3-4-5",
        "1-2-3-g",
        "123456789-2-3-4",
        "1-2-3-4,5",
        "1-2-3-4,1-2-3-4,1-2-3-4",
    ],
)
def test_key_from_sysctl_rejects(bad):
    with pytest.raises(ValueError):
        key_from_sysctl(bad)


def test_raw_key_equals_sysctl_text():
    raw = key_from_sysctl(KEY)
    assert cookie(raw, *PD4) == cookie(KEY, *PD4)
    assert cookie(bytearray(raw), *PD6) == cookie(KEY, *PD6)
    with pytest.raises(ValueError):
        cookie(raw[:15], *PD4)


def test_addresses():
    assert cookie(KEY, "::ffff:192.0.2.1", "::ffff:192.168.0.1") == cookie(KEY, *PD4)
    assert cookie(KEY, "[fd3d:fa7b:d17d::1]", "fd3d:a0b:17d6:0::1") == cookie(KEY, *PD6)
    with pytest.raises(ValueError):
        cookie(KEY, "192.0.2.1", "fd3d:0a0b:17d6::1")
    with pytest.raises(ValueError):
        cookie(KEY, "192.0.2.256", "192.168.0.1")


def test_translate_both_ways():
    script = bytes.fromhex("3021b9d889017eeb")
    lab = translate(script, KEY, PD4, LAB)
    assert lab == cookie(KEY, *LAB) and lab != script
    assert translate(lab, KEY, LAB, PD4) == script
    six = translate(bytes.fromhex("c1d1e9742a47a9bc"), KEY, PD6, ("fd00::1", "fd00::2"))
    assert six == cookie(KEY, "fd00::1", "fd00::2")


def test_translate_leaves_other_cookies():
    assert translate(bytes.fromhex("3021b9d889017eec"), KEY, PD4, LAB) is None
    assert translate(bytes.fromhex("3021b9d889017e"), KEY, PD4, LAB) is None
    assert translate(b"", KEY, PD4, LAB) is None
    # the IPv4 cookie is not valid for the reverse direction
    assert translate(bytes.fromhex("3021b9d889017eeb"), KEY, PD4[::-1], LAB) is None


# Runs inside `unshare -n`: two listeners on lo, one under the sysctl key and one under a
# per-listener TCP_FASTOPEN_KEY; a client from 198.18.0.1 asks each for a cookie
# (MSG_FASTOPEN with no cookie cached), then sends data in the SYN with the cookie it got.
# Prints the cookies from `ip tcp_metrics` and the server's TCPFastOpenPassive count.
_IN_NETNS = textwrap.dedent("""
    import json, socket, subprocess, sys

    def sh(*argv):
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout

    def sysctl(name, value):
        with open("/proc/sys/net/ipv4/" + name, "w") as f:
            f.write(value)

    def passive():
        lines = [ln.split() for ln in open("/proc/net/netstat") if ln.startswith("TcpExt:")]
        return int(dict(zip(lines[0], lines[1]))["TCPFastOpenPassive"])

    sysctl_key, raw_key = sys.argv[1], bytes.fromhex(sys.argv[2])
    sh("ip", "link", "set", "lo", "up")
    for addr in ("198.18.0.1/32", "198.18.0.2/32", "198.18.0.3/32"):
        sh("ip", "addr", "add", addr, "dev", "lo")
    sysctl("tcp_fastopen", "3")  # client and server enable
    sysctl("tcp_fastopen_key", sysctl_key)

    def exchange(srv, dst):
        c = socket.socket()
        c.bind(("198.18.0.1", 0))
        c.sendto(b"hello", socket.MSG_FASTOPEN, (dst, srv.getsockname()[1]))
        a, _ = srv.accept()
        a.settimeout(5)
        assert a.recv(16) == b"hello"
        a.close()
        c.close()

    out = {}
    for dst, key in (("198.18.0.2", None), ("198.18.0.3", raw_key)):
        srv = socket.socket()
        srv.bind((dst, 0))
        srv.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
        if key is not None:
            srv.setsockopt(socket.IPPROTO_TCP, 33, key)  # TCP_FASTOPEN_KEY
        srv.listen(16)
        srv.settimeout(5)
        before = passive()
        exchange(srv, dst)  # cookie request
        metrics = sh("ip", "tcp_metrics", "show", dst).split()
        exchange(srv, dst)  # data in the SYN, with the cookie
        srv.close()
        out[dst] = {"fo_cookie": metrics[metrics.index("fo_cookie") + 1],
                    "passive": passive() - before}
    print(json.dumps(out))
""")


@pytest.mark.root
@pytest.mark.timeout(60)
def test_cookie_matches_the_running_kernel():
    for tool in ("unshare", "ip"):
        assert shutil.which(tool), f"{tool} not found"
    raw = bytes.fromhex("00112233445566778899aabbccddeeff")
    # A backup key on the sysctl: the primary one signs.
    sysctl_key = f"{KEY},01234567-89abcdef-01234567-89abcdef"
    res = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", _IN_NETNS, sysctl_key, raw.hex()],
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["198.18.0.2"]["fo_cookie"] == cookie(KEY, "198.18.0.1", "198.18.0.2").hex()
    assert got["198.18.0.3"]["fo_cookie"] == cookie(raw, "198.18.0.1", "198.18.0.3").hex()
    # the kernel took the cookie back: the second SYN's data was accepted
    assert got["198.18.0.2"]["passive"] == 1
    assert got["198.18.0.3"]["passive"] == 1
    # and the translated packetdrill cookie is that same kernel cookie
    assert (
        translate(bytes.fromhex("3021b9d889017eeb"), KEY, PD4, LAB).hex()
        == got["198.18.0.2"]["fo_cookie"]
    )
