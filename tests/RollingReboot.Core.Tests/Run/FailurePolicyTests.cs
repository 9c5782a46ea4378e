using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>
/// The failure policy (issue 19): --retries / --retry-delay for an evacuation that left VMs behind, --max-failed-hosts
/// for a member that cannot be evacuated (put back as it was) or does not come back (named for an operator), never the
/// master; the report lists each failed host and why.
/// </summary>
public sealed class FailurePolicyTests
{
    private static RunOptions With(CrashHarness h, int retries = 0, int maxFailed = 0) =>
        h.Options with { HostRetries = retries, RetryDelay = TimeSpan.FromMinutes(2), MaxFailedHosts = maxFailed };

    /// <summary>vm-3-1 refuses to leave xen3 (XAPI: VM_BAD_POWER_STATE, say) the first <paramref name="times"/> tries, every one when null.</summary>
    private static Dictionary<string, int> Refuse(CrashHarness h, string vm, int? times)
    {
        var tries = new Dictionary<string, int>(StringComparer.Ordinal);
        h.Pool.MigrationRefusal = (v, _) =>
        {
            if (v != vm)
            {
                return null;
            }

            var n = tries[v] = tries.GetValueOrDefault(v) + 1;
            return times is null || n <= times ? "VM_BAD_POWER_STATE" : null;
        };
        return tries;
    }

    [Fact]
    public async Task Retries_AVmThatMovesOnTheThirdRound_HostRebootedAfterTheDelays_RunDone()
    {
        var h = new CrashHarness();
        // MigrationRetries (2) tries each VM three times in a round: refused 6 times = two rounds.
        var tries = Refuse(h, "vm3-1", 6);
        var store = new MemoryJournalStore();
        RunReport? report;
        await using (new Ticker(h.Clock, TimeSpan.FromSeconds(5)))
        {
            report = await h.StartAsync(store, RunMode.Run, options: With(h, retries: 2));
        }


        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(1, x.BootCount));
        Assert.Equal(7, tries["vm3-1"]);
        Assert.Contains(h.Log.Lines, l => l.Contains("trying again in", StringComparison.Ordinal) && l.Contains("xen3", StringComparison.Ordinal));
        Assert.DoesNotContain(RunJournal.Read(store), e => e is HostFailed);
    }

    [Fact]
    public async Task NoRetriesNoFailures_AVmThatCannotMove_StopsTheRunBeforeThatHost_AsBefore()
    {
        var h = new CrashHarness();
        Refuse(h, "vm3-1", null);
        var before = h.Audit();
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run, options: With(h));

        Assert.Equal(RunOutcome.StoppedRestored, report!.Outcome);
        Assert.Equal(0, h.Pool.H("h3").BootCount);
        Assert.Equal(0, h.Pool.H("h4").BootCount);
        Assert.Equal(before, h.Audit());
    }

    [Fact]
    public async Task MaxFailedHosts1_AMemberThatCannotBeEvacuated_IsPutBackEnabled_TheOthersAreRebooted_Exit5WithTheHostNamed()
    {
        var h = new CrashHarness();
        Refuse(h, "vm3-1", null);
        var before = h.Audit();
        var store = new MemoryJournalStore();
        RunReport? report;
        await using (new Ticker(h.Clock, TimeSpan.FromSeconds(5)))
        {
            report = await h.StartAsync(store, RunMode.Run, options: With(h, retries: 1, maxFailed: 1));
        }


        Assert.Equal(RunOutcome.NeedsOperator, report!.Outcome);
        Assert.Equal(0, h.Pool.H("h3").BootCount);
        Assert.All(h.Pool.Hosts.Where(x => x.Uuid != "h3"), x => Assert.Equal(1, x.BootCount));
        // Everything put back as it was (HA, hosts enabled, CloudStack, lock); xen3's VMs run, vm-3-1 still on it.
        Assert.Equal(before, h.Audit());
        Assert.Empty(h.Pool.Violations);
        Assert.Equal("h3", h.Pool.Vms.Single(v => v.Uuid == "vm3-1").Host);
        var failed = Assert.Single(RunJournal.Read(store).OfType<HostFailed>());
        Assert.Equal("xen3", failed.Name);
        Assert.False(failed.Down);
        Assert.Contains("VM_BAD_POWER_STATE", failed.Reason, StringComparison.Ordinal);
        var row = report.Hosts.Single(x => x.Name == "xen3");
        Assert.StartsWith("FAILED (put back): could not evacuate xen3 (2 tries)", row.Result, StringComparison.Ordinal);
        Assert.Contains("1 host(s) FAILED", report.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MaxFailedHosts1_AMemberThatDoesNotComeBack_IsNamedForAnOperator_TheOthersAreRebooted()
    {
        var h = new CrashHarness();
        h.Pool.H("h2").NeverReturns = true;
        var store = new MemoryJournalStore();
        var report = await h.StartAsync(store, RunMode.Run, options: With(h, maxFailed: 1));

        Assert.Equal(RunOutcome.NeedsOperator, report!.Outcome);
        Assert.Equal(1, h.Pool.H("h3").BootCount);
        Assert.Equal(1, h.Pool.H("h4").BootCount);
        Assert.Empty(h.Pool.Violations);
        Assert.All(h.Pool.Vms, v => Assert.True(v.Running));
        Assert.DoesNotContain(h.Pool.Vms, v => v.Host == "h2");
        var failed = Assert.Single(RunJournal.Read(store).OfType<HostFailed>());
        Assert.True(failed.Down);
        Assert.Contains(report.OperatorActions, a => a.Contains("xen2", StringComparison.Ordinal));
        Assert.StartsWith("FAILED (not back)", report.Hosts.Single(x => x.Name == "xen2").Result, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MaxFailedHosts_TheMasterFailing_AlwaysStopsTheRun()
    {
        var h = new CrashHarness();
        Refuse(h, "vm1-1", null);
        var before = h.Audit();
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run, options: With(h, maxFailed: 3));

        Assert.Equal(RunOutcome.StoppedRestored, report!.Outcome);
        Assert.All(h.Pool.Hosts, x => Assert.Equal(0, x.BootCount));
        Assert.Equal(before, h.Audit());
    }

    [Fact]
    public async Task MaxFailedHosts1_TwoMembersFailing_TheSecondStopsTheRun()
    {
        var h = new CrashHarness();
        h.Pool.MigrationRefusal = (v, _) => v is "vm2-1" or "vm3-1" ? "VM_BAD_POWER_STATE" : null;
        var store = new MemoryJournalStore();
        var report = await h.StartAsync(store, RunMode.Run, options: With(h, maxFailed: 1));

        Assert.Equal(RunOutcome.StoppedRestored, report!.Outcome);
        Assert.Single(RunJournal.Read(store).OfType<HostFailed>());
        Assert.Equal(0, h.Pool.H("h2").BootCount);
        Assert.Equal(0, h.Pool.H("h3").BootCount);
        Assert.Equal(0, h.Pool.H("h4").BootCount);
        Assert.Equal(1, h.Pool.H("h1").BootCount);
    }
}
