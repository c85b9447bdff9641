"""Where this copy of finetune was installed from, as a requirement another machine (a CI runner) can pip-install.

pip records a direct install (a git URL, an archive URL, a local folder) in the distribution's `direct_url.json`
(PEP 610); an install from a package index leaves none. The project named `finetune` on the public PyPI is another
package, so a bare `finetune==X` is only offered when this copy itself came from an index.
"""

from __future__ import annotations

import json
from importlib import metadata

from finetune import __version__
from finetune.errors import FinetuneError

NEEDS_PIP_HINT = ("pass --pip with what the runner should install, e.g. --pip 'finetune @ git+https://github.com/"
                  "<org>/finetune@v{version}' or a version on your own package index (the PyPI project named "
                  "`finetune` is a different package)")


def requirement_from(direct_url: dict | None, version: str = __version__) -> str:
    """The pip requirement that installs the same finetune, from its PEP 610 record (None: from an index)."""
    if direct_url is None:
        return f"finetune=={version}"
    url = str(direct_url.get("url", ""))
    vcs = direct_url.get("vcs_info")
    if vcs and not url.startswith("file:"):
        ref = vcs.get("commit_id") or vcs.get("requested_revision")
        return f"finetune @ {vcs.get('vcs', 'git')}+{url}" + (f"@{ref}" if ref else "")
    if "archive_info" in direct_url and not url.startswith("file:"):
        return f"finetune @ {url}"
    where = "an editable checkout" if (direct_url.get("dir_info") or {}).get("editable") else "a local path"
    raise FinetuneError(f"this finetune was installed from {where} ({url}), which a CI runner cannot install",
                        hint=NEEDS_PIP_HINT.format(version=version))


def installed_requirement() -> str:
    try:
        record = metadata.distribution("finetune").read_text("direct_url.json")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        record = json.dumps({"url": "file://.", "dir_info": {}})
    return requirement_from(json.loads(record) if record else None)
