using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>
/// The XenServer 8 patch workflow in the run (issue 15 section 2): host.apply_updates leaves a host disabled with
/// mandatory guidance reboot_host, and host.enable refuses a host with pending mandatory guidance until it is applied
/// (xen-api ocaml/xapi/xapi_host.ml apply_updates and assert_safe_to_reenable, v24.10.0+). The run reboots such a host
/// and xapi enables it after; restore, resume and a skipped host never ask XAPI for a host.enable it will refuse.
/// The fake pool has no software_version, so the newest xapi behaviour is assumed, as a real XenServer 8 has it.
/// </summary>
public sealed class PatchedHostRunTests
{
    /// <summary>Four hosts; xen3 patched by host.apply_updates: disabled, empty, reboot_host pending.</summary>
    private static CrashHarness Patched()
    {
        var h = new CrashHarness();
        var xen3 = h.Pool.H("h3");
        xen3.Enabled = false;
        xen3.Guidances.Add("reboot_host");
        h.Pool.Vms.RemoveAll(v => v.Host == "h3");
        return h;
    }

    private static async Task<int> AppendAfterFirstAsync(string kind)
    {
        var clean = Patched();
        var store = new MemoryJournalStore();
        await clean.StartAsync(store, RunMode.Run);
        return RunJournal.Read(store).Select(e => e.Kind).ToList().IndexOf(kind) + 2;
    }

    [Fact]
    public async Task HostDisabledUntilReboot_IsRebootedOnce_AndEnabledAfter_WithoutARefusedEnable()
    {
        var h = Patched();
        var store = new MemoryJournalStore();

        var report = await h.StartAsync(store, RunMode.Run);

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
        Assert.True(h.Pool.H("h3").Enabled);
        Assert.Empty(h.Pool.H("h3").Guidances);
        Assert.Empty(h.Pool.RefusedEnables);
        Assert.Empty(h.Pool.Violations);
        Assert.Empty(report.OperatorActions);
        var originals = RunJournal.Read(store).OfType<OriginalsRecorded>().Single();
        Assert.Equal(["h3"], originals.DisabledUntilReboot);
    }

    [Fact]
    public async Task StoppedBeforeItsReboot_RestoreLeavesItDisabledAsItWas_AndSaysWhy_WithoutAskingXapi()
    {
        // Killed just after the master's reboot was finished: xen3 has not been rebooted.
        var n = await AppendAfterFirstAsync("host.done");
        var h = Patched();
        var before = h.Audit();
        var store = h.CrashingAt(n);
        await h.StartAsync(store, RunMode.Run);
        Assert.Equal(0, h.Pool.H("h3").BootCount);

        var report = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Restore);

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.Equal(before, h.Audit());
        Assert.False(h.Pool.H("h3").Enabled);
        Assert.Empty(h.Pool.RefusedEnables);
        var said = Assert.Single(report.Restored, r => r.Contains("xen3", StringComparison.Ordinal));
        Assert.StartsWith("host xen3 left disabled, as it was before the run: mandatory guidance reboot_host is pending and XAPI refuses host.enable until the host reboots", said, StringComparison.Ordinal);
        Assert.Empty(report.OperatorActions);
    }

    [Fact]
    public async Task StoppedBeforeItsReboot_ResumeRebootsIt_AndEnablesIt()
    {
        var n = await AppendAfterFirstAsync("host.done");
        var h = Patched();
        var store = h.CrashingAt(n);
        await h.StartAsync(store, RunMode.Run);

        var report = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Resume);

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
        Assert.True(h.Pool.H("h3").Enabled);
        Assert.Empty(h.Pool.RefusedEnables);
    }

    [Fact]
    public async Task HostBackWithAGuidanceNotAReboot_StopsForTheOperator_AndTheRestoreDoesNotAskAgain()
    {
        var h = new CrashHarness();
        h.Pool.H("h2").GuidanceOnReturn = "restart_toolstack";
        var store = new MemoryJournalStore();

        var report = await h.StartAsync(store, RunMode.Run);

        Assert.Equal(RunOutcome.NeedsOperator, report!.Outcome);
        Assert.False(h.Pool.H("h2").Enabled);
        // The one refused host.enable is the one that found the guidance after the reboot; the restore only reads.
        Assert.Equal(["h2"], h.Pool.RefusedEnables);
        Assert.Contains(report.OperatorActions, a => a.StartsWith("host xen2 stays disabled: mandatory guidance restart_toolstack is pending and XAPI refuses host.enable until it is applied; restart its toolstack ('xe host-restart-agent host=xen2')", StringComparison.Ordinal));
        Assert.True(h.Pool.Ha.Enabled);
    }

    [Fact]
    public async Task ResumeFindsAHostItDisabledNowHeldByGuidance_DoesNotEnableIt_AndTheEndSaysWhatRemains()
    {
        // Killed after xen2 was disabled by the run; meanwhile someone applied updates that want a toolstack restart.
        var clean = new CrashHarness();
        var cleanStore = new MemoryJournalStore();
        await clean.StartAsync(cleanStore, RunMode.Run);
        var events = RunJournal.Read(cleanStore).ToList();
        var n = events.FindIndex(e => e is HostDisableIntended d && d.Host == "h2") + 2;
        var h = new CrashHarness();
        var store = h.CrashingAt(n);
        await h.StartAsync(store, RunMode.Run);
        Assert.False(h.Pool.H("h2").Enabled);
        h.Pool.H("h2").Guidances.Add("restart_toolstack");

        var report = await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Resume);

        Assert.Empty(h.Pool.RefusedEnables);
        Assert.Equal(RunOutcome.NeedsOperator, report!.Outcome);
        Assert.Equal(0, h.Pool.H("h2").BootCount);
        Assert.Contains(h.Log.Lines, l => l.Contains("host xen2 stays disabled: mandatory guidance restart_toolstack is pending", StringComparison.Ordinal));
        Assert.Contains(report.OperatorActions, a => a.Contains("xe host-restart-agent host=xen2", StringComparison.Ordinal));
    }
}
