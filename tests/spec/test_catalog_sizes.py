"""The VM size catalog: every size of the region (GPU and CPU) in the vmSizes shape, and suggestions that are usable."""

from __future__ import annotations

from pathlib import Path

import pytest

from finetune import catalog
from finetune.cli import main

INVALID = Path(__file__).parent / "invalid"
REST_FIELDS = {"name", "family", "vCPUs", "gpus", "osVhdSizeMB", "memoryGB", "lowPriorityCapable", "premiumIO",
               "supportedComputeTypes"}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_catalog_holds_cpu_and_gpu_sizes_in_the_vmsizes_shape():
    sizes = catalog.vm_sizes_document()["value"]
    assert len(sizes) >= 250
    for size in sizes:
        assert REST_FIELDS <= set(size), size["name"]
        assert isinstance(size["gpus"], int) and isinstance(size["vCPUs"], int)
        assert size["finetune"]["sources"], f"{size['name']} has no source"
    by_name = {s.name: s for s in catalog.all_skus()}
    for cpu in ("Standard_DS2_v2", "Standard_D4s_v3", "Standard_E8s_v3", "Standard_F4s_v2", "Standard_D12_v2"):
        assert by_name[cpu].gpus == 0 and by_name[cpu].usd_per_hour, cpu
    assert by_name["Standard_D4s_v3"].family == "standardDSv3Family"
    a100 = by_name["Standard_NC24ads_A100_v4"]
    assert (a100.gpus, a100.gpu_type, a100.usd_per_hour, a100.skip_reservation) == (1, "A100", 3.673, True)
    assert by_name["Standard_NV6ads_A10_v5"].gpus == pytest.approx(1 / 6, abs=0.001)


def test_suggestions_are_never_retired_or_unmanaged():
    # A typo near a retired size suggests a usable one, not the retired one.
    assert catalog.find_sku("Standard_NC6s_v3").is_retired
    assert catalog.similar_sku("Standard_NC6s_v33") != "Standard_NC6s_v3"
    for name in (s.name for s in catalog.all_skus()):
        close = catalog.similar_sku(name + "x", managed_online=True)
        if close:
            sku = catalog.find_sku(close)
            assert not sku.is_retired and sku.managed_online, (name, close)
    allow = ["Standard_NC6s_v3", "Standard_NC24rs_v3", "Standard_NC24ads_A100_v4", "Standard_Made_Up"]
    assert catalog.usable_skus(allow) == ["Standard_NC24ads_A100_v4", "Standard_Made_Up"]
    assert catalog.usable_skus(["Standard_NC24rs_v3", "Standard_NC24ads_A100_v4"], managed_online=True) == [
        "Standard_NC24ads_A100_v4"]


def test_t4_deployment_is_told_only_usable_sizes(capsys):
    code, _, err = run_cli(capsys, "validate", str(INVALID / "notebook-deployment-sku-t4.yaml"))
    assert code == 1
    hint = err.split("inference allow list", 1)[1]
    assert "Standard_NC24ads_A100_v4" in hint
    for retired in ("Standard_NC6s_v3", "Standard_NC12s_v3", "Standard_NC24s_v3"):
        assert retired not in hint


def test_cpu_size_is_called_a_size_without_gpu_not_unknown(capsys):
    code, _, err = run_cli(capsys, "validate", str(INVALID / "cpu-size-d4s-v3.yaml"))
    assert code == 1
    assert "unknown VM size" not in err
    assert "Standard_D4s_v3 has no GPU (4 vCPU, 16 GiB, no GPU)" in err
    assert "Standard_NC6s_v3" not in err


def test_unknown_generation_option_is_a_warning_with_did_you_mean(tmp_path, capsys):
    base = (INVALID / "typo-sku.yaml").read_text().replace("A100_v5", "A100_v4")
    spec = tmp_path / "spec.yaml"
    spec.write_text(base + "smoke_test:\n  parameters:\n    topp_: 0.9\n    max_new_tokens: 20\n")
    code, out, err = run_cli(capsys, "validate", str(spec))
    assert code == 0, err
    assert f"{spec}:35:5: warning: smoke_test.parameters.topp_: 'topp_' is not a known generation option" in err
    assert "did you mean 'top_p'?" in err
    assert "valid" in out


def test_numbers_of_any_size_never_crash(tmp_path, capsys):
    """A 400-digit integer in every numeric place of a spec: one located error each, exit 1, no traceback."""
    base = (INVALID / "typo-sku.yaml").read_text().replace("A100_v5", "A100_v4")
    big = "1" + "0" * 400
    spec = tmp_path / "spec.yaml"
    spec.write_text(base.replace("num_train_epochs: 3", f"num_train_epochs: {big}\n    seed: {big}")
                    .replace("split_percentage: 5", f"split_percentage: {big}")
                    .replace("version: ", f"version: {big}")
                    + f"  traffic:\n    demo: {big}\nsmoke_test:\n  row: {big}\n  seed: {big}\n"
                      f"  parameters:\n    max_new_tokens: {big}\n")
    code, _, err = run_cli(capsys, "validate", str(spec))
    assert code == 1
    assert "Traceback" not in err and "internal error" not in err
    assert err.count("401-digit number is too large") == 7, err
