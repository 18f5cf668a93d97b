"""``netemu show`` (text and ``--json``) in one pass (``stream.walk``): memory bounded by
the conversations open at once and by what the output holds, not by the capture.

The text ladder: a conversation that may still be drawn (it is among the first
``max_conversations`` and the rows of those before it leave room) gets its rows in
the ladder's order as inference settles them (``_Rows``), whole while they are at
most ``max_rows``, else summarised as they come (``_Summary``: the first ``keep``
rows, each event with ``context`` rows either side, the last ``keep`` in a window,
counters for each stretch left out); any other conversation keeps only the counts
its line in the table of those not drawn needs. The sections are drawn at the end,
as ``ladder_model.ladder_pages`` would draw them.

``--json``: each segment is encoded when it is read, in frame order, into a
temporary file; the report is written around it at the end.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import deque
from typing import IO, Any

from ..wire import FIN, RST, SYN
from ..wire.tcp import MalformedOption
from .conv import Conversation, SegmentView, Skipped, ep_str
from .ladder_model import (
    _MIN_GAP,
    _SECTION_LINES,
    DEFAULT_LIMITS,
    Gap,
    Ladder,
    LadderLimits,
    Row,
    Section,
    _state_rows,
    is_event,
)
from .record import NoteRecord, StateRecord
from .report import segment_json, state_json
from .stream import Live, walk

_ROLES = ("client", "server")


def _row(x: Row | SegmentView) -> Row:
    """A row kept, made when it is drawn (a segment's, from its view)."""
    return x if type(x) is Row else Row(x.t, "seg", seg=x)  # type: ignore[arg-type]


class _Summary:
    """``ladder_model._summarised_rows``'s choice, made as the rows come."""

    def __init__(self, limits: LadderLimits) -> None:
        self.keep, self.c = limits.keep, limits.context
        self.p = 0
        self.force = -1  # rows up to this position are drawn (an event's context)
        self.window: deque[list[Any]] = deque()  # [row, event, ts, lr, len, chosen]
        self.out: list[Row] = []
        self.run: list[list[Any]] = []  # the stretch not drawn so far (its first rows)
        self.gap: Gap | None = None

    def add(self, e: list[Any]) -> None:
        p = self.p
        self.p = p + 1
        w = self.window
        if e[1]:
            self.force = p + self.c
            for k in range(1, min(self.c, len(w)) + 1):
                w[-k][5] = True
            e.append(True)
        else:
            e.append(p < self.keep or p <= self.force)
        w.append(e)
        if len(w) > self.keep + self.c:
            e = w.popleft()
            if e[5]:
                self._commit(e)
                return
            # left out (_commit's other half, in place: most rows of a long one come here)
            run = self.run
            if len(run) < _MIN_GAP:  # only its first rows are drawn, if any
                run.append(e)
            gap = self.gap
            if gap is None:
                gap = self.gap = Gap(e[2], e[2])
            gap.add(e[2], e[3], e[4])

    def _commit(self, e: list[Any]) -> None:
        if e[5]:
            self._close()
            self.out.append(_row(e[0]))
            return
        if len(self.run) < _MIN_GAP:  # only its first rows are drawn, if any
            self.run.append(e)
        if self.gap is None:
            self.gap = Gap(e[2], e[2])
        self.gap.add(e[2], e[3], e[4])

    def _close(self) -> None:
        if self.gap is None:
            return
        if self.gap.segments < _MIN_GAP:
            self.out.extend(_row(x[0]) for x in self.run)
        else:
            self.out.append(Row(self.gap.t_first, "gap", detail=self.gap.text()))
        self.gap, self.run = None, []

    def finish(self) -> list[Row]:
        total = self.p
        keep = min(self.keep, total)
        w = self.window
        tail = min(keep, len(w))
        for k in range(1, tail + 1):
            w[-k][5] = True
        while w:
            self._commit(w.popleft())
        self._close()
        return self.out


class _Rows:
    """One drawable conversation's rows in the ladder's order (``_section``'s sort
    key: time, then notes, changes before segments, segments, changes after), taken
    as inference settles what comes before them."""

    def __init__(self, limits: LadderLimits) -> None:
        self.limits = limits
        self.segs: deque[tuple[float, SegmentView]] = deque()  # (time in file order, it)
        self.recs: list[tuple[float, int, Any]] = []  # (t, kind 0 note 1 left 2 right, rec)
        self.counts = [0, 0, 0]  # per kind, for the keys' n
        self.last = ["", "", ""]  # the last state drawn per side (_state_rows skips repeats)
        self.firsts: list[StateRecord | None] = [None, None, None]
        self.rows: list[list[Any]] | None = []
        self.summary: _Summary | None = None
        self.n = 0  # rows so far
        self.others = 0  # of them not segments

    def release(self, upto: float) -> None:
        """Take every row earlier than ``upto`` (nothing settled later comes before it)."""
        recs, segs = self.recs, self.segs
        if not recs:  # segments only: in order already
            summary = self.summary
            while segs and segs[0][0] < upto:
                t, v = segs.popleft()
                # ladder_model.is_event, for a segment whose payload was let go
                tcp, frame, a = v.tcp, v.frame, v.analysis
                opts = tcp.options
                event = bool(
                    tcp.flags & (SYN | FIN | RST)
                    or frame.mark
                    or frame.note
                    or v.retransmission
                    or (a is not None and a.marks)
                    or (opts and opts[-1].__class__ is MalformedOption)
                )
                e = [v, event, t, v.left_to_right, v.payload_len]
                if summary is None:
                    self._add(e, False)
                    summary = self.summary
                else:  # _add's work for a summarised one's segment
                    self.n += 1
                    summary.add(e)
            return
        ready = [x for x in recs if x[0] < upto]
        if ready:
            self.recs = [x for x in recs if x[0] >= upto]
            ready.sort(key=lambda x: x[0])
        keyed: list[tuple[tuple, int, list[Any]]] = []
        for t, kind, rec in ready:
            n = self.counts[kind]
            self.counts[kind] += 1
            if kind == 0:
                keyed.append(((t, 0, n), 0, [Row(t, "note", note=rec), True, t, True, 0]))
                continue
            if self.firsts[kind] is None:
                self.firsts[kind] = rec
            for _, row in _state_rows([rec], "left" if kind == 1 else "right", 0.0):
                if row.state == self.last[kind]:
                    continue
                self.last[kind] = row.state
                keyed.append(
                    (
                        (rec.t, 3 if rec.cause.startswith("recv") else 1, n),
                        kind,
                        [row, True, t, True, 0],
                    )
                )
        while segs and segs[0][0] < upto:
            t, v = segs.popleft()
            keyed.append(((t, 2, v.index), 3, [v, is_event(v), t, v.left_to_right, v.length]))
        if len(keyed) > 1:
            keyed.sort(key=lambda k: (k[0], k[1]))
        for _, kind, e in keyed:
            self._add(e, kind != 3)

    def _add(self, e: list[Any], other: bool) -> None:
        self.n += 1
        if other:
            self.others += 1
        if self.summary is not None:
            self.summary.add(e)
            return
        assert self.rows is not None
        self.rows.append(e)
        if len(self.rows) > self.limits.max_rows:
            self._summarise()

    def _summarise(self) -> None:
        self.summary = _Summary(self.limits)
        for e in self.rows or ():
            self.summary.add(e)
        self.rows = None

    def init(self) -> tuple[str, str]:
        from .ladder_model import _initial

        return (_initial([self.firsts[1]] if self.firsts[1] else []),
                _initial([self.firsts[2]] if self.firsts[2] else []))  # fmt: skip

    def section(self, conv: Conversation) -> Section:
        init = self.init()
        total = self.n + any(init)
        if self.summary is None and total > self.limits.max_rows:
            self._summarise()
        if self.summary is not None:
            rows = self.summary.finish()
        else:
            rows = [_row(e[0]) for e in self.rows or ()]
        if any(init):
            rows.insert(0, Row(rows[0].t if rows else 0.0, "init", init=init))
        return Section(
            conv, conv.title(), ep_str(conv.left), ep_str(conv.right), *_ROLES, rows, total
        )

    def lower_bound(self) -> int:
        return min(self.n, self.limits.keep)


class _Conv:
    """What the sink keeps of a conversation being read."""

    __slots__ = ("last", "live", "notes", "rows", "states")

    def __init__(self, live: Live, rows: _Rows | None) -> None:
        self.live = live
        self.rows = rows
        self.last: list[StateRecord | None] = [None, None, None]  # per side: its last state
        self.states: list[StateRecord] = []  # --json: every one, as made
        self.notes: list[NoteRecord] = []


class _Sink:
    """Takes ``stream.walk``'s conversations, segments and ends; ``json`` keeps every
    state and note (and the segments go to ``seg_out``), else the ladder's rows."""

    def __init__(self, limits: LadderLimits, seg_out: IO[str] | None) -> None:
        self.limits = limits
        self.seg_out = seg_out
        self.drawable = seg_out is None  # new conversations may still be drawn
        self.cands: list[_Rows] = []
        self.done: dict[int, tuple[Conversation, int, Section | None]] = {}
        self.unlisted = [0, 0]  # conversations surely beyond the table, their segments
        self.reasons: dict[str, int] = {}
        self.segments = 0
        self.json_convs: list[tuple[int, dict[str, Any]]] = []
        self.json_states: list[tuple[int, list[StateRecord]]] = []
        self.json_notes: list[tuple[int, list[NoteRecord]]] = []

    def skip(self, why: str) -> None:
        self.reasons[why] = self.reasons.get(why, 0) + 1

    def new(self, live: Live) -> None:
        rows = None
        k = live.conv.number
        lim = self.limits
        if self.drawable and k:
            room = sum(r.lower_bound() + _SECTION_LINES for r in self.cands) + _SECTION_LINES
            self.drawable = k < lim.max_conversations and room <= lim.max_total_rows
        if self.drawable:
            rows = _Rows(lim)
            self.cands.append(rows)
        live.sink = _Conv(live, rows)

    def segment(self, live: Live, v: SegmentView, t: float) -> None:
        self.segments += 1
        if v.payload_len < 0:  # v.drop_payload(): the rows and inference need its length only
            tcp = v.tcp
            v.payload_len = len(tcp.payload)
            tcp.payload = b""
        c: _Conv = live.sink
        rows = c.rows
        if rows is not None:
            rows.segs.append((t, v))
        elif self.seg_out is not None:
            self.seg_out.write(_seg_json(live.conv.number, v))
        inf = live.inf
        inf.push(v, t)
        out = inf.out
        if out.states or out.notes:
            self._records(c)
        if rows is not None:
            # no record made from now on is earlier than the oldest segment inference
            # holds or has queued (or this one)
            w = t
            held, queue = inf.held, inf.queue
            for d in (held["client"], queue["client"], held["server"], queue["server"]):
                if d and d[0][1] < w:
                    w = d[0][1]
            rows.release(w)

    def _records(self, c: _Conv) -> None:
        states, notes = c.live.inf.drain()
        left = c.live.conv.left
        rows = c.rows
        for rec in states:
            kind = 1 if rec.local == left else 2
            last = c.last[kind]
            if last is None or rec.t >= last.t:
                c.last[kind] = rec
            if rows is not None:
                rows.recs.append((rec.t, kind, rec))
        if rows is not None:
            rows.recs.extend((n.t, 0, n) for n in notes)
        if self.seg_out is not None:
            c.states += states
            c.notes += notes

    def end(self, live: Live) -> None:
        c: _Conv = live.sink
        live.inf.finish()
        self._records(c)
        conv = live.conv
        conv._base, conv._wscale, conv._high = {}, {}, {}
        conv.states = [c.last[1]] if c.last[1] else []
        conv.peer_states = [c.last[2]] if c.last[2] else []
        k = conv.number
        if self.seg_out is not None:
            self.json_convs.append((k, _conv_json(conv)))
            self.json_states.append((k, c.states))
            self.json_notes.append((k, c.notes))
        elif c.rows is not None:
            c.rows.release(float("inf"))
            self.done[k] = (conv, c.rows.others, c.rows.section(conv))
        elif k >= self.limits.max_conversations + self.limits.max_listed:
            self.unlisted[0] += 1
            self.unlisted[1] += conv.count
        else:
            self.done[k] = (conv, 0, None)
        live.sink = None

    def ladder(self, title: str | None) -> Ladder:
        """The ladder ``ladder_pages`` would make (one page), from what was kept."""
        lim = self.limits
        other = Skipped(self.reasons)
        ladder = Ladder([], other, title, lim, segments=self.segments, t0=0.0)
        used, listing = 0, False
        for k in sorted(self.done):
            conv, others, sec = self.done.pop(k)
            full = bool(ladder.sections) and len(ladder.sections) >= lim.max_conversations
            if not listing and not full:
                if sec is None:
                    from .stream import Unstreamable

                    raise Unstreamable("a conversation drawn after all")  # pragma: no cover
                whole = conv.count + others + 1
                full = bool(ladder.sections) and (
                    whole <= lim.max_rows and used + whole + _SECTION_LINES > lim.max_total_rows
                )
                if not full:
                    full = bool(ladder.sections) and (
                        used + len(sec.rows) + _SECTION_LINES > lim.max_total_rows
                    )
            if full:
                listing = True
            if not listing and sec is not None:
                used += len(sec.rows) + _SECTION_LINES
                ladder.sections.append(sec)
                continue
            if len(ladder.listed) < lim.max_listed:
                ladder.listed.append(conv)
            else:
                ladder.unlisted += 1
                ladder.unlisted_segments += conv.count
        ladder.unlisted += self.unlisted[0]
        ladder.unlisted_segments += self.unlisted[1]
        return ladder


def _r(x: float) -> float:
    return round(x, 6)


def _seg_json(number: int, v: SegmentView) -> str:
    """A segment of ``--json``, as ``report._segments`` has it, indented for its place."""
    seg = segment_json(v, number, 0.0)
    return ",\n    " + _fmt(seg, 2)


# json.dumps(x, indent=2, …), nested at ``level``, without the pure-Python encoder an
# indent needs (its closures make a reference cycle per call: with no collections while
# a capture is read, 600 MB of them on 200k segments). Scalars go through the C encoder.
_TEXT = json.encoder.encode_basestring
_CONST = {None: "null", True: "true", False: "false"}


def _SCALAR(x: Any) -> str:
    t = type(x)
    if t is str:
        return _TEXT(x)
    if t is int:
        return int.__repr__(x)
    if t is float:
        return float.__repr__(x)
    if x is None or t is bool:
        return _CONST[x]
    return json.dumps(x, default=str, ensure_ascii=False)


# "\n" and the indent of each level
_PAD = tuple("\n" + "  " * i for i in range(64))


def _fmt(x: Any, level: int) -> str:
    t = type(x)  # the scalars first, as _SCALAR has them (what a segment holds most)
    if t is str:
        return _TEXT(x)
    if t is int:
        return int.__repr__(x)
    if t is float:
        return float.__repr__(x)
    if x is None or t is bool:
        return _CONST[x]
    if isinstance(x, dict):
        if not x:
            return "{}"
        pad = _PAD[level + 1] if level < 63 else "\n" + "  " * (level + 1)
        items = ",".join([pad + _SCALAR(k) + ": " + _fmt(v, level + 1) for k, v in x.items()])
        return "{" + items + pad[: 1 + 2 * level] + "}"
    if isinstance(x, list | tuple):
        if not x:
            return "[]"
        pad = _PAD[level + 1] if level < 63 else "\n" + "  " * (level + 1)
        return "[" + ",".join([pad + _fmt(v, level + 1) for v in x]) + pad[: 1 + 2 * level] + "]"
    return _SCALAR(x)


def _conv_json(conv: Conversation) -> dict[str, Any]:
    return {
        "number": conv.number,
        "left": ep_str(conv.left),
        "right": ep_str(conv.right),
        "conn": conv.conn_name,
        "segments": conv.count,
    }


def show_streaming(
    path: str | os.PathLike[str],
    out: IO[str],
    *,
    as_json: bool = False,
    title: str | None = None,
    limits: LadderLimits | None = None,
    width: int | None = None,
) -> str | None:
    """Write ``netemu show``'s text ladder (or, ``as_json``, its report) of the capture
    at ``path`` to ``out``, reading it once; returns where the file is damaged (None:
    read whole). Nothing is written before the capture has been read, so
    ``stream.Unstreamable`` (and CaptureError, OSError) leave ``out`` untouched."""
    from .pcap_read import open_capture

    stream = open_capture(path)
    limits = DEFAULT_LIMITS if limits is None else limits
    import gc

    # No reference cycle is made per frame (a conversation's one is broken as it ends):
    # collections would only walk the objects alive, ~25 % of the time on 200k frames.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _show(stream, path, out, as_json, title, limits, width)
    finally:
        if collecting:
            gc.enable()


def _show(
    stream: Any,
    path: str | os.PathLike[str],
    out: IO[str],
    as_json: bool,
    title: str | None,
    limits: LadderLimits,
    width: int | None,
) -> str | None:
    from .infer import damage_line
    from .ladder_text import _render_text

    if not as_json:
        sink = _Sink(limits, None)
        walk(iter(stream), sink.new, sink.segment, sink.end, sink.skip)
        out.write(damage_line(stream.damage) + _render_text(sink.ladder(title), width))
        return stream.damage
    with tempfile.TemporaryFile("w+", encoding="utf-8") as tmp:
        sink = _Sink(limits, tmp)
        frames, t0 = walk(iter(stream), sink.new, sink.segment, sink.end, sink.skip)
        rep = _report(sink, os.fspath(path), frames, t0, stream.damage)
        text = json.dumps(rep, indent=2, default=str, ensure_ascii=False)
        head, _, tail = text.partition('\n  "segments": [],\n')
        out.write(head + '\n  "segments": [')
        tmp.seek(0)
        first = tmp.read(1 << 20)
        if first:
            out.write(first[1:])  # the first segment's comma
            while chunk := tmp.read(1 << 20):
                out.write(chunk)
            out.write("\n  ]")
        else:
            out.write("]")
        out.write(",\n" + tail + "\n")
    return stream.damage


def _report(
    sink: _Sink, capture: str, frames: int, t0: float, damage: str | None
) -> dict[str, Any]:
    """``report.capture_report``'s dict, its segments left out (written around them)."""
    import datetime as _dt

    from .. import __version__
    from .report import REPORT_FORMAT

    other = Skipped(sink.reasons)
    states = [s for _, ss in sorted(sink.json_states, key=lambda x: x[0]) for s in ss]
    states.sort(key=lambda s: s.t)
    notes = [n for _, ns in sorted(sink.json_notes, key=lambda x: x[0]) for n in ns]
    notes.sort(key=lambda n: n.t)
    return {
        "format": REPORT_FORMAT,
        "netemu": __version__,
        "capture": capture,
        "frames": frames,
        "damage": damage,
        "started_at": _dt.datetime.fromtimestamp(t0, _dt.UTC).isoformat(),
        "emulator_ip": "",
        "peer_ip": "",
        "conversations": [c for _, c in sorted(sink.json_convs, key=lambda x: x[0])],
        "segments": [],
        "other_frames": other,
        "skipped": other.reasons,
        "states": [state_json(s, 0.0) for s in states],
        "congestion": [],
        "peer_state_source": {"source": None, "note": None, "tracefs_instance": None},
        "peer_states": [],
        "peer_events": [],
        "notes": [{"t": _r(n.t), "kind": n.kind, "text": n.text} for n in notes],
    }
