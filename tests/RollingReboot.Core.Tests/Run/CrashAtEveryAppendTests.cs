using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>
/// The process dies at each journal append of a mode in turn (the line not written, the pool frozen, as kill -9 leaves
/// them); then the journal is folded and 'restore' must give back the original pool, and 'resume' must finish the job
/// with every host rebooted exactly once. In memory on a fake clock: milliseconds a case, every append of every mode.
/// </summary>
public sealed class CrashAtEveryAppendTests
{
    public static TheoryData<bool, bool, bool> Pools => new() { { true, true, false }, { false, true, false }, { true, false, false }, { true, true, true } };

    private static async Task<int> AppendsOfACleanRunAsync(Func<CrashHarness, MemoryJournalStore, Task> run, bool ha, bool cloud, bool autoPowerOn = false)
    {
        var h = new CrashHarness(ha: ha, cloudStack: cloud, autoPowerOn: autoPowerOn);
        var store = new MemoryJournalStore();
        await run(h, store);
        Assert.Empty(h.Pool.Violations);
        return store.Appends;
    }

    [Theory]
    [MemberData(nameof(Pools))]
    public async Task Run_CrashAtEachAppend_RestoreGivesBackThePool_ResumeRebootsEveryHostOnce(bool ha, bool cloud, bool autoPowerOn)
    {
        var appends = await AppendsOfACleanRunAsync((h, s) => h.StartAsync(s, RunMode.Run), ha, cloud, autoPowerOn);
        Assert.True(appends > 30, $"a four-host run journals more than {appends} lines");
        for (var n = 1; n <= appends; n++)
        {
            foreach (var then in new[] { RunMode.Restore, RunMode.Resume })
            {
                var h = new CrashHarness(ha: ha, cloudStack: cloud, autoPowerOn: autoPowerOn);
                var before = h.Audit();
                var store = h.CrashingAt(n);
                await h.StartAsync(store, RunMode.Run);
                var context = $"crash at append {n} of {appends}, then {then}: {string.Join(" ", RunJournal.Read(new MemoryJournalStore(store.Lines)).Select(e => e.Kind).TakeLast(3))}";
                if (store.Lines.Count == 0)
                {
                    // Killed before its first line: nothing was changed.
                    Assert.Equal(before, h.Audit());
                    continue;
                }

                var report = await h.ContinueAsync(new MemoryJournalStore(store.Lines), then);
                Assert.True(report is { Outcome: RunOutcome.Done }, context + ": " + report?.Outcome + " " + report?.Message + " " + string.Join("; ", report?.OperatorActions ?? []));
                Assert.Equal(before, h.Audit());
                Assert.Empty(h.Pool.Violations);
                Assert.All(h.Pool.Hosts, x => Assert.True(x.BootCount <= 1, $"{context}: {x.Name} rebooted {x.BootCount} times"));
                if (then == RunMode.Resume)
                {
                    Assert.All(h.Pool.Hosts, x => Assert.True(x.BootCount == 1, $"{context}: {x.Name} rebooted {x.BootCount} times"));
                }
            }
        }
    }

    [Fact]
    public async Task Evacuate_CrashAtEachAppend_RestoreGivesBackThePoolOrLeavesTheHostOutAsMarked()
    {
        var appends = await AppendsOfACleanRunAsync((h, s) => h.StartAsync(s, RunMode.Evacuate, "h3"), true, true);
        for (var n = 1; n <= appends; n++)
        {
            var h = new CrashHarness();
            var before = h.Audit();
            var store = h.CrashingAt(n);
            await h.StartAsync(store, RunMode.Evacuate, "h3");
            if (store.Lines.Count == 0)
            {
                Assert.Equal(before, h.Audit());
                continue;
            }

            var report = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Restore);
            Assert.True(report is { Outcome: RunOutcome.Done }, $"crash at {n}: {report?.Message}");
            var left = h.Pool.OtherConfig.ContainsKey("rollreboot-evacuated-h3");
            if (left)
            {
                // The evacuation had finished: the host stays out, empty, as marked; everything else as it was.
                Assert.False(h.Pool.H("h3").Enabled);
                Assert.DoesNotContain(h.Pool.Vms, v => v.Host == "h3");
                Assert.Equal(before.Replace("xen3:enabled", "xen3:disabled", StringComparison.Ordinal), h.Audit().Replace("rollreboot-evacuated-h3", "", StringComparison.Ordinal));
            }
            else
            {
                Assert.Equal(before, h.Audit());
            }

            Assert.All(h.Pool.Hosts, x => Assert.Equal(0, x.BootCount));
        }
    }

    [Fact]
    public async Task Return_CrashAtEachAppend_RestoreLeavesAWholePool_ReturnAgainBringsTheVmsHome()
    {
        static async Task<CrashHarness> EvacuatedAsync()
        {
            var h = new CrashHarness();
            await h.StartAsync(new MemoryJournalStore(), RunMode.Evacuate, "h3");
            return h;
        }

        var clean = await EvacuatedAsync();
        var cleanStore = new MemoryJournalStore();
        await clean.StartAsync(cleanStore, RunMode.Return, "h3");
        var appends = cleanStore.Appends;
        for (var n = 1; n <= appends; n++)
        {
            var h = await EvacuatedAsync();
            var store = h.CrashingAt(n);
            await h.StartAsync(store, RunMode.Return, "h3");
            if (store.Lines.Count > 0)
            {
                var report = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Restore);
                Assert.True(report is { Outcome: RunOutcome.Done }, $"crash at {n}: {report?.Message}");
            }

            Assert.DoesNotContain("rollreboot-lock", h.Pool.OtherConfig.Keys);
            Assert.True(h.Pool.Ha.Enabled);
            // Whatever the moment, 'rollreboot return' run again finishes the job.
            if (h.Pool.OtherConfig.ContainsKey("rollreboot-evacuated-h3") || !h.Pool.H("h3").Enabled)
            {
                var again = await h.StartAsync(new MemoryJournalStore(), RunMode.Return, "h3");
                Assert.Equal(RunOutcome.Done, again!.Outcome);
            }

            Assert.True(h.Pool.H("h3").Enabled, $"crash at {n}");
            Assert.DoesNotContain("rollreboot-evacuated-h3", h.Pool.OtherConfig.Keys);
        }
    }

    [Fact]
    public async Task Restore_CrashAtEachAppendOfTheRestore_ThenRestoreAgain_GivesBackThePool()
    {
        // A run killed mid-way (second host evacuating), then a restore that is itself killed at each of its lines.
        var probe = new CrashHarness();
        var full = new MemoryJournalStore();
        await probe.StartAsync(full, RunMode.Run);
        var midway = RunJournal.Read(full).Select(e => e.Kind).ToList().FindIndex(k => k == "host.disable.intent") + 1;
        midway = RunJournal.Read(full).Select(e => e.Kind).ToList().FindIndex(midway, k => k == "host.disable.intent") + 2;

        for (var n = 1; n <= 40; n++)
        {
            var h = new CrashHarness();
            var before = h.Audit();
            var run = h.CrashingAt(midway);
            await h.StartAsync(run, RunMode.Run);
            var restore = new MemoryJournalStore(run.Lines) { CrashAt = run.Lines.Count + n, OnCrash = h.Pool.Freeze };
            var first = await h.ContinueAsync(restore, RunMode.Restore);
            var second = await h.ContinueAsync(new MemoryJournalStore(restore.Lines), RunMode.Restore);
            Assert.True(second is { Outcome: RunOutcome.Done }, $"restore crashed at its line {n}: {second?.Message}");
            Assert.Equal(before, h.Audit());
            if (first is not null)
            {
                break;
            }
        }
    }
}
