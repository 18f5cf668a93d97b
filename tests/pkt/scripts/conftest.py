"""`pytest tests/pkt/scripts` (netemu's pytest plugin) runs every script here as
`netemu run FILE` does, with the options each script gives itself. Two scripts of
live/ need packetdrill's command line, which tests/pkt/test_live.py gives them
(`-D PAYLOAD_LEN=300`; `-D DATA_FILE=...`, a file it makes): without it they are bad
input (unknown symbol), so the plugin leaves them out. The others are no deliberate
failures: each passes on its own."""

collect_ignore = ["live/define.pkt", "live/sendfile.pkt"]
