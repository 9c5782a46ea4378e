using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>
/// --return-vms (issue 19): passes while a pass brings a VM home, a VM that cannot go home never fails a finished run,
/// and the report says where each VM ended and why.
/// </summary>
public sealed class ReturnVmsTests
{
    [Fact]
    public async Task ReturnVms_VmsHomeOnlyOnTheThirdPass_AllGoHome_OneThatNeverCanIsReportedWhereItRuns()
    {
        var h = new CrashHarness();
        var attempts = new Dictionary<string, int>(StringComparer.Ordinal);
        // Going home (all hosts rebooted): vm4-2 is refused once, vm4-3 twice (memory freeing up as others go home),
        // vm4-1 always (its host has no room for it); each is away from home after the run (xen4 is the last host).
        h.Pool.MigrationRefusal = (vm, target) =>
        {
            if (h.Pool.Hosts.Any(x => x.BootCount == 0) || target != "h4")
            {
                return null;
            }

            var n = attempts[vm] = attempts.GetValueOrDefault(vm) + 1;
            return vm switch
            {
                "vm4-1" => "HOST_NOT_ENOUGH_FREE_MEMORY",
                "vm4-2" when n <= 1 => "HOST_NOT_ENOUGH_FREE_MEMORY",
                "vm4-3" when n <= 2 => "HOST_NOT_ENOUGH_FREE_MEMORY",
                _ => null,
            };
        };
        var home = h.Pool.Vms.ToDictionary(v => v.Uuid, v => v.Host);
        var store = new MemoryJournalStore();
        var report = await h.StartAsync(store, RunMode.Run, options: h.Options with { Plan = h.Options.Plan with { ReturnVms = true } });

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        Assert.Empty(h.Pool.Violations);
        Assert.All(h.Pool.Vms.Where(v => v.Uuid != "vm4-1"), v => Assert.Equal(home[v.Uuid], v.Host));
        Assert.NotEqual("h4", h.Pool.Vms.Single(v => v.Uuid == "vm4-1").Host);
        // Three passes brought vm4-3 home; a fourth, with no progress, was the last.
        Assert.Equal(3, attempts["vm4-3"]);
        Assert.Equal(4, attempts["vm4-1"]);

        Assert.Equal(12, report.VmReturns.Count);
        var away = Assert.Single(report.VmReturns, v => !v.IsHome);
        Assert.Equal("vm-4-1", away.Vm);
        Assert.Equal("xen4", away.HomeHost);
        Assert.Equal(h.Pool.H(h.Pool.Vms.Single(v => v.Uuid == "vm4-1").Host).Name, away.EndedOn);
        Assert.Equal("HOST_NOT_ENOUGH_FREE_MEMORY", away.Why);
        Assert.Contains("1 left where they are (vm-4-1)", report.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReturnVms_HomeHostDisabledAfterTheRun_NotTried_ReportedAsSuch_RunStillDone()
    {
        var h = new CrashHarness();
        // Someone disables xen4 as the VMs go home (after every host is rebooted): nothing is sent to it.
        h.Pool.MigrationRefusal = (_, _) =>
        {
            if (h.Pool.Hosts.All(x => x.BootCount == 1) && h.Pool.H("h4").Enabled && h.Pool.Hosts.All(x => x.Enabled))
            {
                h.Pool.H("h4").Enabled = false;
            }

            return null;
        };
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run, options: h.Options with { Plan = h.Options.Plan with { ReturnVms = true } });

        Assert.Equal(RunOutcome.Done, report!.Outcome);
        var away = report.VmReturns.Where(v => !v.IsHome).ToList();
        Assert.NotEmpty(away);
        Assert.All(away, v => Assert.Equal("xen4", v.HomeHost));
        Assert.All(away, v => Assert.Equal("xen4 is disabled", v.Why));
    }
}
