"""Stand-in for the Azure SDK test-proxy helpers the SDK's e2e tests import (``devtools_testutils``).

The tests run live against the in-process Azure ML emulator, so there is no proxy, no recording and nothing to
sanitize: ``is_live()`` is true and the recording hooks do nothing.
"""

from __future__ import annotations


def is_live() -> bool:
    return True


def is_live_and_not_recording() -> bool:
    return True


class AzureRecordedTestCase:
    @property
    def is_live(self) -> bool:
        return True


def _no_op(*args: object, **kwargs: object) -> None:
    return None


add_general_regex_sanitizer = add_general_string_sanitizer = add_body_key_sanitizer = _no_op
add_remove_header_sanitizer = set_bodiless_matcher = set_custom_default_matcher = remove_batch_sanitizers = _no_op
