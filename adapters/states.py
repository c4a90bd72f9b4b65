"""Simulated states (PROTOCOL part 6): the switch answers for states with no real terminal.

Every control terminal of the directory marked ``simulated`` (every US state
and DC without a configured control terminal) answers ``DQ``->``DR``,
``KQ``->``KR``, ``RQ``->``RR``, ``IQ``->``IR``, ``FQ``->``FR``,
``AQ``->``AR``, ``SOQ``->``SOR`` (sex offender registry) and ``DNQ``->``DNR``
(a name-only driver search) from :mod:`nlets_switch.services.statedata`,
addressed to the inquirer and echoing its control field.

Configuration ``services.states`` (:class:`StatesSettings`):

* ``simulate``: ``all`` (default), ``none``, or a list of state codes (a
  subset of the simulated ones);
* ``latency_ms``: wait this long before answering (default 0);
* ``no_answer``: the share of inquiries left unanswered, 0.0 to 1.0
  (default 0). The draw is deterministic: a hash of the seed, the
  answering ORI, the key and the text, so the same inquiry to the same state
  always does the same thing and an integrator can reproduce a time-out;
* ``seed``: the data set's seed (default 1).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from nlets_switch.config.model import Between, fail, problems_of
from nlets_switch.core.directory import Directory
from nlets_switch.core.foreign import BY_ORI
from nlets_switch.services.adapter import API_VERSION, Context, Inquiry, NotTaken
from nlets_switch.services.foreign_data import answers, foreign_answer
from nlets_switch.services.settings import AdapterSettings
from nlets_switch.services.statedata import INQUIRY_KEYS, STATES, StateData, response_key


def _simulate(value: Any) -> Any:
    if isinstance(value, list | tuple):
        bad = [((i,), f"not a US state or DC code: {s!r}")
               for i, s in enumerate(value) if s not in STATES]
        if bad:
            fail(*bad)
        return tuple(value)
    if value not in ("all", "none"):
        raise ValueError(f"expected all, none or a list of state codes, got {value!r}")
    return value


class StatesSettings(AdapterSettings):
    """``services.states``: the simulated states (docs/simulated-states.md)."""

    simulate: Annotated[Literal["all", "none"] | tuple[str, ...],
                        BeforeValidator(_simulate)] = Field(
        "all", description="which simulated states answer (a subset of the simulated ones)",
        json_schema_extra={"allowed": "all, none, or a list of state codes"})
    latency_ms: Annotated[float, Between(
        0, 600_000, message="expected a number from 0 to 600000, got {got}")] = Field(
        0.0, description="milliseconds before answering")
    no_answer: Annotated[float, Between(
        0, 1, message="expected a share from 0.0 to 1.0, got {got}")] = Field(
        0.0, description="share of inquiries left unanswered (a deterministic draw)")
    seed: Annotated[int, Between(whole=True)] = Field(
        1, description="seed of the data set and of the no_answer draw")


class StatesAdapter:
    """Answers the state inquiries as every simulated control terminal."""

    API_VERSION = API_VERSION
    name = "states"
    version = "1.0"
    keys = INQUIRY_KEYS
    schema_dirs: tuple[Path, ...] = ()
    settings_model = StatesSettings

    def __init__(self) -> None:
        self.settings = StatesSettings()
        self._later: set[asyncio.Task[None]] = set()

    def check_config(self, section: Mapping[str, Any]) -> list[str]:
        """Problems of ``services.states`` (paths relative to the section)."""
        return problems_of(StatesSettings, section)

    def oris(self, directory: Directory, section: Mapping[str, Any]) -> tuple[str, ...]:
        """The simulated control terminals, narrowed by ``simulate``, and, with
        ``simulate: all``, the simulated Canada, INTERPOL and Mexico."""
        sim = StatesSettings.model_validate(section).simulate
        if sim == "none":
            return ()
        wanted = set(sim) if isinstance(sim, tuple) else None
        out = [] if wanted is not None else [
            ori for ori in BY_ORI if (e := directory.entry(ori)) is not None and e.simulated]
        for state in directory.states():
            ct = directory.control_terminal(state)
            if ct is None or not ct.simulated or state not in STATES:
                continue
            if wanted is None or state in wanted:
                out.append(ct.ori)
        return tuple(out)

    async def start(self, ctx: Context) -> None:
        """Read the settings; a state's data is built on its first inquiry."""
        self.settings = ctx.settings_as(StatesSettings)

    def silent(self, inquiry: Inquiry) -> bool:
        """Whether this inquiry goes unanswered (deterministic ``no_answer`` draw)."""
        if self.settings.no_answer <= 0:
            return False
        draw = random.Random(
            f"{self.settings.seed}|{inquiry.receiver}|{inquiry.key}|{inquiry.text}").random()
        return draw < self.settings.no_answer

    async def handle(self, ctx: Context, inquiry: Inquiry) -> None:
        """Answer from the state's synthetic files, as the ORI it was sent to."""
        state = inquiry.receiver[:2]
        foreign = BY_ORI.get(inquiry.receiver)
        if foreign is not None and not answers(foreign.code, inquiry.key):
            raise NotTaken(f"{foreign.code} does not answer {inquiry.key}")
        if foreign is None and state not in STATES:
            raise NotTaken(f"no simulated data for {state}")
        if self.silent(inquiry):
            return  # the configured share of inquiries left unanswered (no_answer)
        if self.settings.latency_ms:
            # Like a real state: the inquiry is taken at once (its delivery slot
            # freed), the answer comes later.
            task = asyncio.get_running_loop().create_task(self._answer_later(ctx, inquiry))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
            return
        await self._answer(ctx, inquiry)

    async def _answer_later(self, ctx: Context, inquiry: Inquiry) -> None:
        await asyncio.sleep(self.settings.latency_ms / 1000.0)
        try:
            await self._answer(ctx, inquiry)
        except ConnectionError:
            pass  # the switch is stopping

    async def _answer(self, ctx: Context, inquiry: Inquiry) -> None:
        foreign = BY_ORI.get(inquiry.receiver)
        if foreign is not None:
            text = foreign_answer(foreign.code, inquiry.key, inquiry.fields)
            await ctx.answer(inquiry.reply(response_key(inquiry.key), text))
            return
        state = inquiry.receiver[:2]
        # Building a state's files takes ~40 ms the first time (then cached):
        # off the event loop.
        data = await asyncio.to_thread(StateData.for_state, state, self.settings.seed)
        text = data.answer(inquiry.key, inquiry.fields)
        await ctx.answer(inquiry.reply(response_key(inquiry.key), text))

    async def stop(self) -> None:
        """Drop answers still waiting out their latency (the data stays cached)."""
        for task in list(self._later):
            task.cancel()
        await asyncio.gather(*self._later, return_exceptions=True)
