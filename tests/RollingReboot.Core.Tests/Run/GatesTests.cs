using System.Text.RegularExpressions;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Tests.Run.Fakes;
using RollingReboot.Core.Time;

namespace RollingReboot.Core.Tests.Run;

/// <summary>The alert gate's choice of alerts (kured's semantics) and the window at the start of a run.</summary>
public sealed class GatesTests
{
    private sealed class FixedAlerts(params ActiveAlert[] alerts) : IAlertSource
    {
        public string Description => "Prometheus at http://prom:9090";

        public bool Unreachable { get; set; }

        public Task<IReadOnlyList<ActiveAlert>> GetActiveAlertsAsync(CancellationToken cancellationToken = default) =>
            Unreachable ? throw new AlertSourceException("Connection refused (prom:9090)") : Task.FromResult<IReadOnlyList<ActiveAlert>>(alerts);
    }

    private static readonly ActiveAlert[] s_alerts =
    [
        new("Watchdog", "firing"), new("HostDown", "firing"), new("HostDown", "firing"), new("DiskFilling", "pending"),
    ];

    private static async Task<string?> WhyAsync(AlertOptions options, params ActiveAlert[] alerts) =>
        (await new AlertGate(new FixedAlerts(alerts), options).CheckAsync())?.Why;

    [Fact]
    public async Task NoFilter_EveryPendingOrFiringAlertCounts_EachNameOnce()
    {
        var why = await WhyAsync(new AlertOptions(), s_alerts);
        Assert.Equal("3 alert(s) active in Prometheus at http://prom:9090 (firing/pending): DiskFilling, HostDown, Watchdog", why);
    }

    [Fact]
    public async Task Filter_LeavesOutTheNamesItFinds_Unanchored() =>
        Assert.Equal("1 alert(s) active in Prometheus at http://prom:9090 (firing): HostDown",
            await WhyAsync(new AlertOptions { Filter = new Regex("atch|Disk") }, s_alerts));

    [Fact]
    public async Task FilterMatchOnly_OnlyTheNamesItFindsCount()
    {
        Assert.Equal("1 alert(s) active in Prometheus at http://prom:9090 (pending): DiskFilling",
            await WhyAsync(new AlertOptions { Filter = new Regex("^Disk"), FilterMatchOnly = true }, s_alerts));
        Assert.Null(await WhyAsync(new AlertOptions { Filter = new Regex("^Nothing"), FilterMatchOnly = true }, s_alerts));
    }

    [Fact]
    public async Task FiringOnly_PendingAlertsDoNotCount()
    {
        Assert.Null(await WhyAsync(new AlertOptions { FiringOnly = true }, new ActiveAlert("DiskFilling", "pending")));
        Assert.Equal("1 alert(s) active in Prometheus at http://prom:9090 (firing): HostDown",
            await WhyAsync(new AlertOptions { FiringOnly = true, Filter = new Regex("Watchdog") }, s_alerts));
    }

    [Fact]
    public async Task NoAlerts_Passes_AnUnreachableSourceHolds()
    {
        Assert.Null(await WhyAsync(new AlertOptions()));
        var hold = await new AlertGate(new FixedAlerts { Unreachable = true }, new AlertOptions()).CheckAsync();
        Assert.True(hold!.Unreadable);
        Assert.Equal("Prometheus at http://prom:9090 could not be asked for alerts (Connection refused (prom:9090))", hold.Why);
    }

    private static MaintenanceWindow Window(string text)
    {
        Assert.True(MaintenanceWindow.TryParse(text, TimeZoneInfo.Utc, out var window, out var error), error);
        return window!;
    }

    [Fact]
    public async Task FiringAlertAtTheStart_IsABlocker_NothingChanged()
    {
        var h = new CrashHarness();
        var before = h.Audit();
        var services = new RunServices(h.Pool, new ClusterBinding(h.Cloud!, h.Cloud!.Cluster), h.Log, h.Clock)
        {
            Alerts = new AlertGate(new FixedAlerts(new ActiveAlert("HostDown", "firing")), new AlertOptions()),
        };
        var report = await new RunEngine(services, h.Options, "C").StartAsync(new MemoryJournalStore(), "run-1", RunMode.Run, await h.SnapshotAsync(), null, CancellationToken.None, CancellationToken.None);
        Assert.Equal(RunOutcome.Blocked, report.Outcome);
        Assert.Contains(report.Plan!.Blockers, b => b.Code == "ALERTS_ACTIVE" && b.Message.Contains("HostDown", StringComparison.Ordinal));
        Assert.Equal(before, h.Audit());
        Assert.All(h.Pool.Hosts, x => Assert.Equal(0, x.BootCount));
    }

    [Fact]
    public async Task StartedInsideTheWindow_Runs_AndTheOpeningsEndIsTheWindowsEnd()
    {
        // The harness's clock: Sunday 2026-11-22 01:00 UTC.
        var h = new CrashHarness();
        var options = h.Options with { Window = Window("Sat-Sun 00:00-06:00 UTC") };
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run, options: options);
        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
        Assert.Contains(h.Log.Lines, l => l.StartsWith("I In the maintenance window", StringComparison.Ordinal) && l.Contains("Sat,Sun 00:00-06:00 UTC", StringComparison.Ordinal) && l.Contains("Sun 2026-11-22 06:00 +00:00", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StartedOutsideTheWindow_IsRefused_WithTheNextOpening_ResumeIsPausedAndStaysOpen()
    {
        var h = new CrashHarness();
        var before = h.Audit();
        var store = new MemoryJournalStore();
        var options = h.Options with { Window = Window("Sat 01:00-05:00 UTC") };
        var report = await h.StartAsync(store, RunMode.Run, options: options);
        Assert.Equal(RunOutcome.Blocked, report!.Outcome);
        Assert.Contains("outside the maintenance window Sat 01:00-05:00 UTC: next opening Sat 2026-11-28 01:00 +00:00 (in 6d)", report.Message, StringComparison.Ordinal);
        Assert.Equal(before, h.Audit());

        // A paused run resumed outside the window: paused again, its journal still open.
        var paused = new MemoryJournalStore();
        Assert.Equal(RunOutcome.StoppedRestored, (await h.StartAsync(paused, RunMode.Run, options: h.Options with { PauseAfter = 1 }))!.Outcome);
        var resumed = await h.ContinueAsync(paused, RunMode.Resume, options);
        Assert.Equal(RunOutcome.StoppedRestored, resumed!.Outcome);
        Assert.Contains("outside the maintenance window", resumed.Message, StringComparison.Ordinal);
        Assert.False(RunEngine.ReadState(paused).Ended);
        Assert.Equal(1, h.Pool.Hosts.Sum(x => x.BootCount));
        Assert.Equal(RunOutcome.Done, (await h.ContinueAsync(paused, RunMode.Resume))!.Outcome);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
    }
}
