"""A custom model with its own TypeScript implementation: a Div whose ``volume`` the slider sets.

bokeh compiles ``__implementation__`` with Node.js (``node`` on PATH) when a page is first
bundled, and the page carries the compiled code, as under bokeh serve.
"""
from bokeh.core.properties import Int
from bokeh.layouts import column
from bokeh.models import Div, Slider
from bokeh.plotting import curdoc
from bokeh.util.compiler import TypeScript

TS = """
import {Div, DivView} from "models/widgets/div"
import type * as p from "core/properties"

export class LoudDivView extends DivView {
  declare model: LoudDiv
}

export namespace LoudDiv {
  export type Attrs = p.AttrsOf<Props>
  export type Props = Div.Props & {volume: p.Property<number>}
}

export interface LoudDiv extends LoudDiv.Attrs {}

export class LoudDiv extends Div {
  declare properties: LoudDiv.Props
  declare __view_type__: LoudDivView

  constructor(attrs?: Partial<LoudDiv.Attrs>) {
    super(attrs)
  }

  static {
    this.prototype.default_view = LoudDivView
    this.define<LoudDiv.Props>(({Int}) => ({
      volume: [ Int, 1 ],
    }))
  }
}
"""


class LoudDiv(Div):
    __implementation__ = TypeScript(TS)
    volume = Int(default=1)


loud = LoudDiv(text="quiet", volume=1, name="loud")
slider = Slider(start=1, end=10, value=1, step=1, title="volume", name="slider")


def louder(attr: str, old: int, new: int) -> None:
    loud.volume = new
    loud.text = "!" * new


slider.on_change("value", louder)
curdoc().add_root(column(slider, loud))
curdoc().title = "Custom model"
