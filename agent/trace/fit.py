"""Tables that fit the terminal they are printed on, without cutting a word to "le…".

A rich Table squeezed below its columns' longest words cuts headers and values with an
ellipsis ("le…" for learner, "ite…" for a candidate id): at 80 columns the trace's main tables
were unreadable. A :class:`Fitted` table has layouts, widest first (every column, then fewer
columns whose cells stack several values); it prints the first whose words all fit the width
it is given, each column at least as wide as its longest word, and when none does, one block
per row ("header value" pairs that wrap as a paragraph). The choice is made at print time, from
the console's width, so the same report fits a wide terminal, an 80-column one, and a pipe.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

Cell = str | Text
"""A cell: a string (read as rich markup, as a Table reads it) or a styled Text."""


@dataclass(frozen=True)
class Column:
    """A column of a layout."""

    header: str
    justify: str = "left"
    """left, right or center."""
    no_wrap: bool = False
    """Keep the cell on one line (its whole width is its minimum)."""


@dataclass
class Layout:
    """One arrangement of a table's columns and rows."""

    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    styles: list[str | None] = field(default_factory=list)
    """A style per row (e.g. bold for the best candidate); empty: none."""

    def add_row(self, *cells: Cell, style: str | None = None) -> None:
        """Append a row (one cell per column)."""
        self.rows.append(list(cells))
        self.styles.append(style)


class Fitted:
    """A table printed in the first of its ``layouts`` that fits the width, else as blocks.

    ``boxed``: the default heavy-headed box with padding 1 (else no box, padding 2 between
    columns, as a plain grid). ``key`` is the column whose value heads a row's block in the
    narrowest form (None: the block is only "header value" pairs)."""

    def __init__(self, layouts: list[Layout], *, title: str | None = None,
                 caption: str | None = None, boxed: bool = True, key: int | None = 0) -> None:
        self.layouts = layouts
        self.title = title
        self.caption = caption
        self.boxed = boxed
        self.key = key

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for layout in self.layouts:
            widths = self.fit(console, options, layout)
            if widths is not None:
                yield self.table(layout, widths)
                return
        yield self.blocks(self.layouts[0])

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, options.max_width)

    def fit(self, console: Console, options: ConsoleOptions, layout: Layout) -> list[int] | None:
        """Content widths of ``layout``'s columns within ``options.max_width``, no column
        below its longest word (nor a no-wrap cell below its length); None if it cannot fit.
        The room beyond the minimums is shared by how much each column would still wrap."""
        pad = 2 if self.boxed else 4
        frame = len(layout.columns) + 1 if self.boxed else 0  # the box's vertical lines
        room = options.max_width - frame - pad * len(layout.columns)
        spans = [_span(console, options, column, [row[i] for row in layout.rows])
                 for i, column in enumerate(layout.columns)]
        lows = [low for low, _ in spans]
        wants = [high - low for low, high in spans]
        spare = room - sum(lows)
        if spare < 0:
            return None
        if spare >= sum(wants):
            return [high for _, high in spans]  # every cell on one line
        shares = [spare * want / sum(wants) for want in wants]
        widths = [low + int(share) for low, share in zip(lows, shares, strict=True)]
        by_remainder = sorted(range(len(shares)), key=lambda i: int(shares[i]) - shares[i])
        for i in by_remainder[:room - sum(widths)]:
            widths[i] += 1
        return widths

    def table(self, layout: Layout, widths: list[int]) -> Table:
        """``layout`` as a rich Table with these content widths."""
        extra = {} if self.boxed else {"box": None, "show_edge": False, "padding": (0, 2)}
        table = Table(title=self.title, title_justify="left", caption=self.caption,
                      caption_justify="left", **extra)  # type: ignore[arg-type]
        for column, width in zip(layout.columns, widths, strict=True):
            table.add_column(column.header, justify=column.justify,  # type: ignore[arg-type]
                             no_wrap=column.no_wrap, width=width)
        styles = layout.styles or [None] * len(layout.rows)
        for row, style in zip(layout.rows, styles, strict=True):
            table.add_row(*row, style=style)
        return table

    def blocks(self, layout: Layout) -> Group:
        """Each row as a block: its key cell, then "header value" pairs laid out in columns."""
        parts: list[RenderableType] = []
        if self.title:
            parts.append(Text(self.title, style="italic"))
        styles = layout.styles or [None] * len(layout.rows)
        for row, style in zip(layout.rows, styles, strict=True):
            pairs = [_pair(column.header, cell) for i, (column, cell) in
                     enumerate(zip(layout.columns, row, strict=True))
                     if i != self.key and _plain(cell)]
            if self.key is None:
                parts.append(Columns(pairs, padding=(0, 3)))
                continue
            if _plain(row[self.key]):  # a row without one continues the row above it
                parts.append(_text(row[self.key], style or "bold"))
            parts.append(Padding(Columns(pairs, padding=(0, 3)), (0, 0, 0, 2)))
        if self.caption:
            parts.append(Text(self.caption, style="dim"))
        return Group(*parts)


def _span(console: Console, options: ConsoleOptions, column: Column,
          cells: Iterable[Cell]) -> tuple[int, int]:
    """(longest word, widest line) over a column's header and cells; a no-wrap column's
    shortest is its widest (its header does not wrap either)."""
    low = high = 0
    for cell in [column.header, *cells]:
        measured = Measurement.get(console, options.update(width=10_000), cell)
        low = max(low, measured.maximum if column.no_wrap else measured.minimum)
        high = max(high, measured.maximum)
    return low, high


def _plain(cell: Cell) -> str:
    return (cell.plain if isinstance(cell, Text) else Text.from_markup(cell).plain).strip()


def _text(cell: Cell, style: str | None = None) -> Text:
    text = cell.copy() if isinstance(cell, Text) else Text.from_markup(cell)
    if style:
        text.stylize(style)
    return text


def _pair(header: str, cell: Cell) -> Text:
    """'header value', the header dim (a leading '→ ' of a chain header dropped)."""
    name = header.removeprefix("→ ").strip()
    return Text.assemble((name, "dim"), " ", _text(cell))
