using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run.Sweep;

/// <summary>
/// Issue 17's faults during restore, each named, and the defects the sweep found, kept as regression cases. The
/// restore follows a run killed while its second host was being evacuated (HA off, cluster unmanaged, a host
/// disabled, the lock held); the fault strikes the restore's first call of that name. Every case must end restored,
/// or with operator actions that name what is left, and a later 'restore' must finish the job.
/// </summary>
public sealed class RestoreFaultTests
{
    private static readonly SweepPool s_pool = FaultSweep.Pools[0];

    public static TheoryData<string, FaultKind> Faults => new()
    {
        // An XAPI outage while HA is being re-enabled: the call never arrives, its reply is lost, or it times out.
        { "pool.enable_ha", FaultKind.Unreachable },
        { "pool.enable_ha", FaultKind.ReplyLost },
        { "pool.enable_ha", FaultKind.Timeout },
        { "pool.enable_ha", FaultKind.Refused },
        // The master not answering during restore (its first read, a host's read).
        { "pool.read", FaultKind.Unreachable },
        { "pool.read", FaultKind.Refused },
        { "host.enable", FaultKind.Timeout },
        // CloudStack while re-managing: a 530, no connection, a lost reply, a timeout.
        { "updateCluster(Managed)", FaultKind.Refused },
        { "updateCluster(Managed)", FaultKind.Unreachable },
        { "updateCluster(Managed)", FaultKind.ReplyLost },
        { "updateCluster(Managed)", FaultKind.Timeout },
        { "listHosts", FaultKind.Timeout },
        // kill -9 in the middle of the restore, then 'rollreboot restore' (and, separately, 'resume').
        { "pool.enable_ha", FaultKind.Crash },
        { "host.enable", FaultKind.Crash },
        { "updateCluster(Managed)", FaultKind.Crash },
        { "pool.remove_from_other_config", FaultKind.Crash },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task Restore_FaultAtACall_EndsRestoredOrNamesWhatIsLeft_AndARestoreFinishes(string call, FaultKind kind)
    {
        foreach (var then in kind == FaultKind.Crash ? new[] { RunMode.Restore, RunMode.Resume } : [RunMode.Restore])
        {
            var c = await FaultSweep.CaseAtAsync(s_pool, "restore", call, kind, then);
            var result = await FaultSweep.RunAsync(c);
            Assert.True(result.Failure is null, $"{c}: {result.Failure}");
            Assert.Equal(call, result.Struck);
        }
    }

    [Fact]
    public async Task HaEnableThatNeverFinishes_IsCancelledAtItsBoundFromTheWork_AnOperatorActionSaysSo_ThenRestoreFinishes()
    {
        var h = s_pool.Harness();
        var before = h.Audit();
        h.Pool.EnableHaHangs = true;
        var store = new MemoryJournalStore();

        var report = await FaultSweep.PumpedAsync(h, () => h.StartAsync(store, RunMode.Run));

        Assert.Equal(RunOutcome.NeedsOperator, report!.Outcome);
        var bound = h.Options.HaBound(h.Pool.Hosts.Count);
        Assert.Equal(TimeSpan.FromMinutes(10), bound);
        Assert.Contains(report.OperatorActions, a => a.Contains("pool.enable_ha did not finish within 0:10:00 (its task was cancelled)", StringComparison.Ordinal)
            && a.Contains("xe pool-ha-enable", StringComparison.Ordinal));
        Assert.False(h.Pool.Ha.Enabled);

        h.Pool.EnableHaHangs = false;
        var restored = await FaultSweep.PumpedAsync(h, () => h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Restore));
        Assert.Equal(RunOutcome.Done, restored!.Outcome);
        Assert.Equal(before, h.Audit());
    }

    [Fact]
    public void Bounds_ComeFromTheWork_WithAFloor()
    {
        var o = new RunOptions();
        Assert.Equal(TimeSpan.FromMinutes(10), o.HaBound(4));
        Assert.Equal(TimeSpan.FromSeconds(3 * 30 * 64), o.HaBound(64));
        Assert.Equal(TimeSpan.FromMinutes(10), o.ReconnectBound(8));
        Assert.Equal(TimeSpan.FromSeconds(180 + (30 * 64)), o.ReconnectBound(64));
        Assert.True(o.MigrationBound(200L << 30) > TimeSpan.FromHours(1));
    }

    [Fact]
    public async Task Regression_RestoreThatCannotReadThePool_NeedsAnOperator_NamingHaTheClusterAndTheHost_NoExceptionEscapes()
    {
        // Found by the sweep: the restore's first read refused, and the exception escaped the engine.
        var c = await FaultSweep.CaseAtAsync(s_pool, "restore", "pool.read", FaultKind.Refused, RunMode.Restore);
        var result = await FaultSweep.RunAsync(c);
        Assert.Null(result.Failure);
        Assert.Equal(RunOutcome.NeedsOperator, result.Outcome);
    }

    [Fact]
    public async Task Regression_ResumeAfterAKilledRestore_LeavesNoLockHeartbeatBehind()
    {
        // Found by the sweep: a restore whose journal died left its heartbeat loop running, which wrote a heartbeat
        // after the next invocation released the lock (FakePool counts that as a violation).
        foreach (var call in new[] { "host.enable", "listClusters(id)", "updateCluster(Managed)" })
        {
            var c = await FaultSweep.CaseAtAsync(new SweepPool("noha-cloud-4", 4, Ha: false, Cloud: true), "restore", call, FaultKind.Crash, RunMode.Resume);
            var result = await FaultSweep.RunAsync(c);
            Assert.True(result.Failure is null, $"{c}: {result.Failure}");
        }
    }

    [Fact]
    public async Task Regression_ACloudStackTimeoutBeforeTheRun_StopsWithNothingChanged_NotAnUnexpectedError()
    {
        // Found by the sweep: a TaskCanceledException from listAsyncJobs reached "unexpected error".
        var c = await FaultSweep.CaseAtAsync(s_pool, "run", "listAsyncJobs", FaultKind.Timeout);
        var result = await FaultSweep.RunAsync(c);
        Assert.True(result.Failure is null, result.Failure);
        Assert.Equal(RunOutcome.StoppedRestored, result.Outcome);
    }
}
