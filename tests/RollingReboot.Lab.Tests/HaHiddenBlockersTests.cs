namespace RollingReboot.Lab.Tests;

/// <summary>
/// With HA on, xapi_host.ml get_vms_which_prevent_evacuation partitions the unprotected VMs out first and reports them
/// only as HOST_EVACUATE_VM_NOT_HA_PROTECTED; VM.assert_can_boot_here still names the real reason.
/// </summary>
public sealed class HaHiddenBlockersTests
{
    private const string Scenario = """
        { "pool": { "ha": { "enabled": true, "heartbeatSr": "nfs" } },
          "hosts": [ { "name": "h1", "memoryMiB": 65536 }, { "name": "h2", "memoryMiB": 65536 } ],
          "srs": [ { "name": "nfs", "shared": true }, { "name": "h1-local", "shared": false, "host": "h1" } ],
          "vms": [ { "name": "pinned", "host": "h1", "memoryMiB": 2048, "srs": ["h1-local"] } ] }
        """;

    [Fact]
    public async Task HaOn_UnprotectedVmOnLocalDisk_EvacuationSaysOnlyNotProtected_AssertCanBootHereSaysWhy()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        var h1 = (await client.CallAsync("host.get_by_name_label", ["h1"]))!.AsArray()[0]!.GetValue<string>();
        var h2 = (await client.CallAsync("host.get_by_name_label", ["h2"]))!.AsArray()[0]!.GetValue<string>();
        var vm = (await client.CallAsync("VM.get_by_name_label", ["pinned"]))!.AsArray()[0]!.GetValue<string>();

        var preventing = (await client.CallAsync("host.get_vms_which_prevent_evacuation", [h1]))!.AsObject();
        Assert.Equal("HOST_EVACUATE_VM_NOT_HA_PROTECTED", preventing[vm]!.AsArray()[0]!.GetValue<string>());

        var e = await Assert.ThrowsAsync<RollingReboot.Xapi.XapiException>(() => client.CallAsync("VM.assert_can_boot_here", [vm, h2]));
        Assert.Equal("VM_REQUIRES_SR", e.Code);
    }
}
