using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Tests.Run;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Planning;

/// <summary>
/// --migration-network and --compress in the plan: blockers where XAPI would refuse or ignore the route
/// (xapi_network_attach_helpers.ml, xapi_vm_migrate.ml), the estimate on the network's link and the compressed bytes.
/// </summary>
public sealed class MigrationRoutingTests
{
    private static readonly Dictionary<string, string> s_xcpNg83 = new() { ["product_brand"] = "XCP-ng", ["xapi_build"] = "24.19.2" };
    private static readonly Dictionary<string, string> s_xcpNg82 = new() { ["product_brand"] = "XCP-ng", ["product_version"] = "8.2.1", ["xapi"] = "1.20" };

    private static PoolSnapshot Pool(Dictionary<string, string> software, params NetworkInfo[] networks)
    {
        var pool = new TestPool();
        foreach (var name in new[] { "h1", "h2", "h3" })
        {
            var host = pool.AddHost(name, 65536, master: name == "h1");
            foreach (var (k, v) in software)
            {
                host.SoftwareVersion[k] = v;
            }

            for (int i = 0; i < 4; i++)
            {
                pool.AddVm($"vm-{name}-{i}", name, 4 * TestPool.GiB);
            }
        }

        return pool.Build() with { Networks = networks };
    }

    private static NetworkInfo Network(string name, double speedMbps, params (string Host, bool Attached, bool Ip)[] ports) =>
        new("net-" + name, name, "xenbr1", [.. ports.Select(p => new NetworkPort(TestPool.HostUuid(p.Host), "eth1", p.Attached, p.Ip, speedMbps))]);

    private static NetworkInfo Everywhere(string name, double speedMbps = 8000) =>
        Network(name, speedMbps, ("h1", true, true), ("h2", true, true), ("h3", true, true));

    private static Plan Plan(PoolSnapshot pool, PlanOptions options) => EvacuationPlanner.Plan(pool, options, PlanConstraints.None);

    [Fact]
    public void MigrationNetwork_OnEveryHost_EstimatesOnItsPifSpeed_AndTheRouteNamesIt()
    {
        var pool = Pool(s_xcpNg83, Everywhere("mig"));
        var plain = Plan(pool, new PlanOptions());
        var plan = Plan(pool, new PlanOptions { MigrationNetwork = "mig" });

        Assert.True(plan.CanRun);
        Assert.Equal(1000, plan.Options.MigrationModel.HostLinkMBps);
        Assert.True(plan.Estimate.TotalSeconds < plain.Estimate.TotalSeconds);
        Assert.Equal(new MigrationRoute("net-mig", null), plan.Route);
        Assert.Equal(MigrationRoute.Default, plain.Route);

        // --assume-link-mbps wins over the PIFs' speed; a uuid names the network as well as its label.
        var assumed = Plan(pool, new PlanOptions { MigrationNetwork = "net-mig", LinkAssumed = true, MigrationModel = new MigrationModel(HostLinkMBps: 400) });
        Assert.Equal(400, assumed.Options.MigrationModel.HostLinkMBps);
        Assert.Equal("net-mig", assumed.Route.NetworkUuid);
    }

    [Fact]
    public void MigrationNetwork_AHostWithoutAUsablePif_BlocksNamingItAndXapisCode()
    {
        var partial = Network("storage", 8000, ("h1", true, true), ("h2", false, true));
        var plan = Plan(Pool(s_xcpNg83, partial), new PlanOptions { MigrationNetwork = "storage" });

        Assert.Equal([(NetworkPort.Unplugged, "h2"), (NetworkPort.NotPresent, "h3")], plan.Blockers.Select(b => (b.Code, b.Host!)));
        Assert.Contains("h2's PIF on network storage is unplugged", plan.Blockers[0].Message, StringComparison.Ordinal);

        var noIp = Plan(Pool(s_xcpNg83, Network("storage", 8000, ("h1", true, true), ("h2", true, false), ("h3", true, true))), new PlanOptions { MigrationNetwork = "storage" });
        Assert.Equal([NetworkPort.NoAddress], noIp.Blockers.Select(b => b.Code));
    }

    [Fact]
    public void MigrationNetwork_UnknownName_Blocks_ListingThePoolsNetworks()
    {
        var plan = Plan(Pool(s_xcpNg83, Everywhere("mig"), Everywhere("backup")), new PlanOptions { MigrationNetwork = "migration" });
        var blocker = Assert.Single(plan.Blockers);
        Assert.Equal(PlanCodes.MigrationNetworkUnknown, blocker.Code);
        Assert.Contains("(networks: backup, mig)", blocker.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OnXcpNg82_AMigrationNetworkBlocks_AndCompressionIsAWarning_NeverSent()
    {
        var pool = Pool(s_xcpNg82, Everywhere("mig"));
        var plan = Plan(pool, new PlanOptions { MigrationNetwork = "mig", Compress = true });

        Assert.Equal([PlanCodes.MigrationNetworkUnsupported], plan.Blockers.Select(b => b.Code));
        Assert.Equal([PlanCodes.CompressionUnsupported], plan.Warnings.Select(w => w.Code));
        Assert.False(plan.Options.MigrationModel.Compressed);
        Assert.Null(MigrationRouting.RouteFor(pool, plan.Options).Compress);
    }

    [Fact]
    public void Compression_HalvesTheBytesOnTheWire_AndTheEstimate_WhereTheLinkIsTheLimit()
    {
        var pool = Pool(s_xcpNg83);
        var plain = Plan(pool, new PlanOptions { Threads = 3 });
        var compressed = Plan(pool, new PlanOptions { Threads = 3, Compress = true });

        Assert.True(compressed.Options.MigrationModel.Compressed);
        Assert.Equal(new MigrationRoute(null, true), compressed.Route);
        Assert.Equal(0.5, (double)compressed.Estimate.Bytes / plain.Estimate.Bytes, 1e-9);
        Assert.Equal(plain.Estimate.MemoryBytes, compressed.Estimate.MemoryBytes);
        Assert.True(compressed.Estimate.TotalSeconds < plain.Estimate.TotalSeconds);
    }

    [Fact]
    public void Compression_WithoutTheOption_IsThePoolsDefault_AndFalseTurnsItOff()
    {
        var pool = Pool(s_xcpNg83) with { MigrationCompression = true };
        Assert.True(Plan(pool, new PlanOptions()).Options.MigrationModel.Compressed);
        Assert.Equal(MigrationRoute.Default, Plan(pool, new PlanOptions()).Route);
        var off = Plan(pool, new PlanOptions { Compress = false });
        Assert.False(off.Options.MigrationModel.Compressed);
        Assert.Equal(new MigrationRoute(null, false), off.Route);
    }

    [Fact]
    public async Task Run_SendsEveryMigrationOverTheRoute_ReadingTheNetworksBeforeEachWave()
    {
        var h = new CrashHarness(options: new RunOptions { Operator = "test", Machine = "test", UseSshProof = false, Plan = new PlanOptions { MigrationNetwork = "mig", Compress = true } });
        h.Pool.Networks.Add(new NetworkInfo("net-mig", "mig", "xenbr1", [.. h.Pool.Hosts.Select(x => new NetworkPort(x.Uuid, "eth1", true, true, 10000))]));

        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.NotEmpty(h.Pool.Routes);
        Assert.All(h.Pool.Routes, r => Assert.Equal(new MigrationRoute("net-mig", true), r.Route));
        Assert.Empty(h.Pool.Violations);
    }
}
