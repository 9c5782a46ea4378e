using System.Text.Json.Nodes;
using RollingReboot.Lab;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Xapi.Tests;

/// <summary>
/// rollreboot takes XAPI's verdict on live migration (VM.allowed_operations, computed by xapi_vm_lifecycle.ml
/// check_operation_error ~strict:true) and only names the likely reason, in check_operation_error's order.
/// </summary>
public sealed class MigrationVerdictTests
{
    private static XapiVmRecord Vm(string[] allowed, string powerState = "Running", string[]? vgpus = null, string[]? pcis = null,
        string[]? ops = null, string domainType = "hvm", Dictionary<string, string>? platform = null)
    {
        var o = new JsonObject
        {
            ["uuid"] = "u",
            ["name_label"] = "vm",
            ["power_state"] = powerState,
            ["domain_type"] = domainType,
            ["allowed_operations"] = new JsonArray([.. allowed.Select(a => (JsonNode)a)]),
            ["current_operations"] = new JsonObject((ops ?? []).Select(op => KeyValuePair.Create("OpaqueRef:t-" + op, (JsonNode?)op))),
            ["VGPUs"] = new JsonArray([.. (vgpus ?? []).Select(a => (JsonNode)a)]),
            ["attached_PCIs"] = new JsonArray([.. (pcis ?? []).Select(a => (JsonNode)a)]),
            ["VUSBs"] = new JsonArray(),
            ["platform"] = new JsonObject((platform ?? []).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        };
        return XapiVmRecord.From("OpaqueRef:vm", o);
    }

    private static XapiVmGuestMetricsRecord Guest(bool drivers, Dictionary<string, string>? other = null) =>
        XapiVmGuestMetricsRecord.From("OpaqueRef:gm", new JsonObject
        {
            ["PV_drivers_detected"] = drivers,
            ["PV_drivers_version"] = drivers ? new JsonObject { ["major"] = "9", ["minor"] = "4" } : new JsonObject(),
            ["other"] = new JsonObject((other ?? []).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
        });

    [Fact]
    public void AVgpuXapiAllowsToMigrate_IsNotRefused()
    {
        // check_vgpu: a suspendable NVIDIA vGPU migrates; XAPI keeps pool_migrate in allowed_operations.
        Assert.Null(XapiMigrationVerdict.Refusal(Vm(["pool_migrate", "migrate_send"], vgpus: ["OpaqueRef:g"]), Guest(true)));
        // is_not_sriov: an NVIDIA SR-IOV function among attached_PCIs does not stop it either.
        Assert.Null(XapiMigrationVerdict.Refusal(Vm(["pool_migrate"], vgpus: ["OpaqueRef:g"], pcis: ["OpaqueRef:vf"]), Guest(true)));
    }

    [Fact]
    public void RefusedByXapi_IsNamedInCheckOperationErrorsOrder()
    {
        Assert.Equal("VM_IS_IMMOBILE", XapiMigrationVerdict.Refusal(Vm([], platform: new() { ["nomigrate"] = "1" }, vgpus: ["g"]), Guest(false)));
        Assert.Equal("VM_NON_SUSPENDABLE", XapiMigrationVerdict.Refusal(Vm([]), Guest(true, new() { ["data-cant-suspend-reason"] = "UEFI" })));
        Assert.Equal("VM_LACKS_FEATURE", XapiMigrationVerdict.Refusal(Vm([], pcis: ["p"]), null));
        Assert.Equal("VM_HAS_PCI_ATTACHED", XapiMigrationVerdict.Refusal(Vm([], pcis: ["p"], vgpus: ["g"]), Guest(true)));
        Assert.Equal("VM_HAS_VGPU", XapiMigrationVerdict.Refusal(Vm([], vgpus: ["g"]), Guest(true)));
        // A PV-booted guest or an agent advertising feature-suspend has the feature (check_op_for_feature).
        Assert.Equal("VM_HAS_VGPU", XapiMigrationVerdict.Refusal(Vm([], vgpus: ["g"], domainType: "pv"), null));
        Assert.Equal("VM_HAS_VGPU", XapiMigrationVerdict.Refusal(Vm([], vgpus: ["g"]), Guest(false, new() { ["feature-suspend"] = "1" })));
        // Nothing we can name: XAPI's word still stands.
        Assert.Equal("OPERATION_NOT_ALLOWED", XapiMigrationVerdict.Refusal(Vm([]), Guest(true)));
    }

    [Fact]
    public void BusyOrNotRunning_IsNoRefusal()
    {
        // A VM busy with another operation lacks pool_migrate for as long as the operation runs: a wait, not a refusal.
        Assert.Null(XapiMigrationVerdict.Refusal(Vm([], ops: ["export"]), Guest(true)));
        Assert.Null(XapiMigrationVerdict.Refusal(Vm(["start"], powerState: "Halted"), null));
    }

    [Fact]
    public async Task OverTheLab_TheSnapshotCarriesXapisVerdicts()
    {
        const string scenario = """
            { "hosts": [ { "name": "a", "memoryMiB": 65536 }, { "name": "b", "memoryMiB": 65536 } ],
              "vms": [ { "name": "nvidia", "host": "a", "memoryMiB": 1024, "vgpu": true, "vgpuSuspendable": true },
                       { "name": "amd", "host": "a", "memoryMiB": 1024, "vgpu": true },
                       { "name": "pv", "host": "a", "memoryMiB": 1024, "pvDrivers": false, "domainType": "pvh" },
                       { "name": "legacy", "host": "a", "memoryMiB": 1024, "pvDrivers": false },
                       { "name": "nested", "host": "b", "memoryMiB": 1024, "nestedVirt": true } ] }
            """;
        await using var lab = await LabRuntime.StartAsync(ScenarioLoader.Parse(scenario), 50, TextWriter.Null);
        await using var pool = new XapiPoolConnection(LabXapiTests.ClientFor(lab));
        var snapshot = await pool.ReadAsync();
        var verdicts = snapshot.Vms.Where(v => v.IsRunningGuest).ToDictionary(v => v.Name, v => v.MigrationRefusal);
        Assert.Equal(new Dictionary<string, string?> { ["nvidia"] = null, ["amd"] = "VM_HAS_VGPU", ["pv"] = null, ["legacy"] = "VM_LACKS_FEATURE", ["nested"] = "VM_IS_IMMOBILE" }, verdicts);
    }
}
