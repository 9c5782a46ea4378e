using RollingReboot.Core.Planning;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>
/// --shutdown-pinned-vms (issue 19): a VM that cannot be live-migrated stays on its host, is shut down right before the
/// host's reboot (cleanly, bounded, then hard) and started on it again once the host is back and enabled; which VMs were
/// shut down is journaled before the first shutdown, so a crash, resume or restore never leaves one halted.
/// </summary>
public sealed class PinnedVmsTests
{
    private static CrashHarness Harness(string? cleanFault = null)
    {
        var h = new CrashHarness();
        h.Pool.Vms.Add(new FakePool.Vm { Uuid = "gpu", Name = "vm-gpu", Host = "h3", Pinned = "VM_HAS_PCI_ATTACHED", CleanShutdownFault = cleanFault });
        h.Pool.Vms.Add(new FakePool.Vm { Uuid = "dongle", Name = "vm-dongle", Host = "h1", Pinned = "VM_HAS_VUSBS" });
        return h;
    }

    private static RunOptions Pinned(CrashHarness h) =>
        h.Options with { Plan = h.Options.Plan with { ShutdownPinnedVms = true }, ShutdownTimeout = TimeSpan.FromMinutes(2) };

    [Fact]
    public async Task WithoutTheOption_APinnedVm_BlocksTheRun_NothingChanged()
    {
        var h = Harness();
        var before = h.Audit();
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);

        Assert.Equal(RunOutcome.Blocked, report!.Outcome);
        Assert.Equal(before, h.Audit());
        Assert.Empty(h.Pool.PowerCalls);
    }

    [Fact]
    public async Task Plan_KeepsPinnedVmsOnTheirHost_MemoryReservedThere_ShutdownsInTheStep()
    {
        var h = Harness();
        var pool = await h.SnapshotAsync();
        var plan = EvacuationPlanner.Plan(pool, new PlanOptions { ShutdownPinnedVms = true }, PlanConstraints.None);

        Assert.True(plan.CanRun, string.Join("; ", plan.Blockers.Select(b => b.Message)));
        Assert.DoesNotContain(plan.Steps.SelectMany(s => s.Migrations), m => m.VmUuid is "gpu" or "dongle");
        Assert.Equal(["vm-gpu"], plan.Steps.Single(s => s.HostUuid == "h3").Shutdowns.Select(p => p.VmName));
        Assert.Equal("VM_HAS_PCI_ATTACHED", plan.Steps.Single(s => s.HostUuid == "h3").Shutdowns[0].Reason);
        Assert.Equal(["vm-dongle"], plan.Steps.Single(s => s.HostUuid == "h1").Shutdowns.Select(p => p.VmName));
        Assert.Contains(plan.Warnings, w => w.Code == PlanCodes.VmShutdownForReboot && w.Message.Contains("vm-gpu on xen3 (VM_HAS_PCI_ATTACHED)", StringComparison.Ordinal));

        // A VM sent to xen3 after its reboot never takes the memory vm-gpu comes back to.
        var sentToXen3 = plan.Steps.SelectMany(s => s.Migrations).Where(m => m.ToUuid == "h3").Sum(m => m.MemoryBytes);
        var xen3 = pool.Hosts.Single(x => x.Uuid == "h3");
        Assert.True(sentToXen3 <= xen3.MemoryFree + (3 * 4 * FakePool.GiB), $"{sentToXen3} sent to xen3");
    }

    [Fact]
    public async Task Run_ShutsDownBeforeTheReboot_StartsOnTheSameHostAfterItIsBack_NothingLost()
    {
        var h = Harness();
        var before = h.Audit();
        var store = new MemoryJournalStore();
        var report = await h.StartAsync(store, RunMode.Run, options: Pinned(h));

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.Equal(before, h.Audit());
        Assert.Empty(h.Pool.Violations);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
        Assert.Equal(["clean vm-dongle", "start vm-dongle@xen1", "clean vm-gpu", "start vm-gpu@xen3"], h.Pool.PowerCalls);
        Assert.Equal("h3", h.Pool.Vms.Single(v => v.Uuid == "gpu").Host);
        Assert.Contains("xen3: vm-gpu shut down for its reboot (they cannot be live-migrated) and running on it again", report.Notes);

        // The journal: intent, shutdown, reboot, back, enabled, started, in that order, for each host.
        var events = RunJournal.Read(store).ToList();
        int At<T>(Func<T, bool> match) where T : RunEvent => events.FindIndex(e => e is T t && match(t));
        var intent = At<VmShutdownIntended>(e => e.Vm == "gpu");
        var down = At<VmShutDown>(e => e.Vm == "gpu" && e.How == "clean");
        var reboot = At<RebootIntended>(e => e.Host == "h3");
        var back = At<HostBack>(e => e.Host == "h3");
        var started = At<VmStarted>(e => e.Vm == "gpu" && e.Host == "h3");
        Assert.True(intent >= 0 && intent < down && down < reboot && reboot < back && back < started, $"{intent} {down} {reboot} {back} {started}");
        Assert.True(started < events.FindIndex(e => e is Managed), "started before CloudStack manages the cluster again");
    }

    [Fact]
    public async Task Run_AGuestThatCannotBeAsked_IsPoweredOff_AndStartedAgain()
    {
        var h = Harness(cleanFault: "VM_LACKS_FEATURE");
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run, options: Pinned(h));

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.Equal(["clean vm-gpu", "hard vm-gpu", "start vm-gpu@xen3"], h.Pool.PowerCalls.Where(c => c.Contains("gpu", StringComparison.Ordinal)));
        Assert.Contains(h.Log.Lines, l => l.Contains("vm-gpu", StringComparison.Ordinal) && l.Contains("VM_LACKS_FEATURE", StringComparison.Ordinal));
        Assert.True(h.Pool.Vms.Single(v => v.Uuid == "gpu").Running);
    }

    [Fact]
    public async Task Run_AGuestThatIgnoresTheRequest_IsPoweredOffAfterTheShutdownTimeout()
    {
        var h = Harness(cleanFault: "hang");
        var store = new MemoryJournalStore();
        RunReport? report;
        await using (new Ticker(h.Clock, TimeSpan.FromSeconds(10)))
        {
            report = await h.StartAsync(store, RunMode.Run, options: Pinned(h));
        }

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.Equal(["clean vm-gpu", "hard vm-gpu", "start vm-gpu@xen3"], h.Pool.PowerCalls.Where(c => c.Contains("gpu", StringComparison.Ordinal)));
        var events = RunJournal.Read(store).ToList();
        var asked = events.OfType<VmShutdownIntended>().Single(e => e.Vm == "gpu").At;
        var off = events.OfType<VmShutDown>().Single(e => e.Vm == "gpu").At;
        Assert.Equal("hard", events.OfType<VmShutDown>().Single(e => e.Vm == "gpu").How);
        // Not before the bound (the ticker moves the fake clock on its own, so how soon after it is not asserted).
        Assert.True((off - asked).TotalSeconds >= 120, $"powered off {(off - asked).TotalSeconds} s after the request");
        Assert.Contains(h.Log.Lines, l => l.Contains("vm-gpu", StringComparison.Ordinal) && l.Contains("no clean shutdown within 0:02:00 (--shutdown-timeout)", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Run_AVmThatDoesNotStartAgain_StopsTheRun_RestoreNamesIt_ThenRestoreStartsIt()
    {
        var h = Harness();
        h.Pool.Vms.Single(v => v.Uuid == "gpu").StartFault = "HOST_NOT_ENOUGH_FREE_MEMORY";
        var store = new MemoryJournalStore();
        var report = await h.StartAsync(store, RunMode.Run, options: Pinned(h));

        Assert.Equal(RunOutcome.NeedsOperator, report!.Outcome);
        Assert.Contains(report.OperatorActions, a => a.Contains("xe vm-start uuid=gpu on=xen3", StringComparison.Ordinal));
        Assert.False(h.Pool.Vms.Single(v => v.Uuid == "gpu").Running);
        Assert.Equal(0, h.Pool.H("h4").BootCount);

        // Memory freed: 'rollreboot restore' starts it (the journal still says it is the run's to start).
        h.Pool.Vms.Single(v => v.Uuid == "gpu").StartFault = null;
        var restore = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Restore);
        Assert.Equal(RunOutcome.Done, restore!.Outcome);
        Assert.True(h.Pool.Vms.Single(v => v.Uuid == "gpu").Running);
        Assert.Equal("h3", h.Pool.Vms.Single(v => v.Uuid == "gpu").Host);
        Assert.Empty(h.Pool.Violations);
    }

    [Fact]
    public async Task CrashAtEachAppend_RestoreLeavesNoVmHalted_ResumeRebootsEveryHostOnce()
    {
        var clean = Harness();
        var counting = new MemoryJournalStore();
        await clean.StartAsync(counting, RunMode.Run, options: Pinned(clean));
        var appends = counting.Appends;
        Assert.True(appends > 40, $"{appends} appends");
        for (var n = 1; n <= appends; n++)
        {
            foreach (var then in new[] { RunMode.Restore, RunMode.Resume })
            {
                var h = Harness();
                var before = h.Audit();
                var store = h.CrashingAt(n);
                await h.StartAsync(store, RunMode.Run, options: Pinned(h));
                if (store.Lines.Count == 0)
                {
                    Assert.Equal(before, h.Audit());
                    continue;
                }

                var context = $"crash at append {n} of {appends}, then {then}: {string.Join(" ", RunJournal.Read(new MemoryJournalStore(store.Lines)).Select(e => e.Kind).TakeLast(3))}";
                var report = await h.ContinueAsync(new MemoryJournalStore(store.Lines), then, Pinned(h));
                Assert.True(report is { Outcome: RunOutcome.Done }, context + ": " + report?.Outcome + " " + report?.Message + " " + string.Join("; ", report?.OperatorActions ?? []));
                Assert.Equal(before, h.Audit());
                Assert.Empty(h.Pool.Violations);
                Assert.Equal("h3", h.Pool.Vms.Single(v => v.Uuid == "gpu").Host);
                Assert.All(h.Pool.Hosts, x => Assert.True(then == RunMode.Resume ? x.BootCount == 1 : x.BootCount <= 1, $"{context}: {x.Name} rebooted {x.BootCount} times"));
            }
        }
    }
}
