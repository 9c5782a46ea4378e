using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Tests.Planning;

public class EvacuationPlannerTests
{
    private static readonly PlanOptions s_defaults = PlanOptions.Default;

    /// <summary>/work/shared/scenarios/six-hosts-n-plus-1.json, rebuilt the way the lab generates it.</summary>
    internal static TestPool SixHostsNPlusOne()
    {
        var pool = new TestPool { Name = "CLUSTER-1" };
        for (int i = 1; i <= 6; i++)
        {
            pool.AddHost("xen" + i, 262144, i == 1);
        }

        pool.Ha = new HaSettings(true, ["sr-nfs"], new Dictionary<string, string> { ["timeout"] = "180" }, 1, true);
        pool.AddVm("r-4-VM", "xen2", TestPool.WithOverhead(512));
        pool.AddVm("s-1-VM", "xen3", TestPool.WithOverhead(1024));
        pool.AddVm("v-2-VM", "xen4", TestPool.WithOverhead(1024));
        var rng = new Random(7);
        long[] sizes = [2048, 4096, 8192, 16384];
        int counter = 0;
        for (int i = 1; i <= 6; i++)
        {
            for (int k = 0; k < 22; k++)
            {
                pool.AddVm($"i-2-{++counter}-VM", "xen" + i, TestPool.WithOverhead(sizes[rng.Next(sizes.Length)]));
            }
        }

        return pool;
    }

    /// <summary>/work/shared/scenarios/three-hosts-with-blockers.json.</summary>
    internal static TestPool ThreeHostsWithBlockers()
    {
        var pool = new TestPool { Name = "POOL-B" };
        pool.AddHost("xs1", 131072);
        pool.AddHost("xs2", 131072, master: true);
        pool.AddHost("xs3", 131072);
        pool.AddSr("sr-xs1-local", "xs1-local", false, "xs1");
        pool.AddSr("sr-xs2-local-iso", "xs2-local-iso", false, "xs2");
        var db = pool.AddVm("db-local", "xs1", TestPool.WithOverhead(16384));
        db.Disks.Clear();
        db.Disks.Add("sr-xs1-local");
        pool.AddVm("legacy-hvm", "xs3", TestPool.WithOverhead(4096)).PvDrivers = false;
        pool.AddVm("web-1", "xs2", TestPool.WithOverhead(8192)).Cds.Add("sr-xs2-local-iso");
        pool.AddVm("web-2", "xs3", TestPool.WithOverhead(8192));
        pool.AddVm("halted-1", null, TestPool.WithOverhead(8192)).PowerState = "Halted";
        return pool;
    }

    /// <summary>Seven hosts of 256 GiB with 80 GiB of VMs each: room for several hosts down at once.</summary>
    internal static TestPool Roomy()
    {
        var pool = new TestPool { Name = "ROOMY" };
        for (int i = 1; i <= 7; i++)
        {
            pool.AddHost("xen" + i, 262144, i == 1);
            for (int k = 0; k < 10; k++)
            {
                pool.AddVm($"vm-{i}-{k}", "xen" + i, 8 * TestPool.GiB);
            }
        }

        return pool;
    }

    [Fact]
    public void Plan_SixHostsNPlusOne_RebootsEveryHostMasterFirstWithoutBlockers()
    {
        var snapshot = SixHostsNPlusOne().Build();

        var plan = EvacuationPlanner.Plan(snapshot, s_defaults, PlanConstraints.None);

        Assert.True(plan.CanRun, string.Join("; ", plan.Blockers.Select(b => b.Message)));
        Assert.Equal(["xen1", "xen2", "xen3", "xen4", "xen5", "xen6"], plan.Steps.Select(s => s.HostName));
        Assert.True(plan.Steps[0].IsMaster);
        Assert.Equal([1, 2, 3, 4, 5, 6], plan.Steps.Select(s => s.Wave));
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_defaults, PlanConstraints.None));
        Assert.Empty(plan.Warnings);

        // The master's VMs go to the hosts rebooted last, so only they move twice.
        var masterVms = snapshot.RunningOn(snapshot.MasterUuid).Select(v => v.Uuid).ToHashSet();
        var targetsOfMaster = plan.Steps[0].Migrations.Select(m => m.ToName).Distinct().ToList();
        var rebootedLast = plan.Steps.TakeLast(targetsOfMaster.Count).Select(s => s.HostName).ToList();
        Assert.Equal(rebootedLast.Order(), targetsOfMaster.Order());
        var all = plan.Steps.SelectMany(s => s.Migrations).ToList();
        Assert.Equal(snapshot.Vms.Count + masterVms.Count, all.Count);
        Assert.All(all.Where(m => !masterVms.Contains(m.VmUuid)).GroupBy(m => m.VmUuid), g => Assert.Single(g));
        Assert.Equal(all.Count, plan.Estimate.Migrations);
    }

    [Fact]
    public void Plan_ThreeHostsWithBlockers_ListsEachBlockerWithItsFix()
    {
        var plan = EvacuationPlanner.Plan(ThreeHostsWithBlockers().Build(), s_defaults, PlanConstraints.None);

        Assert.False(plan.CanRun);
        Assert.Equal(3, plan.Blockers.Count);
        var db = Assert.Single(plan.Blockers, b => b.Vm == "db-local");
        Assert.Equal((PlanCodes.VmRequiresSr, "xs1"), (db.Code, db.Host));
        Assert.Contains("xs1-local", db.Message, StringComparison.Ordinal);
        var hvm = Assert.Single(plan.Blockers, b => b.Vm == "legacy-hvm");
        Assert.Equal((PlanCodes.VmLacksFeature, "xs3"), (hvm.Code, hvm.Host));
        Assert.Contains("tools", hvm.Fix, StringComparison.OrdinalIgnoreCase);
        var cd = Assert.Single(plan.Blockers, b => b.Vm == "web-1");
        Assert.Equal((PlanCodes.VmRequiresSr, "xs2"), (cd.Code, cd.Host));
        Assert.Contains("eject", cd.Fix, StringComparison.OrdinalIgnoreCase);
        Assert.All(plan.Blockers, b => Assert.False(string.IsNullOrWhiteSpace(b.Fix)));

        // The plan is still complete, so the operator sees what happens once the blockers are fixed.
        Assert.Equal(["xs2", "xs1", "xs3"], plan.Steps.Select(s => s.HostName));
        Assert.DoesNotContain(plan.Steps.SelectMany(s => s.Migrations), m => m.VmName == "halted-1");
    }

    [Fact]
    public void Plan_DisabledHost_IsSkippedAndNeverATarget()
    {
        var pool = SixHostsNPlusOne();
        // Disabled by its operator: no mandatory guidance holds it (a legacy update still asks for a reboot).
        pool.Hosts[2].Enabled = false;
        pool.Hosts[2].PendingGuidances.Clear();
        pool.Hosts[2].Updates.Add("XS82ECU1001");

        var plan = EvacuationPlanner.Plan(pool.Build(), s_defaults, PlanConstraints.None);

        var xen3 = Assert.Single(plan.Hosts, h => h.Name == "xen3");
        Assert.Equal(HostAction.Skip, xen3.Action);
        Assert.StartsWith("disabled by operator, left alone", xen3.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(plan.Steps.SelectMany(s => s.Migrations), m => m.ToName == "xen3" || m.FromName == "xen3");
        Assert.Contains(plan.Warnings, w => w.Code == PlanCodes.HostDisabledPending && w.Message.Contains("xen3", StringComparison.Ordinal));
        Assert.Equal("xen3", plan.Hosts[^1].Name);
    }

    [Fact]
    public void Plan_OnlyNeedingReboot_SkipsHostsWithoutPendingReboot_AndUsesThemAsTargets()
    {
        var pool = SixHostsNPlusOne();
        pool.Hosts[1].PendingGuidances.Clear();
        pool.Hosts[4].PendingGuidances.Clear();
        pool.Hosts[4].Updates.Add("XS82ECU1050");
        var snapshot = pool.Build();
        var options = s_defaults with { OnlyNeedingReboot = true };

        var plan = EvacuationPlanner.Plan(snapshot, options, PlanConstraints.None);

        var xen2 = Assert.Single(plan.Hosts, h => h.Name == "xen2");
        Assert.Equal((HostAction.Skip, "no reboot needed"), (xen2.Action, xen2.Reason));
        var xen5 = Assert.Single(plan.Hosts, h => h.Name == "xen5");
        Assert.Equal(HostAction.Reboot, xen5.Action);
        Assert.Contains("XS82ECU1050", xen5.Reason, StringComparison.Ordinal);
        Assert.Contains("reboot_host", plan.Hosts[0].Reason, StringComparison.Ordinal);
        Assert.True(plan.CanRun);
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, options, PlanConstraints.None));
        Assert.Contains(plan.Steps.SelectMany(s => s.Migrations), m => m.ToName == "xen2");
    }

    [Fact]
    public void Plan_IncludeAndIgnoreHosts_ByNameOrUuid()
    {
        var snapshot = SixHostsNPlusOne().Build();
        var options = s_defaults with
        {
            IncludeHosts = ["xen2", TestPool.HostUuid("xen3"), "xen4"],
            IgnoreHosts = ["xen4"],
        };

        var plan = EvacuationPlanner.Plan(snapshot, options, PlanConstraints.None);

        Assert.Equal(["xen2", "xen3"], plan.Steps.Select(s => s.HostName));
        Assert.Equal("ignored by operator (pending guidance: reboot_host)", plan.Hosts.Single(h => h.Name == "xen4").Reason);
        Assert.StartsWith("not in the hosts to include", plan.Hosts.Single(h => h.Name == "xen1").Reason, StringComparison.Ordinal);
        Assert.DoesNotContain(plan.Steps, s => s.IsMaster);
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, options, PlanConstraints.None));
    }

    [Fact]
    public void Plan_UnknownHostInIgnoreList_IsABlocker()
    {
        var options = s_defaults with { IgnoreHosts = ["xen7"] };

        var plan = EvacuationPlanner.Plan(SixHostsNPlusOne().Build(), options, PlanConstraints.None);

        var b = Assert.Single(plan.Blockers);
        Assert.Equal((PlanCodes.UnknownHost, "xen7"), (b.Code, b.Host));
        Assert.Contains("xen1, xen2", b.Fix, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_SkippedMaster_KeepsItsVmsAndTakesOthers()
    {
        var snapshot = Roomy().Build();
        var options = s_defaults with { IgnoreHosts = ["xen1"] };

        var plan = EvacuationPlanner.Plan(snapshot, options, PlanConstraints.None);

        Assert.True(plan.CanRun);
        Assert.DoesNotContain(plan.Steps, s => s.IsMaster);
        Assert.DoesNotContain(plan.Steps.SelectMany(s => s.Migrations), m => m.FromName == "xen1");
        Assert.Contains(plan.Steps[0].Migrations, m => m.ToName == "xen1");
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, options, PlanConstraints.None));
    }

    [Fact]
    public void Plan_HostNotLive_IsABlocker_UnlessIgnored()
    {
        var pool = SixHostsNPlusOne();
        pool.Hosts[3].Live = false;
        var snapshot = pool.Build();

        var plan = EvacuationPlanner.Plan(snapshot, s_defaults, PlanConstraints.None);
        var ignored = EvacuationPlanner.Plan(snapshot, s_defaults with { IgnoreHosts = ["xen4"] }, PlanConstraints.None);

        Assert.Contains(plan.Blockers, b => b.Code == PlanCodes.HostNotLive && b.Host == "xen4");
        Assert.DoesNotContain(ignored.Blockers, b => b.Code == PlanCodes.HostNotLive);
        Assert.Contains(ignored.Warnings, w => w.Code == PlanCodes.HostNotLiveIgnored);
        Assert.DoesNotContain(ignored.Steps.SelectMany(s => s.Migrations), m => m.ToName == "xen4");
    }

    [Fact]
    public void Plan_HostAndPoolOperationsInProgress_AreBlockers()
    {
        var pool = SixHostsNPlusOne();
        pool.Hosts[1].Operations.Add("evacuate");
        pool.Operations.Add("ha_enable");

        var plan = EvacuationPlanner.Plan(pool.Build(), s_defaults, PlanConstraints.None);

        Assert.Contains(plan.Blockers, b => b.Code == PlanCodes.HostBusy && b.Host == "xen2" && b.Message.Contains("evacuate", StringComparison.Ordinal));
        Assert.Contains(plan.Blockers, b => b.Code == PlanCodes.PoolBusy && b.Message.Contains("ha_enable", StringComparison.Ordinal));
    }

    [Fact]
    public void Plan_PassthroughAndExtraBlockers_NameTheVm()
    {
        var pool = ThreeHostsWithBlockers();
        pool.Vms.Single(v => v.Name == "web-2").Pci = true;
        pool.Vms.Single(v => v.Name == "web-2").Vgpu = true;
        var constraints = new PlanConstraints
        {
            ExtraVmBlockers = new Dictionary<string, VmIssue>
            {
                [TestPool.VmUuid("web-1")] = new("VM_HAS_SRIOV", "web-1 uses an SR-IOV VF", "detach the VF"),
                [TestPool.VmUuid("halted-1")] = new("IGNORED", "not running", "none"),
            },
        };

        var plan = EvacuationPlanner.Plan(pool.Build(), s_defaults, constraints);

        Assert.Contains(plan.Blockers, b => b.Code == PlanCodes.VmHasPci && b.Vm == "web-2");
        // XAPI gives one error per VM, the first check_operation_error finds: the PCI device, not the vGPU.
        Assert.DoesNotContain(plan.Blockers, b => b.Code == PlanCodes.VmHasVgpu && b.Vm == "web-2");
        Assert.Contains(plan.Blockers, b => b is { Code: "VM_HAS_SRIOV", Vm: "web-1", Host: "xs2", Fix: "detach the VF" });
        Assert.DoesNotContain(plan.Blockers, b => b.Code == "IGNORED");
    }

    [Fact]
    public void Plan_HaSettings_GiveWarningsNotBlockers()
    {
        var pool = new TestPool { Name = "SMALL" };
        pool.AddHost("a", 65536, master: true);
        pool.AddHost("b", 65536);
        pool.AddVm("vm1", "a", 4 * TestPool.GiB).HaPriority = "restart";
        pool.Ha = new HaSettings(true, ["sr-nfs"], new Dictionary<string, string> { ["timeout"] = "60" }, 1, false);

        var plan = EvacuationPlanner.Plan(pool.Build(), s_defaults, PlanConstraints.None);

        Assert.True(plan.CanRun);
        Assert.Contains(plan.Warnings, w => w.Code == PlanCodes.HaTimeoutShort && w.Message.Contains("60 s", StringComparison.Ordinal));
        Assert.Contains(plan.Warnings, w => w.Code == PlanCodes.HaFewHosts);
        Assert.Contains(plan.Warnings, w => w.Code == PlanCodes.VmHaProtected && w.Message.Contains("vm1", StringComparison.Ordinal));
    }

    [Fact]
    public void Plan_NotEnoughMemory_NamesHostVmAndShortfall()
    {
        var pool = new TestPool { Name = "FULL" };
        pool.AddHost("a", 36864, master: true);
        pool.AddHost("b", 36864);
        pool.AddVm("big-a", "a", 24 * TestPool.GiB);
        pool.AddVm("big-b", "b", 24 * TestPool.GiB);
        var snapshot = pool.Build();

        var plan = EvacuationPlanner.Plan(snapshot, s_defaults, PlanConstraints.None);

        var b = Assert.Single(plan.Blockers, x => x.Code == PlanCodes.Capacity && x.Host == "a");
        Assert.Equal("big-a", b.Vm);
        Assert.Contains("24.0 GiB", b.Message, StringComparison.Ordinal);
        Assert.Contains("8.0 GiB free (16.0 GiB short)", b.Message, StringComparison.Ordinal);
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_defaults, PlanConstraints.None));
    }

    [Fact]
    public void Plan_MasterVmsFitOnlyWhenPackedWell_AreRePlacedWithinTheStep()
    {
        // First fit puts 6 GiB on h3 (10 free) and 5 GiB on h2 (6 free); the second 5 GiB then fits nowhere
        // unless the 6 and a 5 swap hosts.
        var pool = new TestPool { Name = "PACK" };
        pool.AddHost("h1", 40 * 1024, master: true);
        pool.AddHost("h2", 34 * 1024);
        pool.AddHost("h3", 38 * 1024);
        pool.AddVm("m-6", "h1", 6 * TestPool.GiB);
        pool.AddVm("m-5a", "h1", 5 * TestPool.GiB);
        pool.AddVm("m-5b", "h1", 5 * TestPool.GiB);
        for (int k = 0; k < 3; k++)
        {
            pool.AddVm($"a-{k}", "h2", 8 * TestPool.GiB);
            pool.AddVm($"b-{k}", "h3", 8 * TestPool.GiB);
        }

        var snapshot = pool.Build();

        var plan = EvacuationPlanner.Plan(snapshot, s_defaults, PlanConstraints.None);

        Assert.True(plan.CanRun, string.Join("; ", plan.Blockers.Select(b => b.Message)));
        Assert.Equal(3, plan.Steps[0].Migrations.Count);
        Assert.Equal("h2", plan.Steps[0].Migrations.Single(m => m.VmName == "m-6").ToName);
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_defaults, PlanConstraints.None));
    }

    [Fact]
    public void Plan_NoHostCanTakeTheFirstHostsVms_WhenTheMasterIsDisabled()
    {
        var pool = new TestPool { Name = "NOWHERE" };
        var a = pool.AddHost("a", 65536, master: true);
        a.Enabled = false;
        a.PendingGuidances.Clear();
        pool.AddHost("b", 65536);
        pool.AddHost("c", 65536);
        pool.AddVm("vm-b", "b", 4 * TestPool.GiB);
        pool.AddVm("vm-c", "c", 4 * TestPool.GiB);

        var plan = EvacuationPlanner.Plan(pool.Build(), s_defaults, PlanConstraints.None);

        var b = Assert.Single(plan.Blockers);
        Assert.Equal((PlanCodes.Capacity, "b", "vm-b"), (b.Code, b.Host, b.Vm));
        Assert.Contains("nowhere to go", b.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_AntiAffinity_NeverPutsGroupTogether_AndBlocksWhenImpossible()
    {
        var pool = new TestPool { Name = "AA" };
        pool.AddHost("h1", 65536, master: true);
        pool.AddHost("h2", 65536);
        pool.AddHost("h3", 65536);
        pool.AddHost("h4", 65536);
        pool.AddVm("db-1", "h2", 4 * TestPool.GiB);
        pool.AddVm("db-2", "h3", 4 * TestPool.GiB);
        pool.AddVm("db-3", "h4", 4 * TestPool.GiB);
        var snapshot = pool.Build();
        var spread = new PlanConstraints
        {
            AntiAffinityGroups = new Dictionary<string, IReadOnlyList<string>>
            {
                ["db-1"] = ["db"],
                [TestPool.VmUuid("db-2")] = ["db"],
                ["db-3"] = ["db"],
            },
        };

        var plan = EvacuationPlanner.Plan(snapshot, s_defaults, spread);

        Assert.True(plan.CanRun);
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_defaults, spread));

        // With three hosts and three group members, the first host evacuated after the master has no free slot.
        pool.AddVm("db-4", "h1", 4 * TestPool.GiB);
        var crowded = spread with
        {
            AntiAffinityGroups = new Dictionary<string, IReadOnlyList<string>>(spread.AntiAffinityGroups) { ["db-4"] = ["db"] },
        };
        var snapshot2 = pool.Build();
        var blocked = EvacuationPlanner.Plan(snapshot2, s_defaults, crowded);
        Assert.Contains(blocked.Blockers, b => b.Code == PlanCodes.AntiAffinity && b.Message.Contains("db", StringComparison.Ordinal));
        Assert.Empty(PlanVerifier.Violations(snapshot2, blocked, s_defaults, crowded));
    }

    [Fact]
    public void Plan_Resume_SkipsRebootedHostsAndUsesThemAsTargets()
    {
        var snapshot = SixHostsNPlusOne().Build();
        var constraints = new PlanConstraints { AlreadyRebootedHosts = [TestPool.HostUuid("xen1"), TestPool.HostUuid("xen2")] };

        var plan = EvacuationPlanner.Plan(snapshot, s_defaults, constraints);

        Assert.Equal(["xen3", "xen4", "xen5", "xen6"], plan.Steps.Select(s => s.HostName));
        Assert.All(plan.Hosts.Where(h => h.Name is "xen1" or "xen2"), h => Assert.Equal("already rebooted in this run (pending guidance: reboot_host)", h.Reason));
        Assert.All(plan.Steps[0].Migrations, m => Assert.Contains(m.ToName, new[] { "xen1", "xen2" }));
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, s_defaults, constraints));
    }

    [Fact]
    public void Plan_MaxHostsDown_GroupsHostsIntoWaves_MasterAlone()
    {
        var snapshot = Roomy().Build();
        var options = s_defaults with { MaxHostsDown = 3 };

        var plan = EvacuationPlanner.Plan(snapshot, options, PlanConstraints.None);
        var single = EvacuationPlanner.Plan(snapshot, s_defaults, PlanConstraints.None);

        Assert.True(plan.CanRun);
        Assert.Equal([1, 2, 2, 2, 3, 3, 3], plan.Steps.Select(s => s.Wave));
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, options, PlanConstraints.None));
        Assert.True(plan.Estimate.TotalSeconds < single.Estimate.TotalSeconds);
        Assert.All(plan.Steps.Where(s => s.Wave == 2), s => Assert.Equal(plan.Steps[1].StartSeconds, s.StartSeconds));
    }

    [Fact]
    public void Plan_ReturnVms_BringsEveryMovedVmHome_InReverseOrder()
    {
        var snapshot = SixHostsNPlusOne().Build();
        var options = s_defaults with { ReturnVms = true };

        var plan = EvacuationPlanner.Plan(snapshot, options, PlanConstraints.None);
        var without = EvacuationPlanner.Plan(snapshot, s_defaults, PlanConstraints.None);

        var finalHost = plan.Steps.SelectMany(st => st.Migrations).GroupBy(m => m.VmUuid).ToDictionary(g => g.Key, g => g.Last().ToUuid);
        var away = snapshot.Vms.Where(v => finalHost[v.Uuid] != v.ResidentOnUuid).Select(v => v.Uuid).Order().ToList();
        Assert.Equal(away, plan.ReturnMigrations.Select(m => m.VmUuid).Order());
        Assert.DoesNotContain(plan.Warnings, w => w.Code == PlanCodes.ReturnSkipped);
        var firstReturnTo = plan.ReturnMigrations.Select(m => m.ToName).Distinct().ToList();
        Assert.Equal(["xen6", "xen5", "xen4", "xen3", "xen2", "xen1"], firstReturnTo);
        Assert.Empty(PlanVerifier.Violations(snapshot, plan, options, PlanConstraints.None));
        Assert.Equal(without.Estimate.Migrations + plan.ReturnMigrations.Count, plan.Estimate.Migrations);
        Assert.True(plan.Estimate.ReturnSeconds > 0);
        Assert.Equal(without.Estimate.TotalSeconds + plan.Estimate.ReturnSeconds, plan.Estimate.TotalSeconds, 6);
    }

    [Fact]
    public void Plan_HostNames_InNaturalOrder()
    {
        var pool = new TestPool { Name = "NAMES" };
        foreach (var name in new[] { "xen10", "xen2", "xen1", "xen9" })
        {
            pool.AddHost(name, 65536, name == "xen1");
        }

        var plan = EvacuationPlanner.Plan(pool.Build(), s_defaults, PlanConstraints.None);

        Assert.Equal(["xen1", "xen2", "xen9", "xen10"], plan.Steps.Select(s => s.HostName));
    }

    [Fact]
    public void Plan_StepEstimates_AddEvacuationAndDowntime()
    {
        var plan = EvacuationPlanner.Plan(SixHostsNPlusOne().Build(), s_defaults, PlanConstraints.None);

        Assert.All(plan.Steps, s => Assert.Equal(s.EvacuationSeconds + 325, s.EstimatedSeconds, 6));
        Assert.Equal(plan.Steps.Sum(s => s.EstimatedSeconds), plan.Estimate.TotalSeconds, 6);
        Assert.Equal(plan.Steps[1].StartSeconds, plan.Steps[0].EstimatedSeconds, 6);
        long bytes = plan.Steps.SelectMany(s => s.Migrations).Sum(m => (long)Math.Round(m.MemoryBytes * 1.1));
        Assert.Equal(bytes, plan.Estimate.Bytes);
    }

    [Fact]
    public void Plan_BadOptions_Throw()
    {
        var snapshot = SixHostsNPlusOne().Build();
        Assert.Throws<ArgumentOutOfRangeException>(() => EvacuationPlanner.Plan(snapshot, s_defaults with { Threads = 0 }, PlanConstraints.None));
        Assert.Throws<ArgumentOutOfRangeException>(() => EvacuationPlanner.Plan(snapshot, s_defaults with { MaxHostsDown = 0 }, PlanConstraints.None));
    }

    [Fact]
    public void Plan_SubsetOfHosts_PutsTheMastersVmsOnHostsOutOfTheRun()
    {
        // Like the 64-host bench with --hosts naming 8: the master's VMs belong on the hosts that never reboot,
        // not on the hosts of the run still to come (which would move them twice).
        var pool = new TestPool { Name = "BIG" };
        for (int i = 1; i <= 12; i++)
        {
            pool.AddHost("xen" + i, 262144, i == 1);
            for (int k = 0; k < 8; k++)
            {
                pool.AddVm($"vm-{i}-{k}", "xen" + i, 8 * TestPool.GiB);
            }
        }

        var options = s_defaults with { IncludeHosts = ["xen1", "xen2", "xen3", "xen4"] };
        var plan = EvacuationPlanner.Plan(pool.Build(), options, new PlanConstraints());

        Assert.True(plan.CanRun);
        var outOfRun = Enumerable.Range(5, 8).Select(i => "xen" + i).ToHashSet();
        Assert.Equal(8, plan.Steps[0].Migrations.Count);
        Assert.All(plan.Steps[0].Migrations, m => Assert.Contains(m.ToName, outOfRun));
        Assert.Equal(4 * 8, plan.Steps.Sum(s => s.Migrations.Count));
    }
}
