using RollingReboot.Core.Planning;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run;

/// <summary>
/// How one host's migrations are scheduled (issue 18, keep the link full): --threads slots, largest first, each slot
/// refilled as soon as its migration ends with the largest one left whose target has room, and the first slots opening
/// SetupSeconds / threads apart so that equal VMs do not move in lockstep. Migrations take 60 s on the fake clock.
/// </summary>
public sealed class MigrationSchedulingTests
{
    private static readonly TimeSpan s_migration = TimeSpan.FromSeconds(60);

    private static CrashHarness Harness(int extraOnMaster, int extraOnXen3 = 0)
    {
        var h = new CrashHarness(hosts: 3, ha: false, cloudStack: false);
        for (var i = 0; i < extraOnMaster; i++)
        {
            h.Pool.Vms.Add(new FakePool.Vm { Uuid = $"x{i}", Name = $"vm-x{i:00}", Host = "h1" });
        }

        for (var i = 0; i < extraOnXen3; i++)
        {
            h.Pool.Vms.Add(new FakePool.Vm { Uuid = $"y{i}", Name = $"vm-y{i:00}", Host = "h3" });
        }

        h.Pool.MigrationTime = s_migration;
        return h;
    }

    private static async Task<RunReport> RunAsync(CrashHarness h, RunOptions options)
    {
        await using var ticker = new Ticker(h.Clock, TimeSpan.FromMilliseconds(500));
        var report = await h.StartAsync(new MemoryJournalStore(), RunMode.Run, options: options);
        Assert.NotNull(report);
        Assert.Equal(RunOutcome.Done, report.Outcome);
        Assert.Empty(h.Pool.Violations);
        return report;
    }

    /// <summary>The most migrations in flight at once among these (ends before starts at the same instant).</summary>
    private static int MostInFlight(IEnumerable<(string Vm, string Target, DateTimeOffset Start, DateTimeOffset End)> migrations) =>
        migrations.SelectMany(m => new[] { (At: m.Start, Delta: 1), (At: m.End, Delta: -1) })
            .OrderBy(e => e.At).ThenBy(e => e.Delta)
            .Aggregate((Now: 0, Max: 0), (a, e) => (a.Now + e.Delta, Math.Max(a.Max, a.Now + e.Delta))).Max;

    [Fact]
    public async Task Evacuation_FirstSlotsOpenStaggered_ThenEverySlotStaysBusy_AllThreadsIntoOneTarget()
    {
        var h = Harness(extraOnMaster: 9);
        var options = h.Options with { Plan = h.Options.Plan with { Threads = 5 } };

        await RunAsync(h, options);

        // The master's 12 VMs leave first, before any other host's: take its migrations (the first 12 to start).
        var master = h.Pool.MigrationTimes.OrderBy(m => m.Start).Take(12).ToList();
        Assert.All(master, m => Assert.StartsWith("vm-", m.Vm, StringComparison.Ordinal));
        var stagger = PlanEstimator.StaggerSeconds(options.Plan);
        Assert.Equal(1.2, stagger, 6);
        var firstFive = master.Take(5).Select(m => m.Start).ToList();
        for (var i = 1; i < firstFive.Count; i++)
        {
            Assert.True((firstFive[i] - firstFive[i - 1]).TotalSeconds >= stagger - 1e-6, $"slot {i} opened {(firstFive[i] - firstFive[i - 1]).TotalSeconds} s after slot {i - 1}");
        }

        // Five in flight (more than the three a target used to take), never more than --threads.
        Assert.Equal(5, MostInFlight(master));
        // A slot is refilled when its migration ends, not when a whole group has: the sixth starts before the last of the
        // first five ends.
        var ends = master.Take(5).Select(m => m.End).Order().ToList();
        Assert.True(master[5].Start < ends[4], $"sixth started {master[5].Start:O}, the first five ended {string.Join(", ", ends.Select(e => e.ToString("mm:ss.f", System.Globalization.CultureInfo.InvariantCulture)))}");
    }

    [Fact]
    public async Task Evacuation_TargetFull_OtherTargetsStillServed_NoTargetOverItsLimit()
    {
        // xen3 nearly full: the master's 12 VMs go to xen2 and xen3 both.
        var h = Harness(extraOnMaster: 9, extraOnXen3: 9);
        var options = h.Options with { Plan = h.Options.Plan with { Threads = 4, MaxMigrationsPerTarget = 1 } };

        await RunAsync(h, options);

        var master = h.Pool.MigrationTimes.OrderBy(m => m.Start).Take(12).ToList();
        var targets = master.Select(m => m.Target).Distinct().ToList();
        Assert.True(targets.Count >= 2, "the master's VMs go to both other hosts");
        Assert.All(targets, t => Assert.Equal(1, MostInFlight(master.Where(m => m.Target == t))));
        // A migration waiting for its full target holds no slot: both targets take one at a time, together.
        Assert.Equal(targets.Count, MostInFlight(master));
    }
}
