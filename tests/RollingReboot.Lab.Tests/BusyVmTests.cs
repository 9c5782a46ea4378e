using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>A VM busy with another operation, as xapi_vm_lifecycle.ml reports it.</summary>
public sealed class BusyVmTests
{
    private const string Scenario = """
        { "hosts": [ { "name": "b1", "memoryMiB": 65536 }, { "name": "b2", "memoryMiB": 65536 } ],
          "vms": [ { "name": "exporting", "host": "b1", "memoryMiB": 2048 } ],
          "faults": [ { "type": "vmBusy", "vm": "exporting", "operation": "export", "durationSeconds": 3600 } ] }
        """;

    [Fact]
    public async Task BusyVm_PreventsEvacuationAndMigration_WithTheDatamodelsLayout()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var b1 = (await client.CallAsync("host.get_by_name_label", ["b1"]))!.AsArray()[0]!.GetValue<string>();
        var b2 = (await client.CallAsync("host.get_by_name_label", ["b2"]))!.AsArray()[0]!.GetValue<string>();
        var vm = (await client.CallAsync("VM.get_by_name_label", ["exporting"]))!.AsArray()[0]!.GetValue<string>();

        var preventing = (await client.CallAsync("host.get_vms_which_prevent_evacuation", [b1]))!.AsObject();
        var reason = preventing[vm]!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        // ["OTHER_OPERATION_IN_PROGRESS"; "VM"; ref; operations; their refs] (datamodel_errors.ml: class, object, operation_type, operation_ref).
        Assert.Equal(["OTHER_OPERATION_IN_PROGRESS", "VM", vm, "export"], reason.Take(4));
        Assert.Equal(5, reason.Count);
        Assert.Equal("export", (await client.CallAsync("VM.get_current_operations", [vm]))!.AsObject().Single().Value!.GetValue<string>());

        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("VM.pool_migrate", [vm, b2, new System.Text.Json.Nodes.JsonObject()]));
        Assert.Equal("OTHER_OPERATION_IN_PROGRESS", e.Code);
        Assert.Equal(["VM", vm, "export"], e.Parameters.Take(3));
    }
}
