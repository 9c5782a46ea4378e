using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>xapi_host_helpers.ml: with a clustered SR plugged, no host may go down while another is down or the SR recovers.</summary>
public sealed class ClusteredSrTests
{
    private const string Scenario = """
        { "pool": { "toolstackStartSeconds": 2 },
          "hosts": [ { "name": "g1", "memoryMiB": 65536, "rebootSeconds": 30 }, { "name": "g2", "memoryMiB": 65536, "rebootSeconds": 30 },
                     { "name": "g3", "memoryMiB": 65536, "rebootSeconds": 30 } ],
          "srs": [ { "name": "gfs2", "shared": true, "clustered": true, "recoverySeconds": 60 } ] }
        """;

    [Fact]
    public async Task RebootWhileAnotherHostIsDownOrTheSrRecovers_IsClusteredSrDegraded()
    {
        await using var lab = await Labs.StartAsync(Scenario);
        await using var client = Labs.Client(lab);
        async Task<string> Host(string name) => (await client.CallAsync("host.get_by_name_label", [name]))!.AsArray()[0]!.GetValue<string>();
        var (g2, g3) = (await Host("g2"), await Host("g3"));
        var sr = (await client.CallAsync("SR.get_by_name_label", ["gfs2"]))!.AsArray()[0]!.GetValue<string>();
        Assert.True((await client.CallAsync("SR.get_clustered", [sr]))!.GetValue<bool>());
        await client.CallAsync("host.disable", [g2]);
        await client.CallAsync("host.disable", [g3]);
        await client.CallAsync("host.reboot", [g2]);
        await Wait.ForEventAsync(lab, "host.down", "g2");

        var e = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.reboot", [g3]));
        Assert.Equal("CLUSTERED_SR_DEGRADED", e.Code);
        Assert.Equal([sr], e.Parameters);
        Assert.DoesNotContain("reboot", (await client.CallAsync("host.get_allowed_operations", [g3]))!.AsArray().Select(n => n!.GetValue<string>()));

        // g2 is back: the SR recovers for 60 s, during which reboots are still refused, then allowed again.
        await Wait.ForEventAsync(lab, "sr.recovering");
        var recovering = await Assert.ThrowsAsync<XapiException>(() => client.CallAsync("host.reboot", [g3]));
        Assert.Equal("CLUSTERED_SR_DEGRADED", recovering.Code);
        Assert.StartsWith("Health check for SR", recovering.Parameters[0], StringComparison.Ordinal);
        await Wait.UntilSimulatedAsync(lab, Audit.T(Audit.Events(lab.AuditJson(), "sr.recovering").Single()) + 61);
        Assert.Contains("reboot", (await client.CallAsync("host.get_allowed_operations", [g3]))!.AsArray().Select(n => n!.GetValue<string>()));
        await client.CallAsync("host.reboot", [g3]);
    }
}
