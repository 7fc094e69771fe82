"""The models a comparison may run: the library as a list to tick, each with its size and what the forecast says
of it on this computer. The order of the ticks is the order of the comparison's columns."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QStyle

from app.compare.spec import MAX_MODELS, MIN_MODELS
from app.forecast.model_check import Assessment
from app.gguf.kind import BASE_MODEL_WARNING
from app.history import ModelRecord
from app.remote.listing import computer_of
from app.words import format_bytes
from ui.qt.qt_models import verdict_label

ModelId = int


class ModelChoice(QListWidget):
    ticked = Signal()  # the person ticked or unticked a model

    def __init__(self) -> None:
        super().__init__()
        self.chosen: list[ModelId] = []  # in the order they were ticked: the columns' order
        self.setObjectName("modelChoice")
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrap(True)  # a long name takes another line rather than losing its middle
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setToolTip(f"Tick {MIN_MODELS} to {MAX_MODELS} models; the columns follow the order you tick them in")
        self.itemChanged.connect(self._item_changed)

    def set_models(self, models: list[ModelRecord]) -> None:
        """The library, listed again, keeping the ticks of the models still there."""
        ids = {model.id for model in models}
        self.chosen = [model_id for model_id in self.chosen if model_id in ids]
        self.blockSignals(True)
        self.clear()
        for model in models:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, model)
            item.setCheckState(Qt.CheckState.Checked if model.id in self.chosen else Qt.CheckState.Unchecked)
            self.addItem(item)
        self.blockSignals(False)
        self._fit_height()
        self.setVisible(bool(models))

    def row_height(self) -> int:
        return self.fontMetrics().lineSpacing() * 2 + 12

    def _fit_height(self) -> None:
        """Each row as tall as its text wrapped at the list's width now (a list view does not work that out for a
        wrapped item), and the list tall enough for five of them; more scroll."""
        room = self.viewport().width() - self.style().pixelMetric(QStyle.PixelMetric.PM_IndicatorWidth) - 16
        metrics = self.fontMetrics()
        self.blockSignals(True)  # a size is not a tick
        for row in range(self.count()):
            item = self.item(row)
            text = metrics.boundingRect(QRect(0, 0, max(room, 40), 10_000), Qt.TextFlag.TextWordWrap, item.text())
            item.setSizeHint(QSize(max(room, 40), max(text.height() + 12, self.row_height())))
        self.blockSignals(False)
        rows = sum(self.sizeHintForRow(row) for row in range(min(self.count(), 5)))
        self.setFixedHeight(max(rows, self.row_height()) + 2 * self.frameWidth() + 2)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_height()

    def describe(self, assessment_of: Callable[[ModelId], Assessment | str | None]) -> None:
        """Each model's size and what the forecast says of it on this computer; no more ticks once full."""
        full = len(self.chosen) >= MAX_MODELS
        self.blockSignals(True)
        for row in range(self.count()):
            item = self.item(row)
            model = item.data(Qt.ItemDataRole.UserRole)
            if not isinstance(model, ModelRecord):
                continue
            assessment = assessment_of(model.id)
            computer = computer_of(model)
            details = [f"on {computer}"] if computer else [format_bytes(model.file_size)]
            if model.is_base_model:
                details.append("base model")
            tip = "\n".join([model.name, f"Runs on {computer}" if computer else model.path,
                             *([BASE_MODEL_WARNING] if model.is_base_model else [])])
            if isinstance(assessment, Assessment):
                result = assessment.forecast
                details.append(f"{verdict_label(result.verdict)} in {format_bytes(result.memory.ram_bytes)}")
                tip += f"\n{result.verdict.value}. {result.reason}"
            elif isinstance(assessment, str):
                details.append("Cannot read")
                tip += f"\n{assessment}"
            item.setText(f"{model.name}\n{' · '.join(details)}")
            item.setToolTip(tip)
            ticked = model.id in self.chosen
            flags = Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsSelectable
            if ticked or not full:
                flags |= Qt.ItemFlag.ItemIsEnabled
            else:
                item.setToolTip(f"At most {MAX_MODELS} models at a time: untick one first.\n{tip}")
            item.setFlags(flags)
        self.blockSignals(False)
        self._fit_height()

    def set_chosen(self, model_ids: list[ModelId]) -> None:
        """Tick these models (in this order), and only these."""
        present = {model.id for model in self.models()}
        self.chosen = [model_id for model_id in model_ids if model_id in present][:MAX_MODELS]
        self.blockSignals(True)
        for row in range(self.count()):
            item = self.item(row)
            model = item.data(Qt.ItemDataRole.UserRole)
            ticked = isinstance(model, ModelRecord) and model.id in self.chosen
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
        self.blockSignals(False)

    def models(self) -> list[ModelRecord]:
        return [model for row in range(self.count())
                if isinstance(model := self.item(row).data(Qt.ItemDataRole.UserRole), ModelRecord)]

    def _item_changed(self, item: QListWidgetItem) -> None:
        model = item.data(Qt.ItemDataRole.UserRole)
        if not isinstance(model, ModelRecord):
            return
        ticked = item.checkState() == Qt.CheckState.Checked
        if ticked and model.id not in self.chosen:
            self.chosen.append(model.id)
        elif not ticked and model.id in self.chosen:
            self.chosen.remove(model.id)
        self.ticked.emit()
