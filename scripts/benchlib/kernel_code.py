"""The code the bench runs in the kernel, shared by the daemon side and the baseline reader.

Every slider uses max=10**9 and counts from 1: IntSlider() clamps at 100 and setting
the current value again sends nothing (lessons.md), so each step is one comm_msg.
"""

from __future__ import annotations

# Creates a slider named `name` and prints its comm id (= the model id).
NEW_SLIDER = """
from ipywidgets import IntSlider
{name} = IntSlider(max=10**9)
print({name}.model_id)
"""

# `n` updates as fast as the kernel can send them.
BURST = """
for _i in range(1, {n} + 1):
    {name}.value = _i
"""

# `n` updates, one every `gap` seconds on an absolute schedule (no drift).
PACED = """
import time as _time
_t0 = _time.perf_counter()
for _i in range(1, {n} + 1):
    {name}.value = _i
    _d = _t0 + _i * {gap} - _time.perf_counter()
    if _d > 0:
        _time.sleep(_d)
"""

# `count` sliders sharing one Layout and one style, so the room holds count + 2 comms.
MANY_SLIDERS = """
from ipywidgets import IntSlider, Layout, SliderStyle
_layout, _style = Layout(), SliderStyle()
_many = [IntSlider(max=10**9, layout=_layout, style=_style) for _ in range({count})]
print(len(_many))
"""

# `rounds` passes over every slider: count * rounds updates in all.
MANY_UPDATES = """
for _r in range(1, {rounds} + 1):
    for _w in _many:
        _w.value = _r
"""

# A tqdm-like pair, a progress bar and its text label; prints both model ids.
NEW_PROGRESS = """
from ipywidgets import FloatProgress, HTML
_bar = FloatProgress(min=0, max={n})
_label = HTML()
print(_bar.model_id, _label.model_id)
"""

# `n` steps at least `gap` seconds apart (no catching up after a late wake-up, so no
# two steps share a coalescing window): each moves the bar and rewrites the label, as
# tqdm does.
PROGRESS_STREAM = """
import time as _time
_t0 = _time.perf_counter()
for _i in range(1, {n} + 1):
    _bar.value = _i
    _label.value = f"{{_i}}/{n} [{{_time.perf_counter() - _t0:.1f}} s]"
    _time.sleep({gap})
"""

# A big-state widget: a JSON string value (Textarea) or a binary one (Image bytes).
NEW_BIG = {
    "json": """
from ipywidgets import Textarea
_big = Textarea(value="")
print(_big.model_id)
""",
    "binary": """
from ipywidgets import Image
_big = Image(value=b"", format="png")
print(_big.model_id)
""",
}

_BIG_VALUE = {
    "json": '"%d" % _k + "x" * {size}',
    "binary": "bytes([_k % 256]) * {size}",
}

# Rounds of: one new big state, then `per_round` slider steps `gap` seconds apart.
BIG_WITH_SLIDER = """
import time as _time
_i = 0
for _k in range(1, {rounds} + 1):
    _big.value = {big_value}
    _t0 = _time.perf_counter()
    for _j in range(1, {per_round} + 1):
        _i += 1
        {name}.value = _i
        _d = _t0 + _j * {gap} - _time.perf_counter()
        if _d > 0:
            _time.sleep(_d)
"""


def big_with_slider(
    kind: str, *, size: int, rounds: int, per_round: int, gap: float, name: str
) -> str:
    value = _BIG_VALUE[kind].format(size=size)
    return BIG_WITH_SLIDER.format(
        big_value=value, rounds=rounds, per_round=per_round, gap=gap, name=name
    )
