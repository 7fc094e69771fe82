"""The local server in the window: ``hearth serve``'s server on the window's own engine, so that the window and the
programs it serves share one model and one memory budget. Requests wait while a chat or a task uses the engine; a
chat message sent while a request is answered waits its turn in the chat (``ChatPage.hold_for``).

uvicorn runs on a thread of its own (its own event loop); what it reports comes back to the GUI thread by signals.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import HearthError
from app.server.request_log import Served, requests_log
from app.settings import Settings
from ui.qt.background import BackgroundOp
from ui.qt.cross_thread import guarded_emit
from ui.server.server_dialog import ServerDialog

if TYPE_CHECKING:
    from ui.services import Services

log = logging.getLogger(__name__)

WATCH_MS = 100  # how often a starting server is looked at


class _Relay(logging.Handler):
    """The server thread's request records: kept in the network log (the Privacy page lists them as incoming),
    there on the server's thread, and handed to the GUI thread for the panel's list."""

    def __init__(self, emit: Any) -> None:
        super().__init__(logging.INFO)
        self._emit = emit
        self.keep: Any = None  # HistoryStore.add_network_request, once the services are there

    def emit(self, record: logging.LogRecord) -> None:
        served = getattr(record, "served", None)
        if not isinstance(served, Served):
            return
        if self.keep is not None:
            from datetime import UTC, datetime

            from app.network import Outcome, RequestRecord

            try:
                self.keep(RequestRecord(at=datetime.now(UTC), method="POST", host=served.client,
                                        path=served.endpoint, purpose=served.model, status=served.status,
                                        bytes=0, outcome=Outcome.ANSWERED if served.status < 400 else Outcome.REFUSED,
                                        incoming=True))
            except Exception:
                log.exception("could not keep a served request in the network log")
        self._emit(served)


class ServerPage(QObject):
    failed = Signal(object)  # an error, for the window to show
    statusMessage = Signal(str, int)
    settingsChanged = Signal()  # the port, or whether other computers may use it
    served = Signal(object)  # a request answered (Served); from the server's thread
    turnChanged = Signal(bool)  # a request holds the engine (True) or gave it back; from the server's thread
    runningChanged = Signal(bool)
    conversationKept = Signal(int)  # an answer was kept as this conversation (Keep API conversations in history)

    services: Services

    def __init__(self, settings: Settings, parent: QWidget) -> None:
        super().__init__(parent)
        self._window = parent
        self.settings = settings
        self.dialog: ServerDialog | None = None
        self.holding = False  # a request holds the engine
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._served_engine: Any = None
        self._relay = _Relay(guarded_emit(self, self.served.emit))
        self._watch = QTimer(self)
        self._watch.setInterval(WATCH_MS)
        self._watch.timeout.connect(self._check_start)
        self.served.connect(self._add_request)
        self.turnChanged.connect(self._turn_changed)

    def attach(self, services: Services) -> None:
        self.services = services
        self._relay.keep = services.store.add_network_request

    @property
    def running(self) -> bool:
        return self._server is not None and bool(self._server.started)

    def address(self) -> str:
        host = "127.0.0.1"
        if self.settings.server_network:
            import socket

            host = socket.gethostname()
        return f"http://{host}:{self.settings.server_port}/v1"

    def show_dialog(self) -> None:
        if self.dialog is None:
            self.dialog = ServerDialog(self._window)
            self.dialog.port.setValue(self.settings.server_port)
            self.dialog.set_network(self.settings.server_network)
            self.dialog.keep.setChecked(self.settings.server_keep_history)
            self.dialog.switched.connect(self.switch)
            self.dialog.networkChosen.connect(self.choose_network)
            self.dialog.keepChosen.connect(self.choose_keep)
            self.dialog.port.valueChanged.connect(self._port_chosen)
            self._show_state()
        self.dialog.show()
        self.dialog.raise_()

    def switch(self, on: bool) -> None:
        if on:
            self.start()
        else:
            self.stop()

    def choose_network(self, allowed: bool) -> None:
        self.settings.server_network = allowed
        self.settingsChanged.emit()
        if self.dialog is not None:
            self.dialog.set_network(allowed)
        self._show_state()

    def choose_keep(self, keep: bool) -> None:
        """From the next answer on, also while the server runs."""
        self.settings.server_keep_history = keep
        self.settingsChanged.emit()

    def _port_chosen(self, port: int) -> None:
        self.settings.server_port = port
        self.settingsChanged.emit()
        self._show_state()

    # --- starting and stopping ---

    def start(self) -> None:
        from app.cli.serve import checked_plan
        from app.engine.client import EngineState
        from app.forecast.model_check import assess
        from app.hardware.detect import with_memory_now
        from app.server.hearth_api import HearthFacts
        from app.server.options import ServerOptions
        from app.server.served_engine import ServedEngine
        from app.server.served_history import history_keeper
        from app.server.serving import build_app, uvicorn_server

        if self._server is not None:
            return
        services = self.services
        key = None
        if self.settings.server_network:
            try:
                key = self._network_key()
            except HearthError as error:
                self.failed.emit(error)
                self._show_state()
                return
            if key is None:  # the person closed the key's window without keeping it
                self._show_state()
                return
        loading = EngineState.LOADING
        options = ServerOptions(host="0.0.0.0" if self.settings.server_network else "127.0.0.1",
                                port=self.settings.server_port, api_key=key)
        self._served_engine = ServedEngine(
            services.engine, services.library.models,
            lambda record: checked_plan(assess, record, services.machine, services.settings, services.store),
            max_waiting=options.max_waiting, idle_unload_s=0,  # the window decides what stays loaded
            others_busy=lambda: services.runner.busy or services.tasks.busy or services.engine.state is loading,
            turns=guarded_emit(self, self.turnChanged.emit),
            keep=history_keeper(services.store, lambda: self.settings.server_keep_history,
                                kept=guarded_emit(self, self.conversationKept.emit)))
        served = self._served_engine
        services.tasks.engine_taken = lambda: served.busy  # a task run waits for the request's answer
        facts = HearthFacts(lambda: with_memory_now(services.machine), services.settings, services.store)
        self._server = uvicorn_server(options, build_app(options, self._served_engine, facts))
        requests_log.addHandler(self._relay)
        requests_log.setLevel(logging.INFO)
        self._thread = threading.Thread(target=self._server.run, name="local server", daemon=True)
        self._thread.start()
        self._watch.start()
        self._show_state("Starting…")

    def _check_start(self) -> None:
        if self._server is None:
            self._watch.stop()
            return
        if self._server.started:
            self._watch.stop()
            self.runningChanged.emit(True)
            self.statusMessage.emit(f"The local server answers at {self.address()}", 6000)
            self._show_state()
        elif self._thread is not None and not self._thread.is_alive():  # uvicorn could not listen
            self._watch.stop()
            port = self.settings.server_port
            self._forget()
            self.failed.emit(HearthError(f"The local server could not start: port {port} is in use by another "
                                         "program, or not allowed. Choose another port."))
            self._show_state()

    def stop(self) -> None:
        """Ends the server off the GUI thread: uvicorn finishes the requests in flight first."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        self._show_state("Stopping…")

        def wait() -> None:
            thread.join(30)

        def stopped(_result: object) -> None:
            self._forget()
            self.runningChanged.emit(False)
            self._show_state()

        BackgroundOp(self, wait).success(stopped).failure(lambda _error: stopped(None)).run()

    def shutdown(self) -> None:
        """The window closes: the server stops with it (its requests end with the engine)."""
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(10)
            self._forget()

    def _forget(self) -> None:
        requests_log.removeHandler(self._relay)
        self.services.tasks.engine_taken = lambda: False
        self._server = self._thread = self._served_engine = None
        if self.holding:
            self._turn_changed(False)

    def _network_key(self) -> str | None:
        from app.server.api_key import new_key, stored_key

        key = stored_key()
        if key is not None:
            return key
        key = new_key()
        return key if self._show_key(key) else None

    def _show_key(self, key: str) -> bool:
        """The new key, shown this once with a Copy button: it is not shown again (make a new one to replace it)."""
        box = QDialog(self._window)
        box.setWindowTitle("The local server's API key")
        layout = QVBoxLayout(box)
        text = QLabel("Other computers must send this key with every request (as “Authorization: Bearer KEY”). "
                      "Hearth keeps it in the system's password store and does not show it again.")
        text.setWordWrap(True)
        layout.addWidget(text)
        field = QLineEdit(key)
        field.setReadOnly(True)
        field.setAccessibleName("API key")
        field.setMinimumWidth(field.fontMetrics().horizontalAdvance(key) + 24)  # the whole key, to check by eye
        layout.addWidget(field)
        copy = QPushButton("Copy the key")
        copy.clicked.connect(lambda: QApplication.clipboard().setText(key))
        layout.addWidget(copy)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(box.accept)
        buttons.rejected.connect(box.reject)
        layout.addWidget(buttons)
        return box.exec() == QDialog.DialogCode.Accepted

    # --- what it does ---

    def _turn_changed(self, holding: bool) -> None:
        self.holding = holding
        self._show_state()

    def _add_request(self, served: Served) -> None:
        if self.dialog is not None:
            self.dialog.add_request(served)

    def _show_state(self, text: str | None = None) -> None:
        if self.dialog is None:
            return
        on = self._server is not None
        if text is None:
            if not self.running:
                text = "Off."
            else:
                loaded = self.services.engine.loaded
                model = f" The engine has “{Path(loaded.path).name}” loaded." if loaded else ""
                text = ("Answering a request." if self.holding else "On: waiting for requests.") + model
        self.dialog.show_state(text, on=on, address=self.address())
