using System.Text.Json.Nodes;
using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// Which VMs XAPI lets live-migrate, as xapi_vm_lifecycle.ml check_operation_error decides for pool_migrate (strict):
/// the lab's VM.allowed_operations, host.get_vms_which_prevent_evacuation and VM.pool_migrate give one verdict.
/// </summary>
public sealed class MigrationRulesTests
{
    private const string Scenario = """
        { "hosts": [ { "name": "m1", "memoryMiB": 131072 }, { "name": "m2", "memoryMiB": 131072 } ],
          "vms": [
            { "name": "plain", "host": "m1", "memoryMiB": 1024 },
            { "name": "nvidia-vgpu", "host": "m1", "memoryMiB": 1024, "vgpu": true, "vgpuSuspendable": true },
            { "name": "passthrough-gpu", "host": "m1", "memoryMiB": 1024, "vgpu": true },
            { "name": "pv-no-tools", "host": "m1", "memoryMiB": 1024, "pvDrivers": false, "domainType": "pv" },
            { "name": "agent-only", "host": "m1", "memoryMiB": 1024, "pvDrivers": false, "featureSuspend": true },
            { "name": "hvm-no-tools", "host": "m1", "memoryMiB": 1024, "pvDrivers": false },
            { "name": "uefi-no-suspend", "host": "m1", "memoryMiB": 1024, "cantSuspendReason": "UEFI guest without suspend support" },
            { "name": "nomigrate", "host": "m1", "memoryMiB": 1024, "nomigrate": true },
            { "name": "nested", "host": "m1", "memoryMiB": 1024, "nestedVirt": true },
            { "name": "pci", "host": "m1", "memoryMiB": 1024, "pci": true },
            { "name": "usb", "host": "m1", "memoryMiB": 1024, "vusb": true } ] }
        """;

    // Name -> the error XAPI gives (code and parameters after the VM ref), null where it migrates.
    private static readonly Dictionary<string, string[]?> s_expected = new()
    {
        ["plain"] = null,
        ["nvidia-vgpu"] = null,
        ["passthrough-gpu"] = ["VM_HAS_VGPU"],
        ["pv-no-tools"] = null,
        ["agent-only"] = null,
        ["hvm-no-tools"] = ["VM_LACKS_FEATURE"],
        ["uefi-no-suspend"] = ["VM_NON_SUSPENDABLE", "UEFI guest without suspend support"],
        ["nomigrate"] = ["VM_IS_IMMOBILE"],
        ["nested"] = ["VM_IS_IMMOBILE"],
        ["pci"] = ["VM_HAS_PCI_ATTACHED"],
        ["usb"] = ["VM_HAS_VUSBS"],
    };

    [Fact]
    public async Task AllowedOperations_PreventEvacuation_AndPoolMigrate_GiveXapisOneVerdict()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var m1 = (await client.CallAsync("host.get_by_name_label", ["m1"]))!.AsArray()[0]!.GetValue<string>();
        var m2 = (await client.CallAsync("host.get_by_name_label", ["m2"]))!.AsArray()[0]!.GetValue<string>();
        var preventing = (await client.CallAsync("host.get_vms_which_prevent_evacuation", [m1]))!.AsObject();

        foreach (var (name, expected) in s_expected)
        {
            var vm = (await client.CallAsync("VM.get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();
            var allowed = (await client.CallAsync("VM.get_allowed_operations", [vm]))!.AsArray().Select(n => n!.GetValue<string>()).ToList();
            Assert.True(allowed.Contains("pool_migrate") == (expected is null), $"{name}: allowed_operations {string.Join(",", allowed)}");

            if (expected is null)
            {
                Assert.False(preventing.ContainsKey(vm), $"{name} should not prevent evacuation");
                continue;
            }

            // The datamodel's layouts (ocaml/idl/datamodel_errors.ml): [vm] or, for VM_NON_SUSPENDABLE, [vm; reason].
            string[] layout = [expected[0], vm, .. expected[1..]];
            Assert.Equal(layout, preventing[vm]!.AsArray().Select(n => n!.GetValue<string>()));
            var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("VM.pool_migrate", [vm, m2, new JsonObject()]));
            Assert.Equal(layout, new[] { e.Code }.Concat(e.Parameters));
        }

        // The ones XAPI lets go really move.
        foreach (var name in s_expected.Where(kv => kv.Value is null).Select(kv => kv.Key))
        {
            var vm = (await client.CallAsync("VM.get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();
            await client.CallAsync("VM.pool_migrate", [vm, m2, new JsonObject()]);
            Assert.Equal(m2, (await client.CallAsync("VM.get_resident_on", [vm]))!.GetValue<string>());
        }
    }

    [Fact]
    public async Task GuestMetricsAndVmMetrics_CarryTheSignalsXapiReads()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        async Task<JsonObject> Record(string name)
        {
            var vm = (await client.CallAsync("VM.get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();
            return (await client.CallAsync("VM.get_record", [vm]))!.AsObject();
        }

        var agent = await Record("agent-only");
        var gm = (await client.CallAsync("VM_guest_metrics.get_record", [agent["guest_metrics"]!.GetValue<string>()]))!.AsObject();
        Assert.Equal("1", gm["other"]!["feature-suspend"]!.GetValue<string>());
        Assert.Empty(gm["PV_drivers_version"]!.AsObject());

        var noTools = await Record("hvm-no-tools");
        Assert.Equal("OpaqueRef:NULL", noTools["guest_metrics"]!.GetValue<string>());

        var pv = await Record("pv-no-tools");
        Assert.Equal("pv", pv["domain_type"]!.GetValue<string>());
        var metrics = (await client.CallAsync("VM_metrics.get_record", [pv["metrics"]!.GetValue<string>()]))!.AsObject();
        Assert.Equal("pv", metrics["current_domain_type"]!.GetValue<string>());

        var immobile = await Record("nomigrate");
        Assert.Equal("true", immobile["platform"]!["nomigrate"]!.GetValue<string>());
    }
}
