using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>
/// Issue 15 §3 (findings §5.9): a rebooted host is a migration target only once it sees every shared SR. With HA off,
/// xapi enables a host whose PBD failed to plug at start (xapi_host_helpers.ml consider_enabling_host_nolock).
/// </summary>
public sealed class StorageAfterRebootTests
{
    [Fact]
    public async Task HostBackWithoutASharedSr_IsPluggedAgain_AndTheRunGoesOn()
    {
        var h = new CrashHarness();
        h.Pool.H("h2").UnpluggedOnReturn = "sr-shared";
        var store = new MemoryJournalStore();

        var report = await h.StartAsync(store, RunMode.Run);

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.Equal(["sr-shared@h2"], h.Pool.Plugged);
        Assert.Empty(h.Pool.Violations);
        Assert.Contains(store.Lines, l => l.Contains("\"host.sr.plug.intent\"", StringComparison.Ordinal));
        Assert.Contains(store.Lines, l => l.Contains("\"host.sr.plug.done\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task HostBackWithoutASharedSr_PlugFails_IsKeptDisabled_NoVmSentThere_ResumeAfterTheRepairFinishes()
    {
        var h = new CrashHarness();
        var before = h.Audit();
        var xen2 = h.Pool.H("h2");
        xen2.UnpluggedOnReturn = "sr-shared";
        xen2.PlugRefusal = "SR_BACKEND_FAILURE_73";
        var store = new MemoryJournalStore();

        var report = await h.StartAsync(store, RunMode.Run);

        Assert.Equal(RunOutcome.NeedsOperator, report!.Outcome);
        Assert.Contains("xen2 came back but cannot see shared SR shared (PBD.plug: shared: SR_BACKEND_FAILURE_73)", report.Message, StringComparison.Ordinal);
        Assert.Contains(report.OperatorActions, a => a.Contains("host xen2 stays disabled: it cannot see shared SR shared", StringComparison.Ordinal));
        Assert.False(xen2.Enabled);
        Assert.Empty(h.Pool.Violations);
        Assert.DoesNotContain(h.Pool.Vms, v => v.Running && v.Host == "h2");
        Assert.True(h.Pool.Ha.Enabled);

        // The operator repairs the storage; resume finishes the run and leaves the pool as it was.
        xen2.PlugRefusal = null;
        xen2.Unplugged.Clear();
        var resumed = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Resume);
        Assert.Equal(RunOutcome.Done, resumed!.Outcome);
        Assert.True(xen2.Enabled);
        Assert.Empty(h.Pool.Violations);
        Assert.Equal(before.Split('\n').Where(l => !l.Contains("boot", StringComparison.Ordinal)), h.Audit().Split('\n').Where(l => !l.Contains("boot", StringComparison.Ordinal)));
    }
}
