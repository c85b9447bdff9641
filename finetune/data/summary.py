"""A PrepareResult as a few plain text lines for the CLI (no colors, no rich)."""

from __future__ import annotations

from finetune.data.result import PrepareResult


def render_summary(result: PrepareResult, *, max_bad_rows: int = 3) -> list[str]:
    src = result.source
    if src.get("kind") == "hub":
        where = f"{src['dataset']}" + (f" ({src['config']})" if src.get("config") else "")
        where += f" @ {src.get('revision') or 'main'} -> {src['commit'][:12]}"
    else:
        where = "local files"
    state = "unchanged, nothing re-prepared (cache hit)" if result.cache_hit else "prepared"
    lines = [f"data {state}: {where} [key {result.key[:12]}, {result.elapsed_s:.2f}s]"]
    for role, r in result.roles.items():
        s = r.stats
        dropped = f", {r.dropped_rows} dropped" if r.dropped_rows else ""
        lines.append(
            f"  {role:<10} {r.path}  sha256 {r.sha256[:12]}  {r.kept_rows:,} of {r.source_rows:,} rows "
            f"from {r.source_split}{dropped}; {s['turns']:,} turns, {s['chars']:,} chars, ~{s['approx_tokens']:,} "
            f"tokens (longest row ~{s['max_row_approx_tokens']:,})"
        )
        for bad in r.bad_rows[:max_bad_rows]:
            lines.append(f"    dropped {bad}")
    for o in result.overlap:
        if o.rows:
            lines.append(
                f"  warning: {o.rows} {o.role} row(s) also in train ({o.by_prompt_id} by prompt_id, "
                f"{o.by_content} by content), e.g. {o.examples[0]}"
            )
        else:
            lines.append(f"  no overlap between train and {o.role}")
    return lines
