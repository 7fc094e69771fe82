"""Speed and memory of each model in a comparison: two horizontal bar charts side by side (QtCharts).

The same drawing serves the page and the report: ``chart_png`` draws the charts again at a fixed size,
off screen, and returns the PNG bytes that ``app.compare.report`` embeds.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCharts import (
    QAbstractBarSeries,
    QBarCategoryAxis,
    QBarSet,
    QChart,
    QChartView,
    QHorizontalBarSeries,
    QValueAxis,
)
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMargins, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter
from PySide6.QtWidgets import QHBoxLayout, QSizePolicy, QWidget

from app.compare.figures import label, shown_entries
from app.history import ComparisonRecord
from ui.qt import theme
from ui.qt.theme import Colors
from ui.widgets.labels import elide_words

LABEL_WIDTH = 105  # pixels a model's name may take beside its bars on the page
PNG_LABEL_WIDTH = 220  # and in the report's picture
PNG_WIDTH = 1000
MB = 1_000_000


@dataclass(frozen=True)
class ChartRow:
    """One model's bars: ``None`` where the figure is unknown (the model failed, or was stopped first)."""

    label: str
    tokens_per_s: float | None
    peak_mb: float | None
    forecast_mb: float | None


def chart_rows(record: ComparisonRecord) -> list[ChartRow]:
    """The models in column order, named as the page names them ("Model A" while a blind vote is due); while it
    is due, without memory, which gives a model's size away."""
    rows = []
    hidden = record.names_hidden
    for entry in shown_entries(record):
        m = entry.metrics
        rows.append(ChartRow(label(record, entry), _number(m.get("tokens_per_s")),
                             None if hidden else _number(m.get("peak_rss_bytes"), MB),
                             None if hidden else _number(m.get("estimate_bytes"), MB)))
    return rows


def has_figures(rows: list[ChartRow]) -> bool:
    return any(row.tokens_per_s or row.peak_mb for row in rows)


def _number(value: object, unit: float = 1.0) -> float | None:
    return float(value) / unit if isinstance(value, int | float) and value > 0 else None


def chart_height(models: int) -> int:
    """Room for the title and the axis, and about 36 pixels per model."""
    return 84 + 36 * max(models, 1)


def _bar_chart(title: str, labels: list[str], sets: list[tuple[str, list[float | None], str]],
               label_width: int, colors: Colors) -> QChart:
    chart = QChart()
    chart.setTitle(title)
    title_font = QFont(chart.titleFont())
    title_font.setBold(True)
    title_font.setPointSizeF(max(title_font.pointSizeF() - 0.5, 8.0))
    chart.setTitleFont(title_font)
    chart.setTitleBrush(QColor(colors.ink))
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    chart.setBackgroundBrush(QColor(colors.surface))
    chart.setBackgroundRoundness(0)
    chart.setMargins(QMargins(4, 2, 12, 2))
    series = QHorizontalBarSeries()
    top = 0.0
    for name, values, color in sets:
        bars = QBarSet(name)
        # The first model at the top: a horizontal bar chart draws its first category at the bottom.
        bars.append([value or 0.0 for value in reversed(values)])
        bars.setColor(QColor(color))
        bars.setBorderColor(QColor(color))
        bars.setLabelColor(QColor(colors.ink))
        series.append(bars)
        top = max([top, *(value or 0.0 for value in values)])
    series.setLabelsVisible(True)
    series.setLabelsPosition(QAbstractBarSeries.LabelsPosition.LabelsOutsideEnd)
    series.setLabelsPrecision(4)
    series.setBarWidth(0.7)
    chart.addSeries(series)
    metrics = QFontMetrics(chart.font())
    categories = QBarCategoryAxis()
    categories.append([elide_words(text, metrics, label_width) for text in reversed(labels)])
    categories.setLabelsColor(QColor(colors.ink))
    categories.setGridLineVisible(False)
    chart.addAxis(categories, Qt.AlignmentFlag.AlignLeft)
    series.attachAxis(categories)
    axis = QValueAxis()
    axis.setRange(0, top * 1.2 if top > 0 else 1)  # room for the value written past the longest bar
    axis.setLabelFormat("%.0f")
    axis.applyNiceNumbers()
    axis.setLabelsColor(QColor(colors.ink_soft))
    chart.addAxis(axis, Qt.AlignmentFlag.AlignBottom)
    series.attachAxis(axis)
    legend = chart.legend()
    legend.setVisible(len(sets) > 1)
    legend.setAlignment(Qt.AlignmentFlag.AlignBottom)
    legend.setLabelColor(QColor(colors.ink))
    return chart


def build_charts(rows: list[ChartRow], label_width: int = LABEL_WIDTH,
                 colors: Colors | None = None) -> tuple[QChart, QChart]:
    """The charts in ``colors``, the window's by default (a saved picture is always light, for printing)."""
    colors = colors or theme.colors()
    labels = [row.label for row in rows]
    speed = _bar_chart("Speed, tokens per second (more is better)", labels,
                       [("Speed", [row.tokens_per_s for row in rows], colors.accent)], label_width, colors)
    memory = _bar_chart("Peak memory, MB (less is better)", labels,
                        [("Measured", [row.peak_mb for row in rows], colors.measured)], label_width, colors)
    return speed, memory


class _Charts(QWidget):
    """The two charts side by side."""

    def __init__(self, rows: list[ChartRow], label_width: int = LABEL_WIDTH, colors: Colors | None = None) -> None:
        super().__init__()
        colors = colors or theme.colors()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        self.views = []
        for chart in build_charts(rows, label_width, colors):
            view = QChartView(chart)
            view.setRenderHint(QPainter.RenderHint.Antialiasing)
            view.setMinimumSize(220, 0)
            view.setStyleSheet(f"background: {colors.surface}; border: none;")
            layout.addWidget(view)
            self.views.append(view)


class CompareChart(QWidget):
    """The charts of the comparison on show; ``set_record`` redraws them (names revealed after a blind vote)."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("compareChart")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(8, 8, 8, 8)
        self.rows: list[ChartRow] = []
        self._charts: _Charts | None = None

    def set_record(self, record: ComparisonRecord) -> bool:
        """Draw ``record``'s figures; False (and nothing drawn) when it has none yet."""
        rows = chart_rows(record)
        if rows == self.rows and self._charts is not None:
            return has_figures(rows)
        self.clear()
        self.rows = rows
        if not has_figures(rows):
            return False
        self._charts = _Charts(rows)
        self._layout.addWidget(self._charts)
        self.setFixedHeight(chart_height(len(rows)) + 16)
        return True

    def clear(self) -> None:
        self.rows = []
        if self._charts is not None:
            self._layout.removeWidget(self._charts)
            self._charts.deleteLater()
            self._charts = None

    def chart_png(self) -> bytes:
        """The charts drawn again off screen, 1000 pixels wide, as PNG; empty when there is nothing to draw."""
        if not has_figures(self.rows):
            return b""
        charts = _Charts(self.rows, PNG_LABEL_WIDTH, theme.LIGHT)
        charts.setStyleSheet(f"background: {theme.LIGHT.surface};")
        charts.resize(PNG_WIDTH, chart_height(len(self.rows)))
        image = charts.grab()
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        buffer.close()
        charts.deleteLater()
        return bytes(data.data())
