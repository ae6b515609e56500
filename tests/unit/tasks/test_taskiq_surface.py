"""The taskiq / taskiq-redis surface Keel's broker stands on, pinned so an upgrade fails here.

``keel.tasks.broker`` subclasses taskiq's public ``AsyncBroker`` and implements streams, acks,
reclaim and reconnect itself; from taskiq-redis it uses only ``RedisAsyncResultBackend``'s
constructor, public attributes and public ``set_result``/``get_result``. ``keel worker``
builds taskiq's ``WorkerArgs`` directly. A new major or minor version must be read against
those before the pins in pyproject.toml move.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from importlib.metadata import version

from taskiq import AckableMessage, AsyncBroker, Context
from taskiq.cli.worker.args import WorkerArgs
from taskiq_redis import RedisAsyncResultBackend
from tests.support import REPO

from keel.tasks.broker import KeelStreamBroker


def _pinned(package: str) -> str:
    text = (REPO / "pyproject.toml").read_text()
    match = re.search(rf'"{re.escape(package)}(>=[^"]+)"', text)
    assert match, f"{package} is not pinned in pyproject.toml"
    return match.group(1)


def test_the_versions_relied_on_are_the_ones_installed_and_pinned() -> None:
    assert _pinned("taskiq") == ">=0.13,<0.14"
    assert _pinned("taskiq-redis") == ">=1.2,<2"
    assert re.fullmatch(r"0\.13\.\d+", version("taskiq")), version("taskiq")
    assert re.fullmatch(r"1\.\d+\.\d+", version("taskiq-redis")), version("taskiq-redis")


def test_async_broker_asks_only_for_kick_and_listen() -> None:
    assert AsyncBroker.__abstractmethods__ == frozenset({"kick", "listen"})
    assert not KeelStreamBroker.__abstractmethods__
    for name in ("startup", "shutdown", "with_result_backend", "add_event_handler"):
        assert callable(getattr(AsyncBroker, name)), name
    assert {"data", "ack"} <= set(AckableMessage.model_fields)
    assert "is_ackable" in dir(Context)


def test_the_broker_overrides_no_underscore_method_of_a_library_class() -> None:
    own = {name for name, value in vars(KeelStreamBroker).items() if callable(value)}
    inherited = {
        name
        for base in KeelStreamBroker.__mro__[1:]
        if base.__module__.startswith(("taskiq", "taskiq_redis"))
        for name in vars(base)
    }
    private_overrides = {n for n in own & inherited if n.startswith("_") and not n.startswith("__")}
    assert not private_overrides, private_overrides


def test_result_backend_constructor_and_attributes_keel_uses() -> None:
    parameters = inspect.signature(RedisAsyncResultBackend.__init__).parameters
    assert {"redis_url", "result_ex_time", "prefix_str", "connection_kwargs"} <= set(parameters)
    backend = RedisAsyncResultBackend("redis://127.0.0.1:1/0", result_ex_time=5, prefix_str="p")
    assert backend.result_ex_time == 5
    assert backend.redis_pool is not None
    assert callable(backend.serializer.dumpb)


def test_worker_args_has_every_field_keel_worker_sets() -> None:
    names = {f.name for f in dataclasses.fields(WorkerArgs)}
    assert {
        "broker",
        "modules",
        "workers",
        "max_async_tasks",
        "wait_tasks_timeout",
        "shutdown_timeout",
        "configure_logging",
        "max_prefetch",
    } <= names
