"""The emulator's vmSizes and usages routes serve the catalog's whole region list (GPU and CPU), read by the SDK."""

from __future__ import annotations

from finetune import catalog


def ws_client(emu):
    from azure.ai.ml import MLClient

    return MLClient(emu.credential, emu.subscription_id, emu.resource_group, emu.workspace_name,
                    transport=emu.transport, polling_interval=0.001, enable_telemetry=False)


def test_list_sizes_serves_every_catalog_size_without_finetune_fields(emu):
    sizes = {s.name: s for s in ws_client(emu).compute.list_sizes()}
    assert set(sizes) == {s.name for s in catalog.all_skus()}
    assert (sizes["Standard_D4s_v3"].gpus, sizes["Standard_D4s_v3"].family) == (0, "standardDSv3Family")
    assert sizes["Standard_DS2_v2"].gpus == 0
    assert sizes["Standard_NC24ads_A100_v4"].gpus == 1
    raw = {s["name"]: s for s in _get(emu, "vmSizes")}
    assert all("finetune" not in s for s in raw.values())
    d4s = raw["Standard_D4s_v3"]
    assert (d4s["vCPUs"], d4s["memoryGB"], d4s["premiumIO"]) == (4, 16.0, True)
    assert d4s["estimatedVMPrices"]["values"] == [{"retailPrice": 0.192, "osType": "Linux", "vmTier": "Standard"}]


def _get(emu, what: str) -> list[dict]:
    url = (f"https://management.azure.com/subscriptions/{emu.subscription_id}/providers/"
           f"Microsoft.MachineLearningServices/locations/{emu.location}/{what}?api-version=2024-10-01-preview")
    return emu.transport.session.get(url, headers={"Authorization": "Bearer x"}).json()["value"]


def test_usages_cover_cpu_families_and_count_a_cpu_cluster(emu):
    from azure.ai.ml.entities import AmlCompute

    ml = ws_client(emu)
    ml.compute.begin_create_or_update(AmlCompute(name="cpu", size="Standard_D4s_v3", max_instances=3)).result()
    assert len(list(ml.compute.list_usage())) > 40  # one per family of the list, CPU families included
    usage = {u["name"]["value"]: u for u in _get(emu, "usages")}
    assert {"standardDSv3Family", "standardDSv2Family", "StandardNCADSA100v4Family"} <= set(usage)
    assert usage["standardDSv3Family"]["currentValue"] == 12  # 3 nodes x 4 vCPUs
    emu.set_quota("StandardDSv3Family", 8)  # family names are matched without regard to case or spaces
    assert {u["name"]["value"]: u for u in _get(emu, "usages")}["standardDSv3Family"]["limit"] == 8


def test_the_vcpu_count_is_read_from_the_sdks_vm_size_as_it_arrives(emu):
    from finetune.backends.azureml.observe import vm_vcpus

    sizes = {s.name: s for s in ws_client(emu).compute.list_sizes()}
    assert sizes["Standard_D4s_v3"].v_cp_us is None  # the SDK leaves its own attribute unset: the wire key wins
    assert vm_vcpus(sizes["Standard_D4s_v3"]) == 4
    assert vm_vcpus(sizes["Standard_NC24ads_A100_v4"]) == 24
