using System.Text.Json.Nodes;
using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>
/// PBDs across a reboot, as xapi does it: storage_access.ml resynchronise_pbds leaves them unplugged at boot,
/// create_storage.ml plug_unplugged_pbds plugs them, a failure leaves one unplugged, and xapi_host_helpers.ml
/// consider_enabling_host_nolock enables the host anyway unless HA is armed. A host that cannot see an SR is no place
/// for a VM on it: VM_REQUIRES_SR [vm; sr] (xapi_vm_helpers.ml assert_can_see_SRs), also in every other host's
/// evacuation plan (compute_evacuation_plan checks each enabled target).
/// </summary>
public sealed class PbdPlugTests
{
    private static string Scenario(bool ha, string error = "") => $$"""
        { "pool": { "ha": { "enabled": {{(ha ? "true" : "false")}}, "heartbeatSr": "nfs" } },
          "hosts": [ { "name": "a", "master": true, "memoryMiB": 65536, "rebootSeconds": 20 },
                     { "name": "b", "memoryMiB": 65536, "rebootSeconds": 20 } ],
          "srs": [ { "name": "nfs", "shared": true } ],
          "vms": [ { "name": "web", "host": "a", "memoryMiB": 2048, "srs": ["nfs"], "haProtected": true } ],
          "faults": [ { "type": "pbdPlugFails", "host": "b", "sr": "nfs"{{error}} } ] }
        """;

    private static async Task<(XapiClient Client, string B, string Vm, string Pbd, string Sr)> RebootBAsync(LabRuntime lab)
    {
        var client = Labs.Client(lab);
        var b = (await client.CallAsync("host.get_by_name_label", ["b"]))!.AsArray()[0]!.GetValue<string>();
        var vm = (await client.CallAsync("VM.get_by_name_label", ["web"]))!.AsArray()[0]!.GetValue<string>();
        var sr = (await client.CallAsync("SR.get_by_name_label", ["nfs"]))!.AsArray()[0]!.GetValue<string>();
        var pbds = (await client.CallAsync("host.get_PBDs", [b]))!.AsArray().Select(n => n!.GetValue<string>()).ToList();
        string pbd = "";
        foreach (var p in pbds)
        {
            if ((await client.CallAsync("PBD.get_SR", [p]))!.GetValue<string>() == sr)
            {
                pbd = p;
            }
        }

        await client.CallAsync("host.disable", [b]);
        await client.CallAsync("host.reboot", [b]);
        await Wait.ForEventAsync(lab, "host.toolstackReady", "b");
        return (client, b, vm, pbd, sr);
    }

    [Fact]
    public async Task PlugFailsAtBoot_WithoutHa_TheHostIsEnabledAnyway_ButNoPlaceForTheVm_UntilPbdPlug()
    {
        await using var lab = await Labs.StartAsync(Scenario(ha: false));
        var (client, b, vm, pbd, sr) = await RebootBAsync(lab);
        await using var _ = client;

        Assert.False((await client.CallAsync("PBD.get_currently_attached", [pbd]))!.GetValue<bool>());
        Assert.True((await client.CallAsync("host.get_enabled", [b]))!.GetValue<bool>());
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("VM.assert_can_boot_here", [vm, b]));
        Assert.Equal(["VM_REQUIRES_SR", vm, sr], new[] { e.Code }.Concat(e.Parameters));
        var a = (await client.CallAsync("host.get_by_name_label", ["a"]))!.AsArray()[0]!.GetValue<string>();
        var preventing = (await client.CallAsync("host.get_vms_which_prevent_evacuation", [a]))!.AsObject();
        Assert.Equal(["VM_REQUIRES_SR", vm, sr], preventing[vm]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Single(Audit.Events(lab.AuditJson(), "pbd.plugFailed", "b"));

        // The storage was only late: PBD.plug works, and then the VM can go there.
        await client.CallAsync("PBD.plug", [pbd]);
        Assert.True((await client.CallAsync("PBD.get_currently_attached", [pbd]))!.GetValue<bool>());
        await client.CallAsync("VM.assert_can_boot_here", [vm, b]);
        await client.CallAsync("VM.pool_migrate", [vm, b, new JsonObject()]);
        Assert.Equal(b, (await client.CallAsync("VM.get_resident_on", [vm]))!.GetValue<string>());
    }

    [Fact]
    public async Task PlugFailsAtBoot_WithHaArmed_TheHostStaysDisabled()
    {
        await using var lab = await Labs.StartAsync(Scenario(ha: true));
        var (client, b, _, pbd, _) = await RebootBAsync(lab);
        await using var __ = client;
        Assert.False((await client.CallAsync("PBD.get_currently_attached", [pbd]))!.GetValue<bool>());
        Assert.False((await client.CallAsync("host.get_enabled", [b]))!.GetValue<bool>());
    }

    [Fact]
    public async Task StorageUnreachable_PbdPlugAnswersTheFaultsError()
    {
        await using var lab = await Labs.StartAsync(Scenario(ha: false, """, "error": ["SR_BACKEND_FAILURE_73", "", "NFS mount error", ""]"""));
        var (client, _, _, pbd, _) = await RebootBAsync(lab);
        await using var _ = client;
        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("PBD.plug", [pbd]));
        Assert.Equal("SR_BACKEND_FAILURE_73", e.Code);
        Assert.Equal(["", "NFS mount error", ""], e.Parameters);
        Assert.False((await client.CallAsync("PBD.get_currently_attached", [pbd]))!.GetValue<bool>());
    }

    [Fact]
    public async Task WithoutTheFault_EveryPbdIsPluggedAgainAfterTheBoot()
    {
        const string scenario = """
            { "hosts": [ { "name": "a", "master": true, "memoryMiB": 65536, "rebootSeconds": 20 }, { "name": "b", "memoryMiB": 65536, "rebootSeconds": 20 } ],
              "srs": [ { "name": "nfs", "shared": true } ] }
            """;
        await using var lab = await Labs.StartAsync(scenario);
        await using var client = Labs.Client(lab);
        var b = (await client.CallAsync("host.get_by_name_label", ["b"]))!.AsArray()[0]!.GetValue<string>();
        await client.CallAsync("host.disable", [b]);
        await client.CallAsync("host.reboot", [b]);
        await Wait.ForEventAsync(lab, "host.toolstackReady", "b");
        foreach (var p in (await client.CallAsync("host.get_PBDs", [b]))!.AsArray())
        {
            Assert.True((await client.CallAsync("PBD.get_currently_attached", [p!.GetValue<string>()]))!.GetValue<bool>());
        }
    }
}
