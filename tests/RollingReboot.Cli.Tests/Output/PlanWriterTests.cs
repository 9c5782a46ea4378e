using System.Text.Json;
using RollingReboot.Cli.Output;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;

namespace RollingReboot.Cli.Tests.Output;

public class PlanWriterTests
{
    private const long GiB = 1024L * 1024 * 1024;

    /// <summary>Four hosts (xen1 master), one disabled; each running VMs on shared storage.</summary>
    private static PoolSnapshot ReadyPool()
    {
        var hosts = new List<HostState>();
        var vms = new List<VmState>();
        for (int i = 1; i <= 4; i++)
        {
            string uuid = "host-" + i;
            long used = 0;
            for (int k = 0; k < 3; k++)
            {
                long memory = (k + 1) * 4 * GiB;
                used += memory;
                vms.Add(Vm($"vm-{i}-{k}", uuid, memory));
            }

            // xen4 is disabled by its operator (no guidance holds it): it is skipped.
            hosts.Add(new HostState(uuid, "xen" + i, "10.0.0." + i, i != 4, true, 128 * GiB, (124 * GiB) - used, 0,
                null, null, i != 4 ? ["reboot_host"] : [], [], []));
        }

        return new PoolSnapshot("pool-uuid", "CLUSTER-1", "host-1", HaSettings.Disabled, new Dictionary<string, string>(), [],
            hosts, vms, [new SrInfo("sr-nfs", "nfs-primary", true, null), new SrInfo("sr-local", "xen2-local", false, "host-2")]);
    }

    private static VmState Vm(string name, string host, long memory, string sr = "sr-nfs", bool pv = true) =>
        new("uuid-" + name, name, "Running", host, memory, pv ? null : PlanCodes.VmLacksFeature, [sr], [], "", []);

    private static Plan ReadyPlan(PlanOptions? options = null) =>
        EvacuationPlanner.Plan(ReadyPool(), options ?? PlanOptions.Default, PlanConstraints.None);

    private static Plan BlockedPlan()
    {
        var pool = ReadyPool();
        pool = pool with
        {
            Vms = [.. pool.Vms, Vm("db | \"local\"", "host-2", 2 * GiB, sr: "sr-local"), Vm("legacy-hvm", "host-3", 2 * GiB, pv: false)],
            Ha = new HaSettings(true, ["sr-nfs"], new Dictionary<string, string> { ["timeout"] = "30" }, 1, false),
        };
        return EvacuationPlanner.Plan(pool, PlanOptions.Default, PlanConstraints.None);
    }

    [Fact]
    public void ToJson_HasTheContractsShape()
    {
        var plan = ReadyPlan(PlanOptions.Default with { ReturnVms = true });

        using var doc = JsonDocument.Parse(PlanWriter.ToJson(plan, "CLUSTER-1"));
        var root = doc.RootElement;

        Assert.Equal("CLUSTER-1", root.GetProperty("cluster").GetString());
        var pool = root.GetProperty("pool");
        Assert.Equal("pool-uuid", pool.GetProperty("uuid").GetString());
        Assert.Equal("CLUSTER-1", pool.GetProperty("name").GetString());
        Assert.Equal("xen1", pool.GetProperty("master").GetString());
        // What the plan assumes of xapi (no software_version read here: the newest behaviour).
        Assert.StartsWith("software_version not read", pool.GetProperty("software").GetProperty("assumed").GetString(), StringComparison.Ordinal);
        Assert.True(pool.GetProperty("software").GetProperty("guidanceKeepsHostDisabled").GetBoolean());

        var hosts = root.GetProperty("hosts").EnumerateArray().ToList();
        Assert.Equal(["xen1", "xen2", "xen3", "xen4"], hosts.Select(h => h.GetProperty("name").GetString()));
        foreach (var h in hosts)
        {
            Assert.Equal(JsonValueKind.String, h.GetProperty("uuid").ValueKind);
            Assert.Contains(h.GetProperty("isMaster").ValueKind, new[] { JsonValueKind.True, JsonValueKind.False });
            Assert.Contains(h.GetProperty("action").GetString(), new[] { "reboot", "skip" });
            Assert.False(string.IsNullOrEmpty(h.GetProperty("reason").GetString()));
        }

        Assert.True(hosts[0].GetProperty("isMaster").GetBoolean());
        Assert.Equal("skip", hosts[3].GetProperty("action").GetString());

        var steps = root.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(["xen1", "xen2", "xen3"], steps.Select(s => s.GetProperty("host").GetString()));
        foreach (var s in steps)
        {
            Assert.Equal(JsonValueKind.Number, s.GetProperty("wave").ValueKind);
            Assert.True(s.GetProperty("estimatedSeconds").GetDouble() > 0);
            foreach (var m in s.GetProperty("migrations").EnumerateArray())
            {
                Assert.Equal(s.GetProperty("host").GetString(), m.GetProperty("from").GetString());
                Assert.StartsWith("vm-", m.GetProperty("vm").GetString(), StringComparison.Ordinal);
                Assert.StartsWith("uuid-vm-", m.GetProperty("vmUuid").GetString(), StringComparison.Ordinal);
                Assert.Equal(JsonValueKind.String, m.GetProperty("to").ValueKind);
                Assert.True(m.GetProperty("memoryBytes").GetInt64() % (4 * GiB) == 0);
            }
        }

        Assert.Empty(root.GetProperty("blockers").EnumerateArray());
        Assert.Equal(JsonValueKind.Array, root.GetProperty("warnings").ValueKind);
        var estimate = root.GetProperty("estimate");
        Assert.Equal(plan.Estimate.TotalSeconds, estimate.GetProperty("totalSeconds").GetDouble(), 1);
        Assert.Equal(plan.Estimate.Migrations, estimate.GetProperty("migrations").GetInt32());
        Assert.Equal(plan.Estimate.Bytes, estimate.GetProperty("bytes").GetInt64());
        Assert.Equal(steps.Sum(s => s.GetProperty("migrations").GetArrayLength()) + root.GetProperty("returnMigrations").GetArrayLength(), plan.Estimate.Migrations);
        Assert.True(root.GetProperty("canRun").GetBoolean());
    }

    [Fact]
    public void ToJson_Blockers_CarryCodeMessageFixAndTheirVmAndHost()
    {
        var plan = BlockedPlan();

        using var doc = JsonDocument.Parse(PlanWriter.ToJson(plan, "CLUSTER-1"));
        var blockers = doc.RootElement.GetProperty("blockers").EnumerateArray().ToList();

        Assert.Equal(2, blockers.Count);
        var local = blockers.Single(b => b.GetProperty("code").GetString() == "VM_REQUIRES_SR");
        Assert.Equal("db | \"local\"", local.GetProperty("vm").GetString());
        Assert.Equal("xen2", local.GetProperty("host").GetString());
        Assert.Contains("xen2-local", local.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(local.GetProperty("fix").GetString()));
        Assert.Contains(blockers, b => b.GetProperty("code").GetString() == "VM_LACKS_FEATURE" && b.GetProperty("vm").GetString() == "legacy-hvm");
        Assert.False(doc.RootElement.GetProperty("canRun").GetBoolean());
        Assert.Contains(doc.RootElement.GetProperty("warnings").EnumerateArray(), w => w.GetProperty("code").GetString() == PlanCodes.HaTimeoutShort);
    }

    [Fact]
    public void ToJson_BlockerWithoutVmOrHost_OmitsThem()
    {
        var pool = ReadyPool() with { CurrentOperations = ["ha_enable"] };
        var plan = EvacuationPlanner.Plan(pool, PlanOptions.Default, PlanConstraints.None);

        using var doc = JsonDocument.Parse(PlanWriter.ToJson(plan, "C"));
        var b = Assert.Single(doc.RootElement.GetProperty("blockers").EnumerateArray());

        Assert.False(b.TryGetProperty("vm", out _));
        Assert.False(b.TryGetProperty("host", out _));
    }

    [Fact]
    public void ToText_Ready_SaysSoFirst_AndListsHostsStepsAndEstimate()
    {
        var plan = ReadyPlan();

        var text = PlanWriter.ToText(plan, "CLUSTER-1");

        var lines = text.Split('\n');
        Assert.Contains("CLUSTER-1", lines[0], StringComparison.Ordinal);
        Assert.StartsWith("READY", lines[1], StringComparison.Ordinal);
        foreach (var h in plan.Hosts)
        {
            Assert.Contains(h.Name, text, StringComparison.Ordinal);
            Assert.Contains(h.Reason, text, StringComparison.Ordinal);
        }

        foreach (var m in plan.Steps.SelectMany(s => s.Migrations))
        {
            Assert.Contains(m.VmName, text, StringComparison.Ordinal);
        }

        Assert.Contains(Units.Duration(plan.Estimate.TotalSeconds), text, StringComparison.Ordinal);
        Assert.Matches(@"Estimated duration: \d+:\d\d:\d\d", text);
        Assert.DoesNotContain("BLOCKERS", text, StringComparison.Ordinal);
    }

    [Fact]
    public void ToText_Blocked_SaysSoFirst_AndGivesEveryBlockerWithItsFix()
    {
        var plan = BlockedPlan();

        var text = PlanWriter.ToText(plan, "CLUSTER-1");

        Assert.StartsWith("BLOCKED: 2 blockers", text.Split('\n')[1], StringComparison.Ordinal);
        foreach (var b in plan.Blockers)
        {
            Assert.Contains(b.Code, text, StringComparison.Ordinal);
            Assert.Contains(b.Message, text, StringComparison.Ordinal);
            Assert.Contains("Fix: " + b.Fix, text, StringComparison.Ordinal);
        }

        foreach (var w in plan.Warnings)
        {
            Assert.Contains(w.Message, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void ToMarkdown_HasSummaryTablesBlockersAndAGanttPerHost()
    {
        var plan = BlockedPlan();

        var md = PlanWriter.ToMarkdown(plan, "CLUSTER-1");

        Assert.StartsWith("# Rolling reboot plan: CLUSTER-1", md, StringComparison.Ordinal);
        Assert.Contains("BLOCKED", md, StringComparison.Ordinal);
        Assert.Contains(Units.Duration(plan.Estimate.TotalSeconds), md, StringComparison.Ordinal);
        foreach (var h in plan.Hosts)
        {
            Assert.Contains("| " + h.Name + " |", md, StringComparison.Ordinal);
        }

        foreach (var b in plan.Blockers)
        {
            Assert.Contains(b.Code, md, StringComparison.Ordinal);
        }

        // A VM name with a pipe must not break the table.
        Assert.Contains("db \\| \"local\"", md, StringComparison.Ordinal);

        int start = md.IndexOf("```mermaid\ngantt\n", StringComparison.Ordinal);
        Assert.True(start >= 0);
        string chart = md[start..md.IndexOf("```\n", start + 10, StringComparison.Ordinal)];
        foreach (var s in plan.Steps)
        {
            Assert.Contains("section " + s.HostName, chart, StringComparison.Ordinal);
        }

        Assert.Equal(plan.Steps.Count, chart.Split('\n').Count(l => l.TrimStart().StartsWith("reboot :", StringComparison.Ordinal)));
        Assert.Contains("evacuate 3 VMs : 2000-01-01 00:00:00, ", chart, StringComparison.Ordinal);
    }

    [Fact]
    public void ToMarkdown_Ready_WithMigrateBack()
    {
        var plan = ReadyPlan(PlanOptions.Default with { ReturnVms = true, MaxHostsDown = 2 });

        var md = PlanWriter.ToMarkdown(plan, "CLUSTER-1");

        Assert.Contains("ready to run", md, StringComparison.Ordinal);
        Assert.Contains("## Migrate-back", md, StringComparison.Ordinal);
        Assert.Contains("section migrate-back", md, StringComparison.Ordinal);
        Assert.DoesNotContain("## Blockers", md, StringComparison.Ordinal);
    }
}
