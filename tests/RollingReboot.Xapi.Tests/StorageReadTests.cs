using RollingReboot.Lab;
using RollingReboot.Lab.Scenario;

namespace RollingReboot.Xapi.Tests;

/// <summary>The client reads which shared SRs a host does not see (PBD.currently_attached) and plugs them (PBD.plug).</summary>
public sealed class StorageReadTests
{
    [Fact]
    public async Task AfterABootWhosePlugFailed_TheHostLacksTheSharedSr_InBothReads_UntilPlugSr()
    {
        const string scenario = """
            { "hosts": [ { "name": "a", "master": true, "memoryMiB": 65536, "rebootSeconds": 20 }, { "name": "b", "memoryMiB": 65536, "rebootSeconds": 20 } ],
              "srs": [ { "name": "nfs", "shared": true }, { "name": "b-local", "shared": false, "host": "b" } ],
              "faults": [ { "type": "pbdPlugFails", "host": "b", "sr": "nfs" } ] }
            """;
        await using var lab = await LabRuntime.StartAsync(ScenarioLoader.Parse(scenario), 100, TextWriter.Null);
        await using var pool = new XapiPoolConnection(LabXapiTests.ClientFor(lab));
        var before = await pool.ReadAsync();
        var b = before.Hosts.Single(h => h.Name == "b");
        Assert.Empty(b.UnpluggedSharedSrs);
        Assert.Empty(await pool.ReadUnpluggedSharedSrsAsync(b.Uuid));

        await pool.DisableHostAsync(b.Uuid);
        await pool.RebootHostAsync(b.Uuid);
        async Task<bool> BackAsync() => await pool.ReadHostAsync(b.Uuid) is { Live: true, Enabled: true, BootTime: { } boot } && boot > b.BootTime;
        for (int i = 0; i < 200 && !await BackAsync(); i++)
        {
            await pool.WaitForChangeAsync(TimeSpan.FromSeconds(5));
        }

        var nfs = before.Srs.Single(s => s.Name == "nfs");
        Assert.Equal([new Core.Pool.SrLink(nfs.Uuid, "nfs")], await pool.ReadUnpluggedSharedSrsAsync(b.Uuid));
        Assert.Equal([new Core.Pool.SrLink(nfs.Uuid, "nfs")], (await pool.ReadAsync()).Hosts.Single(h => h.Name == "b").UnpluggedSharedSrs);

        await pool.PlugSrAsync(b.Uuid, nfs.Uuid);
        Assert.Empty(await pool.ReadUnpluggedSharedSrsAsync(b.Uuid));
        Assert.Empty((await pool.ReadAsync()).Hosts.Single(h => h.Name == "b").UnpluggedSharedSrs);
    }
}
