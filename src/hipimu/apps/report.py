"""The session report: a multi-page A4 PDF that reads as well printed in black and white.

:func:`write_report` turns one analysed session (:class:`hipimu.apps.summary.Analysed`)
into a PDF. The analysis is in radians; the page is in degrees. Series are told apart
by line style and marker, bands by hatching or grey, never by colour alone; a value
that is missing (NaN) prints as "–". Pages, in order (a page with nothing to show is
left out):

1. Summary: session, subject, date, the tests found; per test a table of the means
   ± SD per side (rotation: max IR, max ER, arc, pelvic compensation with the number
   of flagged trials; squat: depth, IR at the bottom, butt wink) with the norm band,
   the practitioners' goal, the status against the band and the right-vs-left
   symmetry; the IR reserve; the minimal detectable change; the analysis notes.
2. One page per rotation test: hip rotation over time per side (trials shaded, max
   IR / max ER marked, norm bands hatched), the pelvis angles below, and the
   per-trial table (end-range hold, pelvic compensation, apparent vs true IR/ER).
3. Squat: the per-rep table, hip flexion over time, and IR against hip flexion on
   the way down (left dashed, right solid; 90 deg of flexion marked).
4. Left/right: grouped bars (mean ± SD; left hatched, right grey) of max IR and max
   ER per rotation test, and of squat depth and IR at the bottom.
5. Data quality: per sensor samples, loss, gaps and clock drift; the calibration's
   grade and notes; the angles' quality (0..1) over time.

matplotlib is imported only when a report is written; figures are plain
:class:`matplotlib.figure.Figure` objects saved through ``PdfPages`` (no pyplot,
no display).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from hipimu.apps.summary import Analysed, summary_rows
from hipimu.core.analysis import side_stats
from hipimu.core.norms import DEFAULT_BANDS_DEG, band_status
from hipimu.core.quality import RELIABLE

__all__ = ["A4_INCHES", "write_report"]

A4_INCHES = (8.27, 11.69)
DASH = "–"
_TEST_NAMES = {"seated_rotation": "Seated rotation", "prone_rotation": "Prone rotation", "squat": "Squat"}
_SIDE_LINE = {"left": {"ls": "--", "marker": "o"}, "right": {"ls": "-", "marker": "s"}}
_SIDE_BAR = {"left": {"facecolor": "white", "hatch": "////"}, "right": {"facecolor": "0.55", "hatch": ""}}
_PELVIS_LINES = (("tilt", "-"), ("obliquity", "--"), ("rotation", ":"))
_RC = {"pdf.fonttype": 42, "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7,
       "ytick.labelsize": 7, "legend.fontsize": 7, "hatch.linewidth": 0.5}
_MAX_POINTS = 6000  #: a plotted series is thinned to about this many points


def write_report(a: Analysed, path: Path, *, bands: dict | None = None, overwrite: bool = False,
                 changes: Sequence[dict] = ()) -> int:
    """Write the report of ``a`` to ``path`` (whole or not at all); the number of pages.

    ``bands``: the reference ranges (:data:`hipimu.core.norms.DEFAULT_BANDS_DEG` by
    default; ``bands["goals"]`` the practitioners' goals). ``changes``: this session's
    ``kind`` = ``change`` rows (:func:`hipimu.apps.summary.change_rows`: against the
    subject's previous session), printed on the first page. Raises
    :class:`hipimu.errors.InputError` if ``path`` exists and ``overwrite`` is false.
    """
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    from hipimu.storage._atomic import atomic_output

    bands = bands or DEFAULT_BANDS_DEG
    with atomic_output(path, overwrite=overwrite) as tmp, matplotlib.rc_context(_RC):
        pages = [_summary_page(a, bands, changes)]
        for test in a.analysis.tests():
            if test != "squat":
                pages.append(_rotation_page(a, test, bands))
        if a.analysis.squat:
            pages.append(_squat_page(a))
        if a.analysis.rotation or a.analysis.squat:
            pages.append(_bars_page(a, bands))
        pages.append(_quality_page(a))
        meta = {"Title": f"hipimu report: {a.name}", "Subject": f"subject {a.subject_id}", "Creator": "hipimu"}
        with PdfPages(tmp, metadata=meta) as pdf:
            for k, fig in enumerate(pages, 1):
                fig.text(0.5, 0.015, f"hipimu · {a.name} · subject {a.subject_id} · page {k} of {len(pages)}",
                         ha="center", fontsize=7, color="0.3")
                pdf.savefig(fig)
    return len(pages)


# ---------------------------------------------------------------------------
# Formatting and layout helpers
# ---------------------------------------------------------------------------


def _ok(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v)


def _deg(x: float) -> float:
    return math.degrees(x) if _ok(x) else math.nan


def _f(v: Any, nd: int = 1, unit: str = "") -> str:
    return f"{v:.{nd}f}{unit}" if _ok(v) else DASH


def _pm(mean: Any, sd: Any) -> str:
    return DASH if not _ok(mean) else f"{mean:.1f} ± {sd:.1f}" if _ok(sd) else f"{mean:.1f}"


def _signed(v: Any, unit: str = "") -> str:
    return DASH if not _ok(v) else f"{v:+.1f}{unit}" if round(v, 1) != 0 else f"0.0{unit}"


def _band(b: Sequence[float] | None) -> str:
    return f"{b[0]:g}-{b[1]:g}" if b is not None else DASH


def _page(title: str, subtitle: str = "") -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=A4_INCHES)
    fig.text(0.07, 0.955, title, fontsize=15, fontweight="bold", va="bottom")
    if subtitle:
        fig.text(0.07, 0.94, textwrap.fill(subtitle, 120), fontsize=8.5, color="0.25", va="top")
    return fig


def _table(fig: Any, top: float, header: Sequence[str], cells: Sequence[Sequence[str]], *, left: float = 0.07,
           width: float = 0.86, row_h: float = 0.02, fontsize: float = 7.5,
           col_widths: Sequence[float] | None = None) -> float:
    """A ruled table whose top edge is at ``top`` (figure fraction); returns its bottom."""
    h = row_h * (len(cells) + 1)
    ax = fig.add_axes((left, top - h, width, h))
    ax.set_axis_off()
    tab = ax.table(cellText=[list(r) for r in cells] or None, colLabels=list(header), bbox=(0, 0, 1, 1),
                   cellLoc="center", colWidths=col_widths)
    tab.auto_set_font_size(False)
    tab.set_fontsize(min(fontsize, row_h * A4_INCHES[1] * 72 * 0.7))  # crowded tables get smaller type
    for (r, _), cell in tab.get_celld().items():
        cell.set_linewidth(0.4)
        cell.set_edgecolor("0.45")
        if r == 0:
            cell.set_facecolor("0.88")
            cell.get_text().set_fontweight("bold")
    return top - h


def _text(fig: Any, top: float, lines: Sequence[str], *, size: float = 8, left: float = 0.07) -> float:
    """Wrapped lines from ``top`` down; returns where the next thing may start."""
    width = int(118 * 8 / size)
    for line in lines:
        wrapped = textwrap.fill(line, width, subsequent_indent="   ")
        fig.text(left, top, wrapped, fontsize=size, va="top")
        top -= (wrapped.count("\n") + 1) * size * 1.45 / 72 / A4_INCHES[1]
    return top


def _thin(n: int) -> slice:
    return slice(None, None, max(1, math.ceil(n / _MAX_POINTS)))


def _window(t: np.ndarray, spans: Sequence[tuple[float, float]], margin: float = 3.0) -> np.ndarray:
    """The indices of ``t`` from ``margin`` before the first span to after the last, thinned."""
    lo, hi = min(a for a, _ in spans) - margin, max(b for _, b in spans) + margin
    idx = np.flatnonzero((t >= lo) & (t <= hi))
    return idx[_thin(len(idx))]


def _legend_on_top(ax: Any) -> None:
    """The legend in one row in head room made above the lines."""
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.35 * (hi - lo))
    ax.legend(loc="upper center", ncol=3, frameon=False)


def _hband(ax: Any, lo: float, hi: float, label: str, hatch: str) -> None:
    ax.axhspan(lo, hi, facecolor="none", edgecolor="0.6", hatch=hatch, linewidth=0, zorder=0.5)
    ax.text(1.005, (lo + hi) / 2, label, transform=ax.get_yaxis_transform(), fontsize=6, va="center", color="0.3")


# ---------------------------------------------------------------------------
# Page 1: summary
# ---------------------------------------------------------------------------


def _date(s: str) -> str:
    try:
        d = datetime.fromisoformat(s)
    except (TypeError, ValueError):
        return s or DASH
    return (d.astimezone(UTC) if d.tzinfo else d).strftime("%Y-%m-%d %H:%M UTC")


def _summary_page(a: Analysed, bands: dict, changes: Sequence[dict] = ()) -> Any:
    info = a.session.info
    tests = a.analysis.tests()
    fig = _page("Hip rotation report", f"hipimu · {a.name}")
    lines = [f"Session: {a.name}", f"Subject: {a.subject_id}", f"Date: {_date(info.created_utc)}",
             f"Tests found: {', '.join(_TEST_NAMES.get(t, t) for t in tests) or 'none'}",
             f"Sides: {', '.join(a.analysis.sides)}"]
    if getattr(info, "simulated", False):
        lines.append("Simulated session (virtual subject): not a real person.")
    y = _text(fig, 0.915, lines, size=9.5) - 0.015
    rows = summary_rows(a, bands)
    means = {(r["test"], r["side"]): r for r in rows if r["kind"] == "mean"}
    sym = {r["test"]: r for r in rows if r["kind"] == "symmetry"}
    each: dict[tuple[str, str], list[dict]] = {}  # the trial/rep rows, for the SDs the means lack
    for r in rows:
        if r["kind"] in ("trial", "rep"):
            each.setdefault((r["test"], r["side"]), []).append(r)
    goals = bands.get("goals", {})
    for test in tests:
        b = bands.get(test, {})
        sides = [s for s in ("left", "right") if (test, s) in means]
        unit = "reps" if test == "squat" else "trials"
        count = ", ".join(f"{s} n = {means[(test, s)]['n']} {unit}" for s in sides)
        fig.text(0.07, y, f"{_TEST_NAMES.get(test, test)}  ({count})", fontsize=10, fontweight="bold", va="top")
        if test == "squat":
            spec = [("depth (hip flexion)", "depth", b.get("flexion"), None, True),
                    ("IR at the bottom", "ir_at_bottom", b.get("ir"), None, False),
                    ("butt wink", "butt_wink", None, None, False)]
        else:
            spec = [("max IR", "max_ir", b.get("ir"), goals.get("ir"), True),
                    ("max ER", "max_er", b.get("er"), goals.get("er"), True),
                    ("arc (IR + ER)", "arc", b.get("arc"), goals.get("arc"), True),
                    ("pelvic compensation", "pelvic_compensation", None, None, False)]
        cells = []
        for label, key, norm, goal, index in spec:
            row = [label]
            for s in ("left", "right"):
                m = means.get((test, s), {})
                v = m.get(f"{key}_deg", math.nan)
                sd = m.get(f"{key}_sd_deg")
                if sd is None:
                    sd = side_stats([x.get(f"{key}_deg", math.nan) for x in each.get((test, s), [])])[2]
                row.append(_pm(v, sd))
                if key == "pelvic_compensation":
                    row.append(f"{m['compensating']} of {m['n']} flagged" if m else DASH)
                elif norm is not None:
                    row.append(band_status(v, norm) or DASH)
                else:
                    row.append(f"{band_status(v, goal)} (goal)" if band_status(v, goal) else DASH)
            d = sym.get(test, {}).get(f"{key}_deg", math.nan)
            row += [_band(norm), _band(goal), _f(d, 1, " %") if index else _signed(d, "°")]
            cells.append(row)
        y = _table(fig, y - 0.02, ["", "left (°)", "left status", "right (°)", "right status", "norm (°)", "goal (°)",
                                   "R vs L"], cells, col_widths=[0.2, 0.13, 0.13, 0.13, 0.13, 0.09, 0.09, 0.1]) - 0.025
    if not tests:
        y = _text(fig, y, ["No rotation trials and no squat reps were found in this recording."], size=9) - 0.01
    foot = [("Mean ± SD over the trials/reps of each side; status against the norm band (against the goal where "
             "there is no norm). R vs L: symmetry index 100·(R − L)/mean(R, L) in %, or R − L in degrees.")
            + (f" Pelvic compensation: the pelvis moving more than {_f(_deg(a.analysis.options.compensation_rad), 0)}°"
               " during a trial." if a.analysis.rotation else "")]
    for r in rows:
        if r["kind"] == "reserve":
            foot.append(f"IR reserve, {r['side']}: {_f(r['ir_reserve_deg'], 1, '°')} ({_TEST_NAMES.get(r['test'])} "
                        f"max IR {_f(r['table_ir_deg'], 1, '°')} minus squat IR at the bottom "
                        f"{_f(r['squat_ir_deg'], 1, '°')}).")
    mdc = _deg(a.analysis.options.mdc_rad)
    foot.append(f"Minimal detectable change: {mdc:g}°. A change between sessions smaller than {mdc:g}° is "
                "within the measurement's own variability; only a larger change counts.")
    y = _text(fig, y, foot, size=8) - 0.01
    if changes:
        y = _changes(fig, y, changes, mdc) - 0.01
    notes = list(a.analysis.notes)
    if notes:
        fig.text(0.07, y, "Analysis notes", fontsize=9, fontweight="bold", va="top")
        _text(fig, y - 0.018, [f"• {n}" for n in notes[:12]] + ([f"… and {len(notes) - 12} more"] if len(notes) > 12
                                                                  else []), size=8)
    return fig


def _changes(fig: Any, y: float, changes: Sequence[dict], mdc: float) -> float:
    """The table of changes since the subject's previous session, beyond-MDC cells marked."""
    first = changes[0]
    fig.text(0.07, y, f"Change since the previous session ({first['compared_with']})", fontsize=10,
             fontweight="bold", va="top")
    cells = []
    for c in changes:
        flagged = set(str(c.get("beyond_mdc", "")).split())
        row = [f"{_TEST_NAMES.get(c['test'], c['test'])}, {c['side']}"]
        for q in ("max_ir", "max_er", "arc"):
            v = c.get(f"{q}_deg", math.nan)
            beyond = _ok(v) and f"{q}{'+' if v > 0 else '-'}" in flagged
            row.append(_signed(v, "°") + (" *" if beyond else ""))
        row.append("yes" if flagged else "no")
        cells.append(row)
    y = _table(fig, y - 0.02, ["", "max IR", "max ER", "arc", f"beyond MDC ({mdc:g}°)"], cells,
               col_widths=[0.3, 0.15, 0.15, 0.15, 0.17])
    return _text(fig, y - 0.005, ["Later minus earlier mean; * marks a change of at least the minimal detectable change."],
                 size=8)


# ---------------------------------------------------------------------------
# Page 2: rotation tests
# ---------------------------------------------------------------------------


def _rotation_page(a: Analysed, test: str, bands: dict) -> Any:
    an = a.result.angles
    t = np.asarray(an.time_s)
    trials = [r for r in a.analysis.rotation if r.test == test]
    sides = [s for s in ("right", "left") if any(r.side == s for r in trials)]
    fig = _page(_TEST_NAMES.get(test, test), "Hip rotation per side (IR up, ER down), trials shaded; "
                "norm bands hatched. Pelvis angles below. Degrees.")
    idx = _window(t, [(r.start_s, r.end_s) for r in trials])
    b = bands.get(test, {})
    h, top = 0.155, 0.915
    axes = []
    for k, side in enumerate(sides):
        ax = fig.add_axes((0.09, top - (k + 1) * h - k * 0.03, 0.82, h), sharex=axes[0] if axes else None)
        axes.append(ax)
        rot = np.degrees(an.hip[side][:, 2])
        ax.plot(t[idx], rot[idx], lw=0.8, color="black")
        ax.axhline(0, color="0.5", lw=0.5)
        if "ir" in b:
            _hband(ax, *b["ir"], "IR norm", "////")
        if "er" in b:
            _hband(ax, -b["er"][1], -b["er"][0], "ER norm", "\\\\\\\\")
        for r in (r for r in trials if r.side == side):
            ax.axvspan(r.start_s, r.end_s, facecolor="0.9", edgecolor="none", zorder=0)
            m = np.flatnonzero((t >= r.start_s) & (t <= r.end_s))
            ax.text((r.start_s + r.end_s) / 2, 1.0, f"#{r.index}", transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", fontsize=7)
            if len(m) and _ok(r.max_ir_rad) and r.max_ir_rad > 0:
                i = m[np.argmax(rot[m])]
                ax.plot(t[i], _deg(r.max_ir_rad), marker="^", ms=5, color="black", ls="none")
                ax.annotate(f"IR {_deg(r.max_ir_rad):.0f}°", (t[i], _deg(r.max_ir_rad)), xytext=(0, 4),
                            textcoords="offset points", ha="center", fontsize=6.5)
            if len(m) and _ok(r.max_er_rad) and r.max_er_rad > 0:
                i = m[np.argmin(rot[m])]
                ax.plot(t[i], -_deg(r.max_er_rad), marker="v", ms=5, color="white", mec="black", ls="none")
                ax.annotate(f"ER {_deg(r.max_er_rad):.0f}°", (t[i], -_deg(r.max_er_rad)), xytext=(0, -10),
                            textcoords="offset points", ha="center", fontsize=6.5)
        finite = np.abs(rot[idx])[np.isfinite(rot[idx])]
        lim = max(10.0, finite.max(initial=0.0), *b.get("ir", ()), *b.get("er", ()))
        ax.set_ylim(-1.25 * lim, 1.25 * lim)
        ax.set_ylabel(f"{side} hip rotation (°)\nIR + / ER −")
        ax.tick_params(labelbottom=False)
    bottom = top - len(sides) * (h + 0.03)
    ax = fig.add_axes((0.09, bottom - 0.13, 0.82, 0.13), sharex=axes[0] if axes else None)
    for k, (name, ls) in enumerate(_PELVIS_LINES):
        ax.plot(t[idx], np.degrees(an.pelvis[idx, k]), ls=ls, lw=0.9, color="black", label=name)
    for r in trials:
        ax.axvspan(r.start_s, r.end_s, facecolor="0.9", edgecolor="none", zorder=0)
    ax.set_ylabel("pelvis (°)")
    ax.set_xlabel("time (s)")
    _legend_on_top(ax)
    thr = _f(_deg(a.analysis.options.compensation_rad), 0)
    cells = [[r.side, str(r.index), _f(_deg(r.max_ir_rad)), _f(_deg(r.apparent_max_ir_rad)), _f(_deg(r.max_er_rad)),
              _f(_deg(r.apparent_max_er_rad)), _f(_deg(r.arc_rad)), _f(r.ir_held_s), _f(r.er_held_s),
              _f(_deg(r.pelvic_compensation_rad)), "yes" if r.compensating else "no"] for r in trials]
    n = max(len(cells), 1)
    y = _table(fig, bottom - 0.175, ["side", "#", "max IR", "apparent IR", "max ER", "apparent ER", "arc",
                                     "IR held (s)", "ER held (s)", "pelvis Δ", f"flag > {thr}°"], cells,
               row_h=min(0.02, 0.26 / (n + 1)),
               col_widths=[0.07, 0.04, 0.08, 0.1, 0.08, 0.1, 0.06, 0.1, 0.1, 0.08, 0.09])
    _text(fig, y - 0.008, [("Degrees. Apparent IR/ER: the thigh against the room with the pelvis held where it was "
                            "at the trial's start (what a goniometer reads when the pelvis is not watched); apparent "
                            "minus true is what the pelvis contributed. Held: seconds within "
                            f"{_f(_deg(a.analysis.options.end_range_rad), 0)}° of the trial's max. Pelvis Δ: largest "
                            f"change of tilt, obliquity or rotation from the trial's start; flagged beyond {thr}°.")],
          size=7)
    return fig


# ---------------------------------------------------------------------------
# Page 3: squat
# ---------------------------------------------------------------------------


def _squat_page(a: Analysed) -> Any:
    reps = sorted(a.analysis.squat, key=lambda r: (r.index, r.side))
    fig = _page("Squat", "Per rep and side; degrees. Butt wink: the largest anterior tilt on the way down minus "
                "the tilt at the bottom.")
    by = {(r.index, r.side): r for r in reps}
    cells = []
    for r in reps:
        o = by.get((r.index, "left" if r.side == "right" else "right"))
        diff = _deg(r.depth_rad - o.depth_rad) if (o is not None and r.side == "right") else math.nan
        cells.append([str(r.index), r.side, _f(_deg(r.depth_rad)), _f(_deg(r.ir_at_bottom_rad)),
                      _f(_deg(r.adduction_at_bottom_rad)), _f(_deg(r.tilt_top_rad)), _f(_deg(r.tilt_bottom_rad)),
                      _f(_deg(r.butt_wink_rad)), _f(_deg(r.knee_flare_abduction_rad)),
                      _f(_deg(r.knee_flare_er_rad)), _signed(diff)])
    y = _table(fig, 0.915, ["rep", "side", "depth", "IR bot.", "add. bot.", "tilt top", "tilt bot.",
                            "butt wink", "flare abd.", "flare ER", "depth R−L"], cells,
               row_h=min(0.019, 0.33 / (len(cells) + 1)),
               col_widths=[0.06, 0.08, 0.085, 0.085, 0.09, 0.085, 0.085, 0.095, 0.095, 0.085, 0.11])
    y = _text(fig, y - 0.006, [("Depth: peak hip flexion. IR / adduction (add.) at the bottom (bot.: the side's "
                                "peak flexion); tilt: pelvic tilt (+ anterior). Knee flare: abduction and ER gained "
                                "from the top to the bottom (negative: the hip turned inward). Depth R−L on the "
                                "right's row.")], size=7)
    an = a.result.angles
    t = np.asarray(an.time_s)
    idx = _window(t, [(r.start_s, r.end_s) for r in reps], margin=2.0)
    ax = fig.add_axes((0.09, y - 0.2, 0.82, 0.17))
    for side in (s for s in ("left", "right") if s in an.hip):
        ax.plot(t[idx], np.degrees(an.hip[side][idx, 0]), ls=_SIDE_LINE[side]["ls"], lw=0.9, color="black",
                label=f"{side} hip flexion")
    ax.plot(t[idx], np.degrees(an.pelvis[idx, 0]), ls=":", lw=0.9, color="black", label="pelvic tilt (+ anterior)")
    for r in reps:
        if r.side == reps[0].side:
            ax.axvspan(r.start_s, r.end_s, facecolor="0.9", edgecolor="none", zorder=0)
            ax.text((r.start_s + r.end_s) / 2, 1.0, f"#{r.index}", transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=7)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("angle (°)")
    _legend_on_top(ax)
    ax = fig.add_axes((0.09, 0.07, 0.82, y - 0.34))
    from matplotlib.lines import Line2D

    for r in reps:
        grid, ir = (np.degrees(np.asarray(v, dtype=float)) for v in r.ir_vs_flexion)
        st = _SIDE_LINE.get(r.side, {"ls": "-", "marker": "x"})
        if len(grid):
            ax.plot(grid, ir, ls=st["ls"], lw=0.9, color="black")
        if _ok(r.depth_rad) and _ok(r.ir_at_bottom_rad):
            ax.plot(_deg(r.depth_rad), _deg(r.ir_at_bottom_rad), marker=st["marker"], ms=4.5, ls="none",
                    mfc="white" if r.side == "left" else "black", mec="black")
    handles = [Line2D([], [], color="black", lw=0.9, ms=4.5, mec="black", mfc="white" if s == "left" else "black",
                      label=f"{s}: one line per rep, marker at the bottom", **_SIDE_LINE[s])
               for s in ("left", "right") if any(r.side == s for r in reps)]
    ax.axvline(90, color="black", ls=":", lw=1)
    ax.text(90, 1.0, " 90°", transform=ax.get_xaxis_transform(), va="bottom", fontsize=7)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_xlabel("hip flexion (°)")
    ax.set_ylabel("hip IR (°)  (+ internal)")
    ax.set_title("IR against hip flexion on the way down", loc="left")
    ax.legend(handles=handles, loc="upper left", framealpha=0.9)
    return fig


# ---------------------------------------------------------------------------
# Page 4: left/right bars
# ---------------------------------------------------------------------------


def _bars(ax: Any, groups: Sequence[tuple[str, dict[str, tuple[float, float]], Any]], ylabel: str) -> None:
    """Grouped bars: ``groups`` = (label, side -> (mean, sd), norm band or None); the band
    is a cross-hatched column beside its pair."""
    from matplotlib.patches import Rectangle

    w = 0.34
    labelled = False
    for x, (_, _, band) in enumerate(groups):
        if band is not None:
            ax.add_patch(Rectangle((x + w + 0.04, band[0]), 0.07, band[1] - band[0], facecolor="white",
                                   edgecolor="black", hatch="xxxx", lw=0.6, label=None if labelled else "norm band"))
            labelled = True
    for k, side in enumerate(("left", "right")):
        xs = np.arange(len(groups)) + (k - 0.5) * w
        ms = [g[1].get(side, (math.nan, math.nan))[0] for g in groups]
        sds = [g[1].get(side, (math.nan, math.nan))[1] for g in groups]
        ax.bar(xs, np.nan_to_num(ms), w, edgecolor="black", lw=0.7, label=side, **_SIDE_BAR[side])
        ax.errorbar(xs, ms, yerr=[s if _ok(s) else 0 for s in sds], fmt="none", ecolor="black", capsize=3, lw=0.8)
        for x, m, s in zip(xs, ms, sds):
            ax.text(x, (m if _ok(m) else 0) + (s if _ok(s) else 0), _f(m), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(groups)), [g[0] for g in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel(ylabel)
    ax.axhline(0, color="black", lw=0.6)
    _legend_on_top(ax)


def _bars_page(a: Analysed, bands: dict) -> Any:
    rows = [r for r in summary_rows(a, bands) if r["kind"] == "mean"]
    fig = _page("Left / right", "Means over the trials/reps, error bars ± 1 SD; left hatched, right grey; the norm "
                "band cross-hatched beside each pair. Degrees.")
    panels = []
    rot = [(f"{_TEST_NAMES.get(t, t).split()[0].lower()} {q}", t, k, bands.get(t, {}).get(b))
           for t in a.analysis.tests() if t != "squat" for q, k, b in (("max IR", "max_ir", "ir"), ("max ER", "max_er", "er"))]
    if rot:
        panels.append(("Rotation tests", rot))
    if a.analysis.squat:
        sq = bands.get("squat", {})
        panels.append(("Squat", [("depth", "squat", "depth", sq.get("flexion")),
                                 ("IR at the bottom", "squat", "ir_at_bottom", sq.get("ir"))]))
    for k, (title, spec) in enumerate(panels):
        ax = fig.add_axes((0.1, 0.55 - k * 0.45, 0.8, 0.34))
        groups = [(label, {r["side"]: (r.get(f"{key}_deg", math.nan), r.get(f"{key}_sd_deg", math.nan))
                           for r in rows if r["test"] == test}, band) for label, test, key, band in spec]
        _bars(ax, groups, "degrees")
        ax.set_title(title, loc="left", fontweight="bold")
    return fig


# ---------------------------------------------------------------------------
# Page 5: data quality
# ---------------------------------------------------------------------------


def _quality_page(a: Analysed) -> Any:
    q = a.quality
    fig = _page("Data quality", "Per sensor: samples received, rate, loss, gaps and clock drift; the calibration; "
                "how reliable the angles were.")
    cells = [[str(s.get("role", "")), str(s.get("device_id", "")), str(s.get("samples", DASH)),
              _f(s.get("rate_hz"), 2), _f(s.get("nominal_hz"), 0), _f(s.get("loss_percent"), 2),
              str(s.get("gaps", DASH)), _f(s.get("longest_gap_s"), 3), _f(s.get("drift_ppm"), 0)]
             for s in q.get("sensors", [])]
    y = _table(fig, 0.915, ["role", "device", "samples", "rate (Hz)", "nominal", "loss (%)", "gaps",
                            "max gap (s)", "drift (ppm)"], cells,
               col_widths=[0.11, 0.19, 0.1, 0.1, 0.09, 0.09, 0.07, 0.12, 0.12])
    lines = [f"Duration: {_f(q.get('duration_s'), 1, ' s')}",
             f"Calibration: {q.get('calibration_method') or DASH}, grade {q.get('calibration_grade') or DASH}",
             f"Angles reliable (quality ≥ {RELIABLE:g}): {_f(q.get('angles_reliable_percent'), 1, ' %')} of the time"]
    lines += [f"• {n}" for n in q.get("calibration_notes", [])[:8]]
    y = _text(fig, y - 0.02, lines, size=8.5) - 0.02
    an = a.result.angles
    t, qual = np.asarray(an.time_s), np.asarray(an.quality, dtype=float)
    ax = fig.add_axes((0.09, max(y - 0.42, 0.07), 0.82, 0.38))
    if len(t):
        s = _thin(len(t))
        ax.plot(t[s], qual[s], lw=0.8, color="black", label="angle quality")
        ax.axhline(RELIABLE, color="black", ls="--", lw=0.8, label=f"{RELIABLE:g}: reliable above")
        w = getattr(a.result.calibration, "windows", None)
        if w is not None:
            ax.axvspan(w.static[0], w.end_s, facecolor="none", edgecolor="0.6", hatch="////", lw=0, zorder=0,
                       label="calibration routine")
        for k, r in enumerate([*a.analysis.rotation, *a.analysis.squat]):
            ax.axvspan(r.start_s, r.end_s, facecolor="0.85", edgecolor="none", zorder=0,
                       label="trials / reps" if k == 0 else None)
    ax.set_ylim(-0.05, 1.1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("quality (0..1)")
    ax.set_title("Angle quality over time", loc="left")
    if len(t):
        ax.legend(loc="lower right", framealpha=0.9)
    return fig
