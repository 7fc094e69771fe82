"""The models a comparison may run: the library as a list to tick, each with its size and what the forecast says
of it on this computer. The order of the ticks is the order of the comparison's columns."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from app.compare.spec import MAX_MODELS, MIN_MODELS
from app.forecast.model_check import Assessment
from app.history import ModelRecord
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
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
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
        rows = max(min(len(models), 5), 1)
        self.setFixedHeight(rows * self.row_height() + 6)
        self.setVisible(bool(models))

    def row_height(self) -> int:
        return self.fontMetrics().lineSpacing() * 2 + 12

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
            details = [format_bytes(model.file_size)]
            if model.quantization:
                details.append(model.quantization)
            tip = model.path
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
