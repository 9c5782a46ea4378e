using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

public sealed class RunEngineTests
{
    private static List<string> Kinds(MemoryJournalStore store) => RunJournal.Read(store).Select(e => e.Kind).ToList();

    /// <summary>The 1-based append at which the clean run wrote this kind (the moment to crash for "killed during it").</summary>
    private static async Task<int> AppendOfAsync(string kind, RunMode mode = RunMode.Run)
    {
        var clean = new CrashHarness();
        var store = new MemoryJournalStore();
        await clean.StartAsync(store, mode, mode == RunMode.Evacuate ? "h3" : null);
        return Kinds(store).IndexOf(kind) + 1;
    }

    [Fact]
    public async Task Run_FourHosts_RebootsEachOnceMasterFirstAndPutsEverythingBack()
    {
        var h = new CrashHarness();
        var before = h.Audit();
        var store = new MemoryJournalStore();
        var report = await h.StartAsync(store, RunMode.Run);

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
        Assert.Equal("xen1", report.Hosts[0].Name);
        Assert.Equal(before, h.Audit());
        Assert.Empty(h.Pool.Violations);
        var kinds = Kinds(store);
        Assert.Equal("run.start", kinds[0]);
        Assert.Equal("run.end", kinds[^1]);
        // The in-memory state was the journal's fold all along.
        Assert.False(Core.Run.State.RunState.Fold(RunJournal.Read(store)).HasOutstanding);
    }

    [Fact]
    public async Task Run_HostBackWithMandatoryGuidance_NeedsOperator_NamingTheGuidanceFromTheHostRecord()
    {
        // xapi's HOST_PENDING_MANDATORY_GUIDANCES_NOT_EMPTY carries the host alone; what is pending is in its record.
        var h = new CrashHarness();
        h.Pool.H("h2").GuidanceOnReturn = "restart_toolstack";

        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);

        Assert.Equal(RunOutcome.NeedsOperator, report!.Outcome);
        Assert.Contains("xen2 came back disabled with mandatory guidance pending (restart_toolstack)", report.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KilledDuringDisableHa_ResumeAndRestore_PutHaBack()
    {
        // Killed with pool.disable_ha done but its end not journaled: the fold must still say HA is the run's to restore.
        var n = await AppendOfAsync("ha.disable.done");
        foreach (var mode in new[] { RunMode.Resume, RunMode.Restore })
        {
            var h = new CrashHarness();
            var before = h.Audit();
            var store = h.CrashingAt(n);
            await h.StartAsync(store, RunMode.Run);
            Assert.False(h.Pool.Ha.Enabled);

            var report = await h.ContinueAsync(new MemoryJournalStore(store.Lines), mode);
            Assert.Equal(RunOutcome.Done, report!.Outcome);
            Assert.Equal(before, h.Audit());
        }
    }

    [Fact]
    public async Task KilledDuringTheLockCall_RestoreReleasesIt_ResumeIsNotRefused()
    {
        // The lock was added to the pool but lock.acquired never journaled.
        var n = await AppendOfAsync("lock.acquired");
        var h = new CrashHarness();
        var before = h.Audit();
        var store = h.CrashingAt(n);
        await h.StartAsync(store, RunMode.Run);
        Assert.Contains("rollreboot-lock", h.Pool.OtherConfig.Keys);

        var restored = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Restore);
        Assert.Equal(RunOutcome.Done, restored!.Outcome);
        Assert.Equal(before, h.Audit());

        var again = new CrashHarness();
        var store2 = again.CrashingAt(n);
        await again.StartAsync(store2, RunMode.Run);
        var resumed = await again.ContinueAsync(new MemoryJournalStore(store2.Lines), RunMode.Resume);
        Assert.Equal(RunOutcome.Done, resumed!.Outcome);
        Assert.All(again.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
        Assert.Equal(before, again.Audit());
    }

    [Fact]
    public async Task KilledAfterEvacuateLeftTheHostOut_RestoreKeepsItOut()
    {
        var n = await AppendOfAsync("run.end", RunMode.Evacuate);
        var h = new CrashHarness();
        var store = h.CrashingAt(n);
        await h.StartAsync(store, RunMode.Evacuate, "h3");

        var report = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Restore);
        Assert.Equal(RunOutcome.Done, report!.Outcome);
        var host = h.Pool.H("h3");
        Assert.False(host.Enabled);
        Assert.Contains("rollreboot-evacuated-h3", h.Pool.OtherConfig.Keys);
        Assert.DoesNotContain("rollreboot-lock", h.Pool.OtherConfig.Keys);
        Assert.True(h.Pool.Ha.Enabled);
        Assert.DoesNotContain(h.Pool.Vms, v => v.Host == "h3");
    }

    [Fact]
    public async Task LockOfAnotherRun_IsBlocked_NothingChanges()
    {
        var h = new CrashHarness();
        h.Pool.OtherConfig["rollreboot-lock"] = """{"runId":"other","operator":"ann","machine":"m","started":"2026-11-22T00:00:00Z","expires":"2030-01-01T00:00:00Z"}""";
        var before = h.Audit();
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);
        Assert.Equal(RunOutcome.Blocked, report!.Outcome);
        Assert.Contains("locked by another run", report.Message, StringComparison.Ordinal);
        Assert.Equal(before, h.Audit());
        Assert.Contains("other", h.Pool.OtherConfig["rollreboot-lock"], StringComparison.Ordinal);
    }
}
