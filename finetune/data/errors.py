"""The data layer's own errors: one line saying what went wrong, where (path:line) and how to fix it."""

from __future__ import annotations


class DataError(Exception):
    """An expected, user-fixable problem with a dataset source, its rows or the request.

    `str(err)` is a single actionable line. `path` and `line` locate the problem when it is in a file.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None, hint: str | None = None):
        self.message = message
        self.path = path
        self.line = line
        self.hint = hint
        super().__init__(self._render())

    def __reduce__(self):
        # Exception pickling keeps only args, losing path/line/hint; errors come back from worker processes pickled.
        return _rebuild, (type(self), self.message, self.__dict__)

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}:{self.line}: " if self.line is not None else f"{self.path}: "
        text = f"{where}{self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class SourceUnavailableError(DataError):
    """A hub dataset is neither in the local cache nor reachable (offline, no network, unknown id)."""


class InvalidRowsError(DataError):
    """Rows failed the chat-format checks under policy "error"; `bad_rows` lists the first ones."""

    def __init__(self, message: str, *, bad_rows: list | None = None, **kwargs):
        self.bad_rows = list(bad_rows or [])
        super().__init__(message, **kwargs)


def _rebuild(cls: type[DataError], message: str, fields: dict) -> DataError:
    err = cls.__new__(cls)
    err.__dict__.update(fields)
    Exception.__init__(err, err._render())
    return err
