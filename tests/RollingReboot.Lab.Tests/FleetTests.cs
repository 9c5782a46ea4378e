using System.Text.Json.Nodes;
using RollingReboot.CloudStack;
using RollingReboot.Core.Ports;
using RollingReboot.Lab.Scenario;
using RollingReboot.Lab.Sim;
using RollingReboot.Xapi;

namespace RollingReboot.Lab.Tests;

/// <summary>A fleet lab: several pools in one lab process, one CloudStack for all, one clock, one audit per pool.</summary>
public sealed class FleetTests
{
    /// <summary>A small pool; host names repeat across pools on purpose (only the pool must tell its hosts apart).</summary>
    private static string Pool(string name, string cluster, string zone = "ZONE-1", string faults = "", string vmPrefix = "i-2-") => $$"""
        { "name": "{{name}}",
          "pool": { "name": "{{name}}", "toolstackStartSeconds": 2 },
          "cloudstack": { "clusterName": "{{cluster}}", "zone": "{{zone}}" },
          "migration": { "setupSeconds": 2, "streamMBps": 1000, "hostLinkMBps": 1000 },
          "hosts": [ { "name": "xen1", "memoryMiB": 65536, "rebootSeconds": 20 }, { "name": "xen2", "memoryMiB": 65536, "rebootSeconds": 20 } ],
          "vms": [ { "name": "{{vmPrefix}}1-VM", "host": "xen1", "memoryMiB": 1024 }, { "name": "{{vmPrefix}}2-VM", "host": "xen2", "memoryMiB": 1024 } ],
          "faults": [ {{faults}} ] }
        """;

    private static Task<LabRuntime> StartFleetAsync(params string[] scenarios) =>
        LabRuntime.StartAsync(scenarios.Select(s => ScenarioLoader.Parse(s)).ToList(), Labs.FastScale, TextWriter.Null);

    private static string Address(LabPool pool, string hostName) => Audit.Host(pool.AuditJson(), hostName)["address"]!.GetValue<string>();

    private static CloudStackClient CloudStackClientFor(LabRuntime lab) => new(new CloudStackClientOptions
    {
        Timeout = TimeSpan.FromHours(1),
        UpdateClusterTimeout = TimeSpan.FromHours(1),
        Endpoint = new Uri(lab.Environment["ROLLREBOOT_CLOUDSTACK_URL"]),
        ApiKey = lab.Environment["ROLLREBOOT_CLOUDSTACK_API_KEY"],
        SecretKey = lab.Environment["ROLLREBOOT_CLOUDSTACK_SECRET_KEY"],
        RetryCount = 0,
        PollInterval = TimeSpan.FromSeconds(1),
    }, timeProvider: lab.Clock);

    private static async Task<JsonObject> ForEventAsync(LabPool pool, string type, string? host = null)
    {
        JsonObject? found = null;
        await Wait.UntilAsync(() => (found = Audit.Events(pool.AuditJson(), type, host).FirstOrDefault()) is not null, $"{type} in pool {pool.Name}");
        return found!;
    }

    [Fact]
    public async Task FleetFiles_OneCloudStackListsEveryClusterWithItsHostsAtTheirOwnAddresses()
    {
        var scenarios = new[] { "fleet-a-three-hosts.json", "fleet-b-three-hosts.json", "fleet-c-three-hosts.json" }
            .Select(f => ScenarioLoader.LoadFile(Path.Combine(ScenarioLoaderTests.ScenariosDirectory(), f)))
            .ToList();
        await using var lab = await LabRuntime.StartAsync(scenarios, Labs.FastScale, TextWriter.Null);
        using var cs = CloudStackClientFor(lab);

        Assert.Equal(["CLUSTER-A", "CLUSTER-B", "CLUSTER-C"], lab.Pools.Select(p => p.Name));
        var clusters = (await cs.ExecuteAsync("listClusters")).GetProperty("cluster").EnumerateArray()
            .Select(c => (Name: c.GetProperty("name").GetString(), Zone: c.GetProperty("zonename").GetString(), Id: c.GetProperty("id").GetString()))
            .ToList();
        Assert.Equal([("CLUSTER-A", "ZONE-1"), ("CLUSTER-B", "ZONE-1"), ("CLUSTER-C", "ZONE-2")], clusters.Select(c => (c.Name, c.Zone)));
        Assert.Equal(3, clusters.Select(c => c.Id).Distinct().Count());
        var zones = (await cs.ExecuteAsync("listZones")).GetProperty("zone").EnumerateArray().Select(z => z.GetProperty("name").GetString());
        Assert.Equal(["ZONE-1", "ZONE-2"], zones);
        Assert.Equal(2, (await cs.ExecuteAsync("listClusters", new Dictionary<string, string> { ["zoneid"] = lab.Pools[0].CloudStack!.ZoneId })).GetProperty("count").GetInt32());

        var allAddresses = new List<string>();
        foreach (var pool in lab.Pools)
        {
            var cluster = Assert.Single(await cs.FindClustersAsync(pool.Name, null));
            var hosts = await cs.ListHostsAsync(cluster.Id);
            var audit = pool.AuditJson();
            var auditHosts = audit["hosts"]!.AsArray().Select(h => (Name: h!["name"]!.GetValue<string>(), Address: h["address"]!.GetValue<string>())).ToList();
            Assert.Equal(auditHosts, hosts.Select(h => (h.Name, h.IpAddress)));
            Assert.All(hosts, h => Assert.Equal("Up", h.State));
            allAddresses.AddRange(hosts.Select(h => h.IpAddress));

            var vms = await cs.ListVirtualMachinesAsync(cluster.Id);
            Assert.Equal(audit["vms"]!.AsArray().Select(v => v!["name"]!.GetValue<string>()).Order(), vms.Select(v => v.InstanceName).Order());
            Assert.Equal(pool.Name, audit["cloudstack"]!["clusterName"]!.GetValue<string>());
        }

        Assert.Equal(9, allAddresses.Distinct().Count());
        Assert.Equal(9, lab.Pools.SelectMany(p => p.AuditJson()["hosts"]!.AsArray().Select(h => h!["uuid"]!.GetValue<string>())).Distinct().Count());
        Assert.Equal(9, Labs.Pins(lab).Distinct().Count());
    }

    [Fact]
    public async Task ReadyLine_AuditUrlIsTheFirstPools_AuditsHoldEveryPoolsOwnAudit()
    {
        await using var lab = await StartFleetAsync(Pool("POOL-A", "CLUSTER-A"), Pool("POOL-B", "CLUSTER-B", vmPrefix: "i-3-"));
        var ready = JsonNode.Parse(lab.ReadyLine())!.AsObject();
        var audits = ready["audits"]!.AsObject();

        Assert.True(ready["ready"]!.GetValue<bool>());
        Assert.Equal(["POOL-A", "POOL-B"], audits.Select(kv => kv.Key));
        Assert.Equal(ready["auditUrl"]!.GetValue<string>(), audits["POOL-A"]!.GetValue<string>());
        Assert.Equal($"https://{Address(lab.Pools[0], "xen1")}:{lab.XapiPort}/", ready["env"]!["ROLLREBOOT_XAPI_URL"]!.GetValue<string>());
        using var http = new HttpClient();
        foreach (var (name, url) in audits)
        {
            var audit = JsonNode.Parse(await http.GetStringAsync(new Uri(url!.GetValue<string>())))!.AsObject();
            Assert.Equal(name, audit["pool"]!["name"]!.GetValue<string>());
            Assert.Equal(name == "POOL-A" ? "i-2-1-VM" : "i-3-1-VM", audit["vms"]!.AsArray()[0]!["name"]!.GetValue<string>());
            Assert.Equal(lab.Pool(name).AuditJson()["hosts"]!.ToJsonString(), audit["hosts"]!.ToJsonString());
        }
    }

    [Fact]
    public async Task SingleScenario_ReadyLineKeepsItsShape_WithOneAudit()
    {
        await using var lab = await Labs.StartAsync(Pool("POOL-A", "CLUSTER-A"));
        var ready = JsonNode.Parse(lab.ReadyLine())!.AsObject();

        Assert.Equal(["ready", "env", "auditUrl", "audits"], ready.Select(kv => kv.Key));
        Assert.EndsWith("/audit", ready["auditUrl"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(ready["auditUrl"]!.GetValue<string>(), Assert.Single(ready["audits"]!.AsObject()).Value!.GetValue<string>());
        Assert.Equal(["127.0.0.2", "127.0.0.3"], lab.Pools.Single().HostAddresses);
    }

    [Fact]
    public async Task Xapi_AnotherPoolsHostOnTheSamePort_AnswersForThatPool()
    {
        await using var lab = await StartFleetAsync(Pool("POOL-A", "CLUSTER-A"), Pool("POOL-B", "CLUSTER-B", vmPrefix: "i-3-"));
        using var raw = new RawXapi(lab);
        var (a, b) = (lab.Pool("POOL-A"), lab.Pool("POOL-B"));
        var (aMaster, aMember) = (Address(a, "xen1"), Address(a, "xen2"));
        var (bMaster, bMember) = (Address(b, "xen1"), Address(b, "xen2"));
        Assert.Equal(4, new[] { aMaster, aMember, bMaster, bMember }.Distinct().Count());

        // Same port, the other pool's address: B's master logs in and serves B.
        var sb = await raw.LoginAsync(bMaster);
        var pools = (await raw.CallAsync(bMaster, "pool.get_all_records", sb))!.AsObject();
        Assert.Equal("POOL-B", Assert.Single(pools).Value!["name_label"]!.GetValue<string>());
        var vmNames = (await raw.CallAsync(bMaster, "VM.get_all_records", sb))!.AsObject()
            .Select(kv => kv.Value!["name_label"]!.GetValue<string>()).Where(n => n.StartsWith("i-", StringComparison.Ordinal)).Order();
        Assert.Equal(["i-3-1-VM", "i-3-2-VM"], vmNames);

        // A member points at its own pool's master.
        var slave = await raw.FailsAsync(bMember, "session.login_with_password", raw.User, raw.Password, "1.1", "lab-tests");
        Assert.Equal(("HOST_IS_SLAVE", bMaster), (slave.Code, Assert.Single(slave.Parameters)));
        var slaveA = await raw.FailsAsync(aMember, "session.login_with_password", raw.User, raw.Password, "1.1", "lab-tests");
        Assert.Equal(("HOST_IS_SLAVE", aMaster), (slaveA.Code, Assert.Single(slaveA.Parameters)));

        // A session of one pool means nothing to the other.
        var sa = await raw.LoginAsync(aMaster);
        Assert.Equal("SESSION_INVALID", (await raw.FailsAsync(bMaster, "pool.get_all", sa)).Code);

        // The project's client, started at B's member with the lab's one pin list and credentials, finds B's master.
        await using var client = Labs.Client(lab, bMember);
        var poolRef = Assert.Single((await client.CallAsync("pool.get_all", []))!.AsArray())!.GetValue<string>();
        Assert.Equal("POOL-B", (await client.CallAsync("pool.get_name_label", [poolRef]))!.GetValue<string>());
    }

    [Fact]
    public async Task RebootInPoolB_IsOnlyInBsAudit_AndTheManagedClusterViolationGoesToB()
    {
        await using var lab = await StartFleetAsync(Pool("POOL-A", "CLUSTER-A"), Pool("POOL-B", "CLUSTER-B", vmPrefix: "i-3-"));
        using var raw = new RawXapi(lab);
        var (a, b) = (lab.Pool("POOL-A"), lab.Pool("POOL-B"));
        var bMaster = Address(b, "xen1");
        var s = await raw.LoginAsync(bMaster);
        var host = await raw.RefAsync(bMaster, s, "host", "xen2");
        var vm = await raw.RefAsync(bMaster, s, "VM", "i-3-2-VM");
        var master = await raw.RefAsync(bMaster, s, "host", "xen1");
        await raw.CallAsync(bMaster, "VM.pool_migrate", s, vm, master, new JsonObject { ["live"] = "true" });
        await raw.CallAsync(bMaster, "host.disable", s, host);
        await raw.CallAsync(bMaster, "host.reboot", s, host);

        // CLUSTER-B is Managed: the host going down is CloudStack's business, and a violation of B's.
        await ForEventAsync(b, "host.up", "xen2");
        await Wait.UntilAsync(() => Audit.Events(b.AuditJson(), "cloudstack.hostState", "xen2").Any(e => e["state"]!.GetValue<string>() == "Up"), "xen2 Up again in CloudStack");
        var auditB = b.AuditJson();
        Assert.Equal(1, Audit.Host(auditB, "xen2")["bootCount"]!.GetValue<int>());
        var violation = Assert.Single(Audit.Violations(auditB));
        Assert.Contains("host xen2 went down while the cluster CLUSTER-B was Managed", violation, StringComparison.Ordinal);
        Assert.Single(Audit.Events(auditB, "cloudstack.haRecovery", "xen2"));

        // Pool A has a host of the same name, and saw nothing.
        var auditA = a.AuditJson();
        Assert.Empty(Audit.Violations(auditA));
        var typesA = auditA["events"]!.AsArray().OfType<JsonObject>().Select(e => e["type"]!.GetValue<string>()).ToList();
        Assert.DoesNotContain(typesA, t => t.StartsWith("host.", StringComparison.Ordinal) || t.StartsWith("migration.", StringComparison.Ordinal) || t.StartsWith("cloudstack.", StringComparison.Ordinal));
        Assert.All(auditA["hosts"]!.AsArray(), h => Assert.Equal(0, h!["bootCount"]!.GetValue<int>()));
        Assert.All(auditA["cloudstack"]!["hosts"]!.AsArray(), h => Assert.Equal("Up", h!["state"]!.GetValue<string>()));
        // One clock: B's, read after A's, is at or a little past it (the reads are a few wall milliseconds apart at a fast scale).
        var (nowA, nowB) = (Audit.Now(a.AuditJson()), Audit.Now(b.AuditJson()));
        Assert.InRange(nowB - nowA, 0, 60);
    }

    [Fact]
    public async Task Faults_AreEachPoolsOwn_TimedFromThatPoolsFirstStateChangingCall()
    {
        const string Starts = """{ "type": "vmStarts", "atSeconds": 10, "vm": { "name": "i-3-9-VM", "host": "xen1", "memoryMiB": 1024 } }""";
        await using var lab = await StartFleetAsync(Pool("POOL-A", "CLUSTER-A"), Pool("POOL-B", "CLUSTER-B", faults: Starts, vmPrefix: "i-3-"));
        using var raw = new RawXapi(lab);
        var (a, b) = (lab.Pool("POOL-A"), lab.Pool("POOL-B"));
        var (aMaster, bMaster) = (Address(a, "xen1"), Address(b, "xen1"));

        // A state-changing call in pool A does not start B's clock of faults.
        var sa = await raw.LoginAsync(aMaster);
        await raw.CallAsync(aMaster, "host.disable", sa, await raw.RefAsync(aMaster, sa, "host", "xen2"));
        var disabledA = await ForEventAsync(a, "host.disable", "xen2");
        await Wait.UntilSimulatedAsync(lab, Audit.T(disabledA) + 30);
        Assert.Empty(Audit.Events(b.AuditJson(), "vm.start"));

        // B's first state-changing call does.
        var sb = await raw.LoginAsync(bMaster);
        await raw.CallAsync(bMaster, "host.disable", sb, await raw.RefAsync(bMaster, sb, "host", "xen2"));
        var disabledB = await ForEventAsync(b, "host.disable", "xen2");
        var started = await ForEventAsync(b, "vm.start");
        Assert.Equal(Audit.T(disabledB) + 10, Audit.T(started), 0.01);
        Assert.Equal("i-3-9-VM", started["vm"]!.GetValue<string>());
        Assert.Empty(Audit.Events(a.AuditJson(), "vm.start"));
    }

    [Fact]
    public async Task CloudStackFaultOfPoolB_StrikesCallsAboutClusterB_NotClusterA()
    {
        const string Fails = """{ "type": "cloudstackError", "command": "listHosts", "times": 1, "errorCode": 530 }""";
        await using var lab = await StartFleetAsync(Pool("POOL-A", "CLUSTER-A"), Pool("POOL-B", "CLUSTER-B", faults: Fails, vmPrefix: "i-3-"));
        using var cs = CloudStackClientFor(lab);
        var clusterA = Assert.Single(await cs.FindClustersAsync("CLUSTER-A", "ZONE-1"));
        var clusterB = Assert.Single(await cs.FindClustersAsync("CLUSTER-B", "ZONE-1"));

        Assert.Equal(["xen1", "xen2"], (await cs.ListHostsAsync(clusterA.Id)).Select(h => h.Name));
        var e = await Assert.ThrowsAsync<CloudStackException>(() => cs.ListHostsAsync(clusterB.Id));
        Assert.Equal(530, e.ErrorCode);
        var hostsB = await cs.ListHostsAsync(clusterB.Id);
        Assert.Equal(["xen1", "xen2"], hostsB.Select(h => h.Name));
        Assert.Empty((await cs.ListHostsAsync(clusterA.Id)).Select(h => h.Id).Intersect(hostsB.Select(h => h.Id)));
    }

    [Fact]
    public async Task UnmanagingClusterB_LeavesClusterAManaged()
    {
        await using var lab = await StartFleetAsync(Pool("POOL-A", "CLUSTER-A"), Pool("POOL-B", "CLUSTER-B", vmPrefix: "i-3-"));
        using var cs = CloudStackClientFor(lab);
        var clusterB = Assert.Single(await cs.FindClustersAsync("CLUSTER-B", null));

        Assert.Equal("Unmanaged", await cs.SetManagedStateAsync(clusterB.Id, managed: false));

        Assert.Equal("Managed", (await cs.GetClusterAsync(Assert.Single(await cs.FindClustersAsync("CLUSTER-A", null)).Id)).ManagedState);
        Assert.Equal("Unmanaged", lab.Pool("POOL-B").AuditJson()["cloudstack"]!["managedState"]!.GetValue<string>());
        Assert.Equal(["PrepareUnmanaged", "Unmanaged"], Audit.Events(lab.Pool("POOL-B").AuditJson(), "cloudstack.managedState").Select(x => x["value"]!.GetValue<string>()));
        Assert.Empty(Audit.Events(lab.Pool("POOL-A").AuditJson(), "cloudstack.managedState"));
        Assert.All(lab.Pool("POOL-A").AuditJson()["cloudstack"]!["hosts"]!.AsArray(), h => Assert.Equal("Up", h!["state"]!.GetValue<string>()));
    }

    [Fact]
    public async Task SameClusterNameInAnotherZone_IsAnotherCluster()
    {
        await using var lab = await StartFleetAsync(Pool("POOL-A", "CLUSTER-X"), Pool("POOL-B", "CLUSTER-X", zone: "ZONE-2", vmPrefix: "i-3-"));
        using var cs = CloudStackClientFor(lab);

        Assert.Equal(2, (await cs.FindClustersAsync("CLUSTER-X", null)).Count);
        var inZone2 = Assert.Single(await cs.FindClustersAsync("CLUSTER-X", "ZONE-2"));
        Assert.Equal(lab.Pool("POOL-B").CloudStack!.ClusterId, inZone2.Id);
        Assert.NotEqual(lab.Pool("POOL-A").CloudStack!.ClusterId, inZone2.Id);
        Assert.Equal(lab.Pool("POOL-B").HostAddresses, (await cs.ListHostsAsync(inZone2.Id)).Select(h => h.IpAddress));
    }

    [Theory]
    [InlineData("CLUSTER-A", "ZONE-1", "POOL-B", null, "pools POOL-A and POOL-B are both cluster CLUSTER-A in zone ZONE-1: a zone's clusters need distinct names")]
    [InlineData("cluster-a", "zone-1", "POOL-B", null, "pools POOL-A and POOL-B are both cluster CLUSTER-A in zone ZONE-1: a zone's clusters need distinct names")]
    [InlineData("CLUSTER-B", "ZONE-1", "POOL-A", null, "two scenarios name their pool POOL-A: each pool of a fleet needs its own pool.name")]
    [InlineData("CLUSTER-B", "ZONE-1", "POOL-B", "admin", "pool.user differs between scenarios (root, admin): every pool of a fleet lab has the same XAPI user and password")]
    public async Task AFleetThatCannotBe_IsRefusedInOneLine(string cluster, string zone, string poolName, string? user, string message)
    {
        var a = ScenarioLoader.Parse(Pool("POOL-A", "CLUSTER-A"));
        var b = ScenarioLoader.Parse(Pool(poolName, cluster, zone));
        b.Pool.User = user;

        var e = Assert.Throws<ScenarioException>(() => FleetValidation.Validate([a, b]));
        Assert.Equal(message, e.Message);
        await Assert.ThrowsAsync<ScenarioException>(() => LabRuntime.StartAsync([a, b], Labs.FastScale, TextWriter.Null));
    }

    [Theory]
    [InlineData(2, "127.0.0.2")]
    [InlineData(254, "127.0.0.254")]
    [InlineData(255, "127.0.1.2")]
    [InlineData(508, "127.0.2.2")]
    public void LoopbackAddress_Counts127_0_0_2Onwards_SkippingEachBlocksNetworkAndBroadcastEnds(int index, string address) =>
        Assert.Equal(address, SimPool.LoopbackAddress(index));
}
