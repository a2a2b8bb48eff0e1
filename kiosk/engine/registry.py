"""Implementations of a stage chosen by name from the config, not by ``if`` ladders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from kiosk.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, what: str) -> None:
        self._what = what
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return decorate

    def create(self, name: str, *args: object, **kwargs: object) -> T:
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(sorted(self._factories))
            raise ConfigError(f"unknown {self._what} backend {name!r} (expected one of {known})") from None
        return factory(*args, **kwargs)

    @property
    def names(self) -> list[str]:
        return sorted(self._factories)
