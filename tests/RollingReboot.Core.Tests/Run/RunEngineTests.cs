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

    [Theory]
    [InlineData("lost-reply", RunOutcome.Done)]
    [InlineData("refused", RunOutcome.StoppedRestored)]
    public async Task DisableHaFails_TheRunLooksAtHa_GoesOnIfOff_StopsIfOn_HaNeverLeftOff(string fault, RunOutcome outcome)
    {
        var h = new CrashHarness();
        h.Pool.DisableHaFault = fault;
        var before = h.Audit();
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);
        Assert.Equal(outcome, report!.Outcome);
        Assert.Equal(before, h.Audit());
        Assert.All(h.Pool.Hosts, x => Assert.Equal(outcome == RunOutcome.Done ? 1 : 0, x.BootCount));
    }

    [Fact]
    public async Task HaOn_UnprotectedVmXapiWouldNotMove_IsABlockerBeforeAnythingChanges()
    {
        // XAPI said only "not HA-protected" for vm2-1; asked about its planned target, it names the real reason.
        var h = new CrashHarness();
        h.Pool.Unprotected.Add("vm2-1");
        h.Pool.Unprotected.Add("vm3-1");
        h.Pool.CannotBootHere["vm2-1"] = ["VM_REQUIRES_NETWORK", "vm2-1", "net-storage"];
        var before = h.Audit();
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);

        Assert.Equal(RunOutcome.Blocked, report!.Outcome);
        var blocker = Assert.Single(report.Plan!.Blockers);
        Assert.Equal("VM_REQUIRES_NETWORK", blocker.Code);
        Assert.Contains("HA hid this", blocker.Message, StringComparison.Ordinal);
        Assert.Contains(h.Pool.BootHereAsked, a => a.StartsWith("vm3-1@", StringComparison.Ordinal));
        Assert.Equal(before, h.Audit());
        Assert.All(h.Pool.Hosts, x => Assert.Equal(0, x.BootCount));
    }

    [Fact]
    public async Task Run_PoolWithAutoPowerOn_SwitchesItOffForTheRunAndBack()
    {
        var h = new CrashHarness(autoPowerOn: true);
        var store = new MemoryJournalStore();
        var report = await h.StartAsync(store, RunMode.Run);
        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.Equal("true", h.Pool.OtherConfig["auto_poweron"]);
        var kinds = Kinds(store);
        Assert.True(kinds.IndexOf("pool.autopoweron.off.done") < kinds.IndexOf("host.disable.intent"));
        Assert.Contains("pool.autopoweron.restore.done", kinds);
        Assert.Contains("pool auto_poweron back to true", report.Restored);
    }

    [Fact]
    public async Task Run_EachHostGoesThroughEveryPhaseInOrder()
    {
        var h = new CrashHarness();
        var store = new MemoryJournalStore();
        await h.StartAsync(store, RunMode.Run);
        var events = RunJournal.Read(store);
        var phases = new Dictionary<string, List<Core.Run.State.HostPhase>>();
        var state = Core.Run.State.RunState.Empty;
        foreach (var e in events)
        {
            state = state.Apply(e);
            foreach (var p in state.Hosts.Values)
            {
                var seen = phases.TryGetValue(p.Uuid, out var l) ? l : phases[p.Uuid] = [];
                if (seen.Count == 0 || seen[^1] != p.Phase)
                {
                    seen.Add(p.Phase);
                }
            }
        }

        Core.Run.State.HostPhase[] expected =
        [
            Core.Run.State.HostPhase.Disabled, Core.Run.State.HostPhase.Evacuated, Core.Run.State.HostPhase.RebootRequested,
            Core.Run.State.HostPhase.RebootTaken, Core.Run.State.HostPhase.Back, Core.Run.State.HostPhase.Enabled, Core.Run.State.HostPhase.Done,
        ];
        Assert.Equal(4, phases.Count);
        Assert.All(phases.Values, p => Assert.Equal(expected, p));
    }

    [Fact]
    public async Task Run_HostBackWithMandatoryGuidance_NeedsOperator_NamingTheGuidanceFromTheHostRecord()
    {
        // xapi's HOST_PENDING_MANDATORY_GUIDANCE_NOT_EMPTY carries the host alone; what is pending is in its record.
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
    public async Task KilledWhileItsMigrationsRun_ResumeWaitsForThemToLand_ThenFinishes()
    {
        // Killed once the first migration was asked for: XAPI carries it on without the client, the VM still on its
        // source with its memory reserved on the target (message_forwarding.ml pool_migrate, reserve_memory_for_vm).
        // A tight pool (11 VMs of 4 GiB a 64 GiB host: one VM's room to spare), so a plan that counts an in-flight VM
        // on both hosts finds no room for it.
        // Each migration takes ten minutes, so every --threads slot has asked for one before the first ends.
        var h = new CrashHarness(vmsPerHost: 11);
        h.Pool.MigrationTime = TimeSpan.FromMinutes(10);
        var before = h.Audit();
        var store = h.CrashingAtFirst("vm.migrate.done");
        await using (var ticker = new Ticker(h.Clock, TimeSpan.FromMilliseconds(500)))
        {
            await h.StartAsync(store, RunMode.Run);
        }

        var asked = RunJournal.Read(new MemoryJournalStore(store.Lines)).OfType<MigrationIntended>().ToList();
        var done = RunJournal.Read(new MemoryJournalStore(store.Lines)).OfType<MigrationDone>().Select(d => d.Vm).ToHashSet(StringComparer.Ordinal);
        var running = asked.Where(m => !done.Contains(m.Vm)).ToList();
        Assert.True(running.Count >= 2, $"{running.Count} migration(s) running at the kill");
        foreach (var m in running)
        {
            var vm = h.Pool.Vms.First(v => v.Uuid == m.Vm);
            vm.Host = m.From!;
            vm.MigratingTo = m.To;
            vm.MigratingUntil = h.Clock.GetUtcNow() + TimeSpan.FromMinutes(5);
        }

        h.Pool.MigrationTime = TimeSpan.Zero;
        var resumed = new MemoryJournalStore(store.Lines);
        var report = await h.ContinueAsync(resumed, RunMode.Resume);

        Assert.True(report!.Outcome == RunOutcome.Done, report.Message);
        Assert.Contains(h.Log.Lines, l => l.Contains("still running; waiting for them", StringComparison.Ordinal));
        // Each landed where the dead run sent it, and the journal says so: nothing is left in flight.
        Assert.All(running, m => Assert.Contains(RunJournal.Read(resumed).OfType<MigrationDone>(), d => d.Vm == m.Vm && d.To == m.To));
        Assert.Empty(h.Pool.Violations);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
        Assert.Equal(before, h.Audit());
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

    [Fact]
    public async Task ResumeWhileTheRunStillBeats_IsRefused_OnceTheHeartbeatStops_TakesOver()
    {
        var n = await AppendOfAsync("host.empty");
        var h = new CrashHarness { KnowsProcesses = false };
        var before = h.Audit();
        var store = h.CrashingAt(n);
        await h.StartAsync(store, RunMode.Run);
        var heartbeat = h.Pool.OtherConfig["rollreboot-lock-heartbeat"];

        // Another machine cannot tell the process is gone: its fresh heartbeat says the run may still be going.
        var refused = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Resume);
        Assert.Equal(RunOutcome.Blocked, refused!.Outcome);
        Assert.Contains("still running", refused.Message, StringComparison.Ordinal);
        Assert.Equal(heartbeat, h.Pool.OtherConfig["rollreboot-lock-heartbeat"]);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(0, x.BootCount));

        // No heartbeat for longer than its timeout: the run is dead, resume takes the lock over and finishes.
        h.Clock.Advance(h.Options.HeartbeatTimeout);
        var resumed = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Resume);
        Assert.Equal(RunOutcome.Done, resumed!.Outcome);
        Assert.Contains(h.Log.Lines, l => l.Contains("Taking over the lock", StringComparison.Ordinal));
        Assert.All(h.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
        Assert.Equal(before, h.Audit());
    }

    [Fact]
    public async Task FreshRun_AgainstADeadRunsLock_IsBlockedAsStale_AgainstALiveOne_AsLocked()
    {
        var n = await AppendOfAsync("originals");
        var h = new CrashHarness { KnowsProcesses = false };
        var store = h.CrashingAt(n);
        await h.StartAsync(store, RunMode.Run);

        var live = await h.StartAsync(new MemoryJournalStore(), RunMode.Run, runId: "run-2");
        Assert.Equal(RunOutcome.Blocked, live!.Outcome);
        Assert.Contains("locked by another run", live.Message, StringComparison.Ordinal);

        h.Clock.Advance(h.Options.HeartbeatTimeout);
        var stale = await h.StartAsync(new MemoryJournalStore(), RunMode.Run, runId: "run-3");
        Assert.Equal(RunOutcome.Blocked, stale!.Outcome);
        Assert.Contains("stale lock", stale.Message, StringComparison.Ordinal);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(0, x.BootCount));
    }

    [Fact]
    public async Task Run_RenewsItsHeartbeatWhileItWorks_AndRemovesItWithTheLock()
    {
        var h = new CrashHarness();
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);
        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.DoesNotContain("rollreboot-lock-heartbeat", h.Pool.OtherConfig.Keys);
        var elapsed = h.Clock.GetUtcNow() - new DateTimeOffset(2026, 11, 22, 1, 0, 0, TimeSpan.Zero);
        var beats = h.Pool.Added.Count(k => k == "rollreboot-lock-heartbeat");
        Assert.True(elapsed > TimeSpan.FromMinutes(3), $"the run lasted {elapsed} of its clock");
        // One when the lock is taken, then about one every 2 minutes (RunOptions.HeartbeatInterval).
        var intervals = elapsed / TimeSpan.FromMinutes(2);
        Assert.InRange(beats, 1 + (int)(intervals * 0.5), 2 + (int)intervals);
    }
}
