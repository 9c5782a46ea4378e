using RollingReboot.Core.Planning;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>
/// --apply-updates in the run (issue 20), on the fake pool: master first; a host whose updates ask for a reboot is
/// installed while empty and rebooted once; one asking for restart_toolstack only is installed in place and its
/// toolstack restarted, not rebooted; one with nothing to install is left alone; a failed installation stops the run
/// with the host named and put back; killed at any journal append, resume installs every update exactly once.
/// </summary>
public sealed class ApplyUpdatesRunTests
{
    private static RunOptions Options(bool applyUpdates = true) =>
        new() { Operator = "test", Machine = "test", UseSshProof = false, Plan = new PlanOptions { ApplyUpdates = applyUpdates } };

    /// <summary>xen1 (master) and xen4: a kernel fix (reboot_host); xen2: a toolstack fix only; xen3: nothing.</summary>
    private static CrashHarness Pool()
    {
        var h = new CrashHarness(options: Options());
        h.Pool.HasUpdates = true;
        h.Pool.PendingUpdates["h1"] = new() { ["XS-KERNEL"] = ["reboot_host"], ["XS-XAPI"] = ["restart_toolstack"] };
        h.Pool.PendingUpdates["h2"] = new() { ["XS-XAPI"] = ["restart_toolstack"] };
        h.Pool.PendingUpdates["h4"] = new() { ["XS-KERNEL"] = ["reboot_host"] };
        return h;
    }

    private static void AllDone(CrashHarness h, string context)
    {
        Assert.Empty(h.Pool.Violations);
        Assert.Equal(new[] { 1, 0, 0, 1 }, h.Pool.Hosts.Select(x => x.BootCount).ToArray());
        Assert.Equal(["h1", "h2", "h4"], h.Pool.Applied.Order(StringComparer.Ordinal));
        Assert.All(h.Pool.PendingUpdates.Values, p => Assert.Empty(p));
        Assert.All(h.Pool.Hosts, x => Assert.True(x.Enabled, $"{context}: {x.Name} disabled"));
        Assert.All(h.Pool.Hosts, x => Assert.Empty(x.Guidances));
        Assert.True(h.Pool.Ha.Enabled, context);
        Assert.Equal("Managed", h.Cloud!.ManagedState);
    }

    [Fact]
    public async Task MasterFirst_ToolstackHostNotRebooted_NothingToInstallLeftAlone_RebootHostsRebootedOnce()
    {
        var h = Pool();
        var store = new MemoryJournalStore();

        var report = await h.StartAsync(store, RunMode.Run);

        Assert.True(report is { Outcome: RunOutcome.Done }, report?.Message);
        AllDone(h, "clean run");
        Assert.Equal("h1", h.Pool.Applied[0]);
        Assert.Equal(["h2"], h.Pool.ToolstackRestarts);
        var events = RunJournal.Read(store).ToList();
        var decided = events.OfType<PlanDecided>().Last().Updates!;
        Assert.Equal("Reboot", decided["h1"]);
        Assert.Equal("RestartToolstack", decided["h2"]);
        Assert.Equal("None", decided["h3"]);
        // The master installs (and reboots) before any other host installs anything.
        var kinds = events.Select(e => e switch
        {
            UpdateIntended u => "apply " + u.Host,
            HostFinished f => "done " + f.Host,
            _ => null,
        }).Where(k => k is not null).ToList();
        Assert.Equal(["apply h1", "done h1", "apply h2", "done h2", "apply h4", "done h4"], kinds);
        Assert.Equal(HostResult.Updated, events.OfType<HostFinished>().Single(f => f.Host == "h2").Result);
    }

    [Fact]
    public async Task AFailedInstallation_StopsTheRunWithTheHostNamed_PutBack_ThenResumeInstallsItOnce()
    {
        var h = Pool();
        h.Pool.ApplyFails.Add("h4");
        var store = new MemoryJournalStore();

        var report = await h.StartAsync(store, RunMode.Run);

        Assert.NotNull(report);
        Assert.Equal(RunOutcome.StoppedRestored, report.Outcome);
        Assert.Contains("installing the updates of xen4 failed", report.Message, StringComparison.Ordinal);
        Assert.Contains("APPLY_UPDATES_FAILED", report.Message, StringComparison.Ordinal);
        Assert.Equal(0, h.Pool.H("h4").BootCount);
        Assert.True(h.Pool.H("h4").Enabled);
        Assert.True(h.Pool.Ha.Enabled);
        Assert.Equal("Managed", h.Cloud!.ManagedState);
        Assert.Empty(h.Pool.Violations);

        var resumed = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Resume);

        Assert.True(resumed is { Outcome: RunOutcome.Done }, resumed?.Message);
        AllDone(h, "resumed");
    }

    [Fact]
    public async Task ASyncThatNeverAnswers_IsBoundedByTheUpdateTimeout_AndNothingIsChanged()
    {
        var h = Pool();
        h.Pool.SyncHangs = true;
        var before = h.Audit();

        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run);

        Assert.NotNull(report);
        Assert.NotEqual(RunOutcome.Done, report.Outcome);
        Assert.Equal(before, h.Audit());
        Assert.Empty(h.Pool.Applied);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(0, x.BootCount));
    }

    [Fact]
    public async Task KilledAtAnyAppend_ResumeInstallsEveryUpdateOnce_AndRebootsOnlyWhatMustReboot()
    {
        var clean = Pool();
        var cleanStore = new MemoryJournalStore();
        await clean.StartAsync(cleanStore, RunMode.Run);
        var appends = cleanStore.Appends;
        Assert.True(appends > 30, $"{appends} appends");
        for (var n = 1; n <= appends; n++)
        {
            var h = Pool();
            var store = h.CrashingAt(n);
            await h.StartAsync(store, RunMode.Run);
            var context = $"crash at append {n} of {appends}: {string.Join(" ", RunJournal.Read(new MemoryJournalStore(store.Lines)).Select(e => e.Kind).TakeLast(3))}";
            if (store.Lines.Count == 0)
            {
                continue;
            }

            var report = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Resume);
            Assert.True(report is { Outcome: RunOutcome.Done }, context + ": " + report?.Outcome + " " + report?.Message + " " + string.Join("; ", report?.OperatorActions ?? []));
            AllDone(h, context);
        }
    }
}
