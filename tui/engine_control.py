"""The console's own engine: pause, quit without stranding jobs, watch-only.

A mixin of ``JobtuiApp`` (kept apart so the app module stays small). The rules:
a quit with jobs running here asks first; a quit while they are being finished
asks whether to hand them back now and says what will happen; whatever ends the
console, and a closed terminal (SIGHUP), hands the running jobs back at once
(``Engine.hand_back_now``; ``run_console`` ends with ``Engine.stop(grace=0)``).
While the quit question is open, the engine here claims nothing (running jobs go on):
the question is about the jobs running when it was asked, so none may start behind it.
That hold is not the operator's pause (key ``p``): the status line keeps showing the
operator's choice, and "Don't quit" puts back exactly what was there before.
A watch-only console has no engine; ``W`` starts or stops one after a confirmation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from jobtui.engine.api import LocalEngine, OperatorAPI
from jobtui.engine.config import Settings
from jobtui.tui.screens.dialogs import ConfirmScreen, QuitScreen

if TYPE_CHECKING:
    from textual.app import App

    from jobtui.tui.screens.main import MainScreen

    _Base = App[int]
else:
    _Base = object


class EngineControl(_Base):
    engine: LocalEngine | None
    engine_stopped: bool  # the engine here is stopping or stopped: it claims nothing
    engine_factory: Callable[[], LocalEngine] | None
    finishing_until: float | None  # monotonic deadline of a "finish them" quit
    # The quit question paused the engine (it was not paused before): not the operator's
    # pause, and undone when the operator does not quit.
    quit_hold: bool
    settings: Settings
    api: OperatorAPI

    if TYPE_CHECKING:

        def request_refresh(self) -> None: ...

        @property
        def main(self) -> MainScreen: ...

    # -- pause and quit ---------------------------------------------------------------

    def toggle_pause(self) -> None:
        if self.engine is None or self.engine_stopped or self.quit_hold:
            return
        if self.engine.paused:
            self.engine.resume()
            self.notify("Claiming resumed")
        else:
            self.engine.pause()
            self.notify("Claiming paused: running jobs go on, no new ones start here")
        self.request_refresh()

    async def action_quit(self) -> None:
        """ctrl+q and the palette's Quit ask like ``q`` does when jobs run here."""
        self.request_quit()

    @property
    def live_engine(self) -> LocalEngine | None:
        """The engine of this process while it may still claim or run jobs."""
        return self.engine if self.engine is not None and not self.engine_stopped else None

    @property
    def paused_by_operator(self) -> bool:
        """Claiming is paused here by the operator (key ``p``), not by the quit question."""
        engine = self.live_engine
        return engine is not None and engine.paused and not self.quit_hold

    def _hold_claiming(self) -> None:
        """No new job starts here while the quit question is open (running ones go on);
        an engine the operator paused is left as it is."""
        engine = self.live_engine
        if engine is not None and not engine.paused:
            engine.pause()
            self.quit_hold = True

    def _release_hold(self) -> None:
        """The operator did not quit: claiming goes on as before the question."""
        if self.quit_hold:
            self.quit_hold = False
            engine = self.live_engine
            if engine is not None:
                engine.resume()
            self.request_refresh()

    def request_quit(self) -> None:
        """Quit; with jobs running here, ask first (claiming held meanwhile). A quit while
        running jobs are being finished asks whether to stop waiting and hand them back now."""
        if self.finishing_until is not None:
            self._ask_hand_back_now()
            return
        if isinstance(self.screen, QuitScreen):
            return  # the question is open already (ctrl+q on it)
        engine = self.live_engine
        if engine is None or not engine.running:
            self.exit(0)  # the caller (run_console) stops the engine: nothing runs here
            return
        running = len(engine.running)
        self._hold_claiming()

        def chosen(choice: str | None) -> None:
            # The hold stays for finish and hand back: the engine stops claiming for good.
            if choice == "finish" and not engine.running:
                self.exit(0)  # they all ended while the question was open ("Quit")
            elif choice == "finish":
                grace = self.settings.shutdown_grace
                self.finishing_until = time.monotonic() + grace
                left = len(engine.running)
                self.notify(
                    f"Finishing {left} job(s) (up to {grace:.0f}s); "
                    "quit again to hand them back now",
                    timeout=min(grace, 10),
                )
                self.request_refresh()
                self.run_worker(self.stop_engine_and_exit(grace), group="quit")
            elif choice == "handback":
                self.hand_back_and_exit()
            else:
                self._release_hold()

        self.push_screen(QuitScreen(running, self.settings.shutdown_grace), chosen)

    def _ask_hand_back_now(self) -> None:
        if isinstance(self.screen, ConfirmScreen):
            return  # the question is open already
        engine = self.engine
        running = len(engine.running) if engine is not None else 0
        left = max(0.0, (self.finishing_until or 0.0) - time.monotonic())

        def answered(yes: bool | None) -> None:
            if yes:
                self.hand_back_and_exit()

        self.push_screen(
            ConfirmScreen(
                f"Still finishing {running} job(s), up to {left:.0f}s more. Quit now?",
                yes="Hand back and quit",
                no="Keep finishing",
                explain="Quitting now hands them back at once: they go back to the queue "
                "(pending, this attempt not counted) and start again from the beginning on "
                "any worker. Their work so far is lost; nothing is left running.",
            ),
            answered,
        )

    def hand_back_and_exit(self) -> None:
        """Hand every job running here back to the queue now (pending, attempt
        refunded), then exit. Also what a closed terminal (SIGHUP) or SIGTERM does."""
        if self.engine is not None:
            self.engine.hand_back_now()  # at once, before anything else can go wrong
        if self._exit:
            return  # exiting already; run_console's stop(0) waits for the hand back
        self.run_worker(self.stop_engine_and_exit(0), group="quit")

    async def stop_engine_and_exit(self, grace: float) -> None:
        # Engine.stop runs in its own task: if this worker is cancelled (the app exits
        # some other way meanwhile), the stop goes on, and run_console's own stop(0)
        # cuts its wait short and hands the jobs back.
        if self.engine is not None:
            self.engine_stopped = True
            await self.engine.stop(grace=grace)
        self.exit(0)

    # -- watch-only: claiming on and off -------------------------------------------------

    @property
    def can_switch_claiming(self) -> bool:
        return self.finishing_until is None and (
            self.live_engine is not None or self.engine_factory is not None
        )

    def ask_switch_claiming(self) -> None:
        """Start or stop claiming in this console, after a confirmation that says what
        will happen (the jobs running here go back to the queue when it stops)."""
        if not self.can_switch_claiming:
            return
        engine = self.live_engine
        if engine is None:
            question = "Start claiming jobs in this console?"
            explain = (
                f"This machine then runs up to {self.settings.concurrency} job(s) at once "
                f"of: {', '.join(self.api.registry.names()) or 'no registered type'}."
            )
            yes = "Start claiming"
        else:
            running = len(engine.running)
            question = "Stop claiming: watch only?"
            explain = (
                f"The {running} job(s) running here go back to the queue now (pending, the "
                "attempt not counted) for other workers."
                if running
                else "No job runs here now; this console then only watches."
            )
            yes = "Watch only"

        async def answered(sure: bool | None) -> None:
            if sure:
                await self.switch_claiming()

        self.push_screen(
            ConfirmScreen(question, yes=yes, no="Keep as is", explain=explain), answered
        )

    async def switch_claiming(self) -> None:
        engine = self.live_engine
        if engine is not None:
            self.engine_stopped = True
            await engine.stop(grace=0)
            self.engine = None
            self.engine_stopped = False
            self.notify("Watch only: this console claims nothing")
        elif self.engine_factory is not None:
            engine = self.engine_factory()
            await engine.start()
            self.engine = engine
            self.engine_stopped = False
            # The same API either way: an engine listens on the store, so enqueues wake it.
            self.notify("Claiming: this console runs jobs")
        self.request_refresh()
        with contextlib.suppress(Exception):
            self.main.update_keys()
