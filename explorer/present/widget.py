"""The Explore player in a notebook: `explorer.show(trace_or_text, model=...)` returns an anywidget.

One JavaScript source: the widget runs assets/player.js (beside explorer/present/player.py, the file
the app's Streamlit component loads too), read at import time, with its Streamlit entry renamed and a
small anywidget entry appended; both hosts draw the same `PlayerData`. Stepping (buttons, slider,
← → Home End, P to play), hover values and the heatmap tabs work as in the app. The player is sent the whole text (no windows) and the selected token comes back as
the widget's `pos`; a tab change (`view`) re-sends the heatmaps of that tab.

    import explorer as E
    m = E.load_model("pretrained/fiction-lstm")
    E.show("Mary loves John .", model=m)          # or E.show(m.trace(text), model=m)
"""
from __future__ import annotations

import hashlib

from ..trace import Trace
from .player import PLAYER_CSS, PLAYER_JS  # noqa: F401 - the sources, named here for readers and tests
from .player import HEATMAP_TABS, build_player_data, player_script, player_stylesheet
from .scales import value_ranges

#: The Streamlit v2 entry of player.js, renamed so that the anywidget entry below can call it.
STREAMLIT_ENTRY = "export default function (component) {"

#: The heatmap tabs of each cell, as on the Explore page.
TABS = HEATMAP_TABS

_ANYWIDGET_ENTRY = r"""
// ---- anywidget entry: added by explorer/present/widget.py; everything above is explorer/present/assets/player.js ----
function anywidgetRender({ model, el }) {
  el.classList.add("rsx-notebook");
  const send = (name, value) => {
    if (name === "pos" && value && Number.isInteger(value.pos)) model.set("pos", value.pos);
    else if (name === "view" && typeof value === "string") model.set("view", value);
    else return;
    model.save_changes();
  };
  let cleanup = null;
  const mount = () => {
    const c = mountPlayer({ parentElement: el, data: model.get("data"), setStateValue: send });
    if (typeof c === "function") cleanup = c;
  };
  mount();
  model.on("change:data", mount);
  // Keys: the player listens on the document, but a notebook (JupyterLab) keeps key presses inside
  // an output to itself. Once the player has the focus (a click on it), its keys step it here.
  el.tabIndex = 0;
  const keys = e => {
    if (!el.__rsx) return;
    onKey(el.__rsx, e);
    if (e.defaultPrevented) e.stopPropagation();
  };
  el.addEventListener("keydown", keys, true);
  return () => {
    model.off("change:data", mount);
    el.removeEventListener("keydown", keys, true);
    if (cleanup) cleanup();
  };
}
export default { render: anywidgetRender };
"""


def esm() -> str:
    """player.js as an anywidget module (one source for the app and the notebook)."""
    js = player_script()
    if js.count(STREAMLIT_ENTRY) != 1:
        raise RuntimeError(f"{PLAYER_JS} no longer has exactly one {STREAMLIT_ENTRY!r}: "
                           "update explorer/present/widget.py with the player's entry")
    return js.replace(STREAMLIT_ENTRY, "function mountPlayer(component) {") + _ANYWIDGET_ENTRY


def css() -> str:
    return (player_stylesheet()
            + "\n.rsx-notebook { max-width: 1200px; font-family: 'Source Sans Pro', Helvetica, Arial, sans-serif; }\n")


def _widget_class():
    import anywidget
    import traitlets

    class Player(anywidget.AnyWidget):
        """The Explore player as a notebook widget. `pos` (the selected token) and `view` (the heatmap
        tab) follow the browser (read them from Python; a new `view` set here re-sends the heatmaps)."""
        _esm = esm()
        _css = css()
        data = traitlets.Dict().tag(sync=True)
        pos = traitlets.Int(0).tag(sync=True)
        view = traitlets.Unicode("").tag(sync=True)

        def __init__(self, tr: Trace, layer: int, ranges: dict | None, sig: str, **kw):
            super().__init__(**kw)
            self._tr, self._layer, self._ranges, self._sig = tr, layer, ranges, sig
            self.pos = len(tr) - 1
            self.view = TABS[tr.cell][0][0]
            self._push()
            self.observe(lambda _change: self._push(), names="view")

        def _push(self):
            tabs = dict(TABS[self._tr.cell])
            heat = tabs.get(self.view, next(iter(tabs.values())))
            self.data = build_player_data(self._tr, self._layer, pos=self.pos, ranges=self._ranges, heat=heat,
                                          sig=self._sig, view=self.view,
                                          views=[name for name, _ in TABS[self._tr.cell]]).to_json()

        @property
        def trace(self) -> Trace:
            return self._tr

    return Player


_PLAYER = None


def show(trace_or_text, model=None, layer: int | None = None):
    """The Explore player for a Trace or a text (traced by `model`, a LoadedModel) in a notebook.
    `layer`: 1 = the bottom layer, -1 and the default = the top one (0 is refused). Returns the widget
    (displayed as a cell's value)."""
    global _PLAYER
    if isinstance(trace_or_text, Trace):
        tr = trace_or_text
    elif isinstance(trace_or_text, str):
        if model is None:
            raise ValueError("show(text) needs model=: a LoadedModel (explorer.load_model(path)) to read the text")
        tr = model.trace(trace_or_text)
    else:
        raise TypeError(f"show() takes a Trace or a str, not {type(trace_or_text).__name__}")
    if not len(tr):
        raise ValueError("the text holds no tokens to show")
    layer = tr.layer(layer).layer                 # the layer's number; 0 and missing layers: InputError
    ranges = value_ranges(model) if model is not None else None
    sig = hashlib.sha1(f"{id(tr)}|{tr.text}|{layer}".encode("utf-8", "surrogatepass")).hexdigest()[:16]
    if _PLAYER is None:
        _PLAYER = _widget_class()
    return _PLAYER(tr, layer, ranges, sig)
