"""The Models page: the models on this computer, adding one from disk (copied in, or used where it is), removing one,
and what each needs here ("On this computer": the forecast for each model).

The library's list (``LibraryModel``) is the window's, shared with every page that chooses a model; this page fills
it. The forecasts use this machine's memory speed, measured here when the machine is quiet, and the engine worker's
own size, measured when a worker starts. ``LibraryView`` is the page's layout; this is what it does.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox, QProgressDialog, QWidget

from app.errors import HearthError
from app.history import ModelRecord
from app.settings import Settings
from ui.library.library_view import LibraryView
from ui.qt.background import BackgroundOp
from ui.qt.cross_thread import guarded_emit
from ui.qt.qt_models import LibraryModel

if TYPE_CHECKING:
    from app.engine import protocol as p
    from app.forecast.model_check import Assessment
    from ui.qt.bridge import EngineBridge
    from ui.services import Services

BANDWIDTH_TRIES = 6  # waits for a quiet machine to measure memory speed, half a minute apart
BANDWIDTH_RETRY_MS = 30_000


class LibraryPage(QObject):
    """Made with the window, so that it paints at once; ``attach`` gives it the services once they are built."""

    modelsListed = Signal(list, object)  # the library's models, the id of the one to choose (or None)
    chatRequested = Signal(object)  # ModelRecord: "Chat with this model"
    failed = Signal(object)  # an error, for the window to show
    statusMessage = Signal(str, int)  # text, milliseconds: for the window's status bar
    settingsChanged = Signal()  # where models run was chosen
    memorySpeedMeasured = Signal()  # services.machine has this computer's memory speed (or it could not be read)

    services: Services

    def __init__(self, model: LibraryModel, settings: Settings, parent: QWidget) -> None:
        super().__init__(parent)
        self._window = parent
        self.model, self.settings = model, settings
        self._import_cancels: set[threading.Event] = set()
        self.worker_baseline = 0  # the engine's size in memory, for forecasts: known from attach on
        self._bandwidth_tries = 0
        self._measuring = False
        self._wanted_now = False  # someone waits for the memory speed (the welcome page's suggestions)
        self._closed = False
        self.local_models: list[ModelRecord] = []  # the library's, as last listed
        self.remote_models: list[ModelRecord] = []  # the models of the other computers, as last listed
        self.computers_dialog: QWidget | None = None  # Other computers…, the last one opened
        self._bandwidth_timer = QTimer(self)
        self._bandwidth_timer.setSingleShot(True)
        self._bandwidth_timer.timeout.connect(self.measure_bandwidth)
        self.view = LibraryView(model)

    def attach(self, services: Services, bridge: EngineBridge) -> None:
        from app.forecast.estimate import PROCESS_BASELINE

        self.services = services
        # The engine worker last measured here, replaced by this run's own once its worker has started.
        self.worker_baseline = services.machine.engine_baseline_bytes or PROCESS_BASELINE
        self.view.addRequested.connect(self.add_model)
        self.view.computersRequested.connect(self.edit_computers)
        self.view.chatRequested.connect(self.chatRequested)
        self.view.renameRequested.connect(self.rename_model)
        self.view.removeRequested.connect(self.remove_model)
        bridge.workerReady.connect(self._worker_ready)
        machine = services.machine
        if machine.usable_gpus and machine.offload_backends:
            self.view.offer_devices(machine.usable_gpus[0].name, self.settings.gpu_layers == 0)
            self.view.deviceChosen.connect(self.choose_device)

    def choose_device(self, processor_only: bool) -> None:
        """The card, as much as fits, or the processor alone, for every load from now on. Choosing the card again
        also forgets the models it could not take before, so that they are tried on it again."""
        if processor_only == (self.settings.gpu_layers == 0):
            return
        self.settings.gpu_layers = 0 if processor_only else None
        if not processor_only:
            self.settings.processor_only.clear()
        self.settingsChanged.emit()
        self.refresh_assessments()
        if self.services.engine.loaded is not None:
            self.statusMessage.emit("The loaded model keeps running where it is; the next load uses this choice.",
                                    8000)

    # --- the list and what each model needs ---

    def refresh_models(self, select_id: int | None = None, *, shown_id: int | None = None) -> None:
        """List the library again; ``select_id`` is the model to choose (for chatting), ``shown_id`` the one to keep
        showing here."""
        def show(models: list[ModelRecord]) -> None:
            self.local_models = models
            self._list(select_id, shown_id)
            self.refresh_assessments()

        BackgroundOp(self, self.services.library.models).success(show).failure(self.failed.emit).run()

    def refresh_remote(self, select_path: str | None = None) -> None:
        """Ask each computer the person added for its models (each may take a while, or not answer), then list
        them after the library's own; ``select_path``: the model to choose."""
        from app.remote.listing import Listing, list_remote_models

        def show(listing: Listing) -> None:
            self.remote_models = listing.models
            shown = self.view.selected()
            self._list(next((m.id for m in listing.models if m.path == select_path), None),
                        shown.id if shown else None)
            for problem in listing.problems:
                self.statusMessage.emit(problem, 12000)

        if not self.settings.remote_computers:
            if self.remote_models:
                self.remote_models = []
                self._list(None, None)
            return
        BackgroundOp(self, list_remote_models, self.services.computers).success(show) \
            .failure(self.failed.emit).run()

    def _list(self, select_id: int | None, shown_id: int | None) -> None:
        """This computer's models, then the other computers': in the table and everywhere models are chosen."""
        models = [*self.local_models, *self.remote_models]
        assessments = {m.id: a for m in self.local_models if (a := self.model.assessment(m.id)) is not None}
        self.model.set_items(models)
        self.model.set_assessments(assessments)
        if shown_id is not None:
            self.view.select(shown_id)
        self.modelsListed.emit(models, select_id)

    def edit_computers(self) -> None:
        from ui.library.computers_dialog import ComputersDialog

        dialog = ComputersDialog(self.services.computers, self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.changed.connect(lambda: self.settingsChanged.emit())
        dialog.changed.connect(self.refresh_remote)
        self.computers_dialog = dialog
        dialog.open()

    def model_added(self, record: ModelRecord) -> None:
        """A model landed in the library (added from disk, or downloaded): listed, and chosen unless one is
        loaded."""
        self.refresh_models(select_id=record.id if self.services.engine.loaded is None else None)

    def refresh_assessments(self) -> None:
        """The library's "On this computer" column: the analytic forecast for each model (no dry runs)."""
        models, machine, store = self.local_models, self.services.machine, self.services.store
        context = self.settings.generation.context_length

        baseline = self.worker_baseline

        def assess_all() -> dict[int, Assessment | str]:
            from app.forecast.model_check import assess

            records = store.load_records()
            results: dict[int, Assessment | str] = {}
            for model in models:
                try:
                    results[model.id] = assess(Path(model.path), machine, context_length=context,
                                               gpu_layers=self.settings.gpu_layers, records=records,
                                               baseline=baseline)
                except HearthError as error:
                    results[model.id] = str(error)
            return results

        BackgroundOp(self, assess_all).success(self.model.set_assessments).failure(self.failed.emit).run()

    def measure_bandwidth(self, *, now: bool = False) -> None:
        """Memory speed bounds generation speed. A reading is taken when the machine is quiet (other programs
        and Hearth's own engine idle), again after an update or when a generation outran it, and the best kept
        reading is used: one taken on a busy machine read a quarter of the quiet figure. While the machine stays
        busy it tries again later (a timer of this page, so it ends with the window); after a few tries a
        reading is taken anyway rather than none. ``now``: someone is waiting for a first figure (the welcome
        page, to suggest models that answer quickly), so a computer with none is measured at once, busy or not
        (a busy reading is taken again when the machine is quiet). ``memorySpeedMeasured`` says when it is done."""
        from app.engine.client import EngineState
        from app.hardware.memory_speed import bandwidth_wanted, measure_and_store_bandwidth, processor_busy

        if self._closed:  # the start's timer fired after the window closed: nobody is left to show it to
            return
        self._wanted_now = self._wanted_now or now
        if self._measuring:  # the reading under way answers this call too
            return
        machine, cache = self.services.machine, self.services.paths.cache_dir
        self._bandwidth_tries += 1
        force = (self._wanted_now or self._bandwidth_tries > BANDWIDTH_TRIES) and not machine.bandwidth_bytes_per_s
        generating = self.services.engine.state is EngineState.GENERATING

        def measure() -> float | None:
            if not bandwidth_wanted(cache, machine):
                return None
            if generating or (processor_busy() and not force):
                return -1.0
            return measure_and_store_bandwidth(cache, machine)

        def measured(value: float | None) -> None:
            self._measuring = False
            if value == -1.0:
                if self._wanted_now and not force:  # asked for while this unforced try ran
                    self.measure_bandwidth()
                elif self._bandwidth_tries <= BANDWIDTH_TRIES or self._wanted_now:
                    self._bandwidth_timer.start(BANDWIDTH_RETRY_MS)
                return
            if value and value != self.services.machine.bandwidth_bytes_per_s:
                self.services.machine = replace(self.services.machine, bandwidth_bytes_per_s=value)
                self.refresh_assessments()
            self._wanted_now = False
            self.memorySpeedMeasured.emit()

        def failed(error: BaseException) -> None:
            self._measuring, self._wanted_now = False, False
            self.failed.emit(error)
            self.memorySpeedMeasured.emit()

        self._measuring = True
        BackgroundOp(self, measure).success(measured).failure(failed).run()

    def _worker_ready(self, event: p.Ready) -> None:
        """A measured correction: forecasts use this machine's real engine size rather than a typical one."""
        if event.rss_bytes and event.rss_bytes != self.worker_baseline:
            self.worker_baseline = event.rss_bytes
            self.refresh_assessments()

    # --- adding and removing ---

    def add_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._window, "Add a model from disk", str(Path.home()),
                                              "GGUF models (*.gguf);;All files (*)")
        if not path:
            return
        box = QMessageBox(QMessageBox.Icon.Question, "Add a model", f"Add “{Path(path).name}” to your library?",
                          parent=self._window)
        box.setInformativeText("Copying it into Hearth's models folder keeps it working if you move or delete "
                               "the original. Using it where it is saves disk space.")
        copy_button = box.addButton("Copy into Hearth", QMessageBox.ButtonRole.AcceptRole)
        in_place_button = box.addButton("Use it where it is", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(copy_button if self.settings.copy_imported_models else in_place_button)
        box.exec()
        if box.clickedButton() not in (copy_button, in_place_button):
            return
        self.import_model(Path(path), copy=box.clickedButton() is copy_button)

    def import_model(self, path: Path, copy: bool) -> None:
        cancel = threading.Event()
        self._import_cancels.add(cancel)
        dialog = QProgressDialog(f"Adding {path.name}…", "Cancel", 0, 1000, self._window)
        dialog.setWindowTitle("Adding a model")
        dialog.setMinimumDuration(400)
        dialog.setAutoClose(False)
        dialog.canceled.connect(cancel.set)
        self._progress_relay = _ProgressRelay(dialog)

        def finish_dialog() -> None:
            self._import_cancels.discard(cancel)
            dialog.canceled.disconnect(cancel.set)  # closing a progress dialog emits canceled
            dialog.close()
            dialog.deleteLater()

        def done(record: ModelRecord) -> None:
            finish_dialog()
            self.statusMessage.emit(f"Added “{record.name}” to the library.", 6000)
            self.model_added(record)

        def failed(error: BaseException) -> None:
            finish_dialog()
            if isinstance(error, HearthError) and not cancel.is_set():
                QMessageBox.warning(self._window, "Could not add the model", str(error))
            elif not cancel.is_set():
                self.failed.emit(error)

        BackgroundOp(self, self.services.library.import_model, path, copy=copy, progress=self._progress_relay.report,
                     cancel=cancel).success(done).failure(failed).run()

    def rename_model(self, record: ModelRecord) -> None:
        """The name Hearth shows for the model everywhere, the chats and comparisons made with it included; an empty
        one gives back the name Hearth chose."""
        name, accepted = QInputDialog.getText(
            self._window, "Rename model", f"The name Hearth shows for this model (empty for “{record.default_name}”):",
            QLineEdit.EchoMode.Normal, record.name)
        if not accepted or name.strip() == record.name:
            return

        def renamed(saved: ModelRecord) -> None:
            self.statusMessage.emit(f"Renamed to “{saved.name}”. The file keeps its name.", 6000)
            self.refresh_models(shown_id=saved.id)

        def failed(error: BaseException) -> None:
            if isinstance(error, HearthError):
                QMessageBox.warning(self._window, "Could not rename the model", str(error))
            else:
                self.failed.emit(error)

        BackgroundOp(self, self.services.library.rename, record.id, name).success(renamed).failure(failed).run()

    def remove_model(self, record: ModelRecord) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, "Remove model", f"Remove “{record.name}” from the library?",
                          parent=self._window)
        remove = box.addButton("Remove from the library", QMessageBox.ButtonRole.AcceptRole)
        delete = None if record.in_place else box.addButton("Remove and delete the file",
                                                           QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        if not record.in_place:
            box.setInformativeText(f"Deleting the file frees {record.file_size / 1e9:.1f} GB and cannot be undone.")
        box.exec()
        clicked = box.clickedButton()
        if clicked not in (remove, delete):
            return
        engine = self.services.engine
        if engine.loaded is not None and Path(engine.loaded.path) == Path(record.path).resolve():
            engine.unload()
        BackgroundOp(self, self.services.library.remove, record.id, delete_file=clicked is delete) \
            .success(lambda _: self.refresh_models()).failure(self.failed.emit).run()

    def shutdown(self) -> None:
        """The window is closing: a half-copied model is removed (the import can be done again), and no
        memory speed is measured any more."""
        self._closed = True
        self._bandwidth_timer.stop()
        for cancel in self._import_cancels:
            cancel.set()


class _ProgressRelay:
    """Moves copy progress from the import thread to the dialog through a queued signal."""

    def __init__(self, dialog: QProgressDialog) -> None:
        class Relay(QObject):
            progressed = Signal(int)

        relay = Relay(dialog)
        relay.progressed.connect(dialog.setValue)
        self._progressed = guarded_emit(relay, relay.progressed.emit)

    def report(self, done: int, total: int) -> None:
        self._progressed(int(done * 1000 / max(total, 1)))
